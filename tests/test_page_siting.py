"""The 选址规划 (siting) page through Streamlit's AppTest, checked against the siting models on the demo region.

Each test runs on its own temporary workspace (``LTCI_WORKSPACE``), seeded once per module from ``data/andorra``,
so saving and promoting scenarios never touches a real workspace. The expected figures are computed here from
:mod:`planning.candidates` and :mod:`planning.siting` directly, the way the page's defaults describe them: health
facilities that are not agencies plus 1 km grid centroids, 500 m from any active agency, 10 minutes, p = 3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from geo import settings
from geo.region import load_demo_region
from geo.schema import ACTIVE_STATUSES
from planning import candidates as cand
from planning import siting
from planning.scenarios import Scenario

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGE = str(ROOT / "ui" / "pages" / "siting.py")
TIMEOUT = 180
THRESHOLD = 10.0


# ----------------------------------------------------------------------------------------------------------------
# The expected answers, from the planning modules
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def expected():
    region = load_demo_region()
    active = region.agencies[region.agencies["status"].isin(ACTIVE_STATUSES)]
    health = cand.candidates_from_health_facilities(settings.demo_region_dir / "raw" / "andorra_health.geojson")
    osm_numbers = {a.split("-")[-1].lstrip("nwr") for a in region.agencies["agency_id"].astype(str)}
    health = health[~health["candidate_id"].str.removeprefix("hf-").isin(osm_numbers)]
    grid = cand.candidates_from_grid(region.townships, cell_size_m=1000, townships=region.townships)
    pool = cand.combine_candidates(health, grid)
    pool, _ = cand.exclude_near_agencies(pool, active, min_distance_m=500)
    matrix = cand.candidate_travel_matrix(region.network, pool, region.units)
    pool, _, matrix = cand.exclude_off_network(pool, matrix)
    existing = region.travel_matrix(agencies=active)
    demand = pd.Series(region.units["demand"].to_numpy(float), index=region.units["unit_id"].astype(str))
    mclp = siting.MCLP.from_travel_matrix(matrix, existing=existing, demand=demand, threshold_min=THRESHOLD,
                                          p=3).solve()
    lscp = siting.LSCP.from_travel_matrix(matrix, existing=existing, demand=demand, threshold_min=THRESHOLD).solve()
    greedy = siting.Greedy.from_travel_matrix(matrix, existing=existing, demand=demand, threshold_min=THRESHOLD,
                                              p=3, goal="coverage").solve()
    best_before = existing.minutes.min(axis=0)
    return {"region": region, "pool": pool, "matrix": matrix, "existing": existing, "demand": demand,
            "mclp": mclp, "lscp": lscp, "greedy": greedy, "active": active,
            "share_before": float(demand[best_before <= THRESHOLD].sum() / demand.sum())}


def _page(*, lang: str = "zh", **state) -> AppTest:
    """The page on its own (no router), with ``siting.<key>`` session values set before the first run."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["lang"] = lang
    for key, value in state.items():
        at.session_state[f"siting.{key}"] = value
    return at.run()


def _frame_with(at: AppTest, *columns: str) -> pd.DataFrame:
    frames = [e.value for e in [*at.dataframe, *at.table] if set(columns) <= set(e.value.columns)]
    assert frames, f"no table with columns {columns}"
    return frames[0]


def _by_key(elements, key):
    return next(e for e in elements if e.key == key)


def _store(at):
    from ui.workspace_session import _open_workspace, workspace_location

    return _open_workspace(workspace_location())


# ----------------------------------------------------------------------------------------------------------------
# Opening and the three questions
# ----------------------------------------------------------------------------------------------------------------
def test_page_opens_through_the_router_with_the_default_mclp_result(workspace_path, expected):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("ui/pages/siting.py").run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert at.title[0].value == "选址规划：新机构应该放在哪里"
    mclp = expected["mclp"]
    newly = int(mclp.unit_coverage["newly_covered"].sum())
    assert at.subheader[0].value == f"建议的 3 个新址：10 分钟内新增覆盖 {newly} 个村"
    assert newly == 13
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["覆盖需求（目标值）"] == f"{mclp.objective:,.2f}" == "662.12"
    assert metrics["最优性差距"] == "0.000%"
    assert metrics["10 分钟内覆盖需求"] == f"{100 * mclp.summary()['covered_share']:.1f}%"

    sites = _frame_with(at, "编号", "名称", "来源")
    assert sorted(sites["编号"]) == sorted(f"plan-{c}" for c in mclp.selected_ids)
    # The candidate pool the page used is the one computed here.
    assert any(c.value == f"参与选址的候选点：{len(expected['pool'])} 个（已排除 197 个）。" for c in at.caption)

    methods = _frame_with(at, "方法", "新址数")
    assert list(methods["方法"]) == ["最大覆盖模型（MCLP）", "贪心法（AccessMod 扩容）"]
    assert methods["覆盖需求（目标值）"].tolist() == [round(mclp.objective, 2), round(expected["greedy"].objective, 2)]

    coverage = _frame_with(at, "阈值", "现状覆盖率", "方案覆盖率")
    assert list(coverage["阈值"]) == ["10 分钟", "15 分钟", "30 分钟", "45 分钟", "60 分钟"]
    ten = coverage.iloc[0]
    assert ten["现状覆盖率"] == round(100 * expected["share_before"], 1) == 92.7
    assert ten["方案覆盖率"] == round(100 * mclp.objective / expected["demand"].sum(), 1) == 99.7
    assert ten["方案未覆盖需求"] == round(expected["demand"].sum() - mclp.objective, 2)
    travel = _frame_with(at, "指标", "现状", "方案")
    assert travel.set_index("指标").loc["新增机构", "方案"] == "3"
    newly_table = _frame_with(at, "村/社区", "现状（分钟）", "方案（分钟）")
    assert len(newly_table) == newly
    # Downloads of the selected sites and the PDF are offered.
    labels = [b.label for b in at.get("download_button")]
    assert {"下载 Excel", "下载 GeoPackage", "下载 CSV", "一键生成方案 PDF 报告"} <= set(labels)


def test_fewest_new_agencies_for_every_village_within_t(workspace_path, expected):
    at = _page(question="fewest")
    assert not at.exception and not at.error
    lscp = expected["lscp"]
    assert len(lscp.selected_ids) == 5
    assert at.subheader[0].value == "最少需新增 5 家机构（服务标准 10 分钟）"
    sites = _frame_with(at, "编号", "名称")
    assert sorted(sites["编号"]) == sorted(f"plan-{c}" for c in lscp.selected_ids)
    coverage = _frame_with(at, "阈值", "方案覆盖率")
    assert coverage.iloc[0]["方案覆盖率"] == 100.0
    methods = _frame_with(at, "方法", "新址数")
    assert methods["新址数"].iloc[0] == 5 and methods["新址数"].iloc[1] >= 5  # greedy never beats the optimum


def test_p_median_and_capacitated_variants_run(workspace_path, expected):
    at = _page(model="pmedian")
    assert not at.exception and not at.error
    pmedian = siting.PMedian.from_travel_matrix(expected["matrix"], existing=expected["existing"],
                                                demand=expected["demand"], p=3, threshold_min=THRESHOLD).solve()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["需求加权行车分钟（目标值）"] == f"{pmedian.objective:,.2f}"

    at = _page(capacitated=True, capacity=20)
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    # Capacity makes coverage harder: never more than the uncapacitated optimum.
    assert float(metrics["覆盖需求（目标值）"].replace(",", "")) <= expected["mclp"].objective + 1e-6
    assert any("贪心法不处理容量" in c.value for c in at.caption)


def test_what_if_evaluates_one_candidate_against_the_current_agencies(workspace_path, expected):
    at = _page(question="what_if")
    assert not at.exception and not at.error
    pick = _by_key(at.selectbox, "siting.what_if_pick").value
    scenario = Scenario.from_sites([pick], name="x", candidates=expected["pool"], candidate_matrix=expected["matrix"],
                                   existing_matrix=expected["existing"], demand=expected["demand"])
    within = scenario.unit_travel_min <= THRESHOLD
    share = float(expected["demand"][within].sum() / expected["demand"].sum())
    newly = int((within & ~(expected["existing"].minutes.min(axis=0) <= THRESHOLD)).sum())
    assert at.subheader[0].value == f"增加该候选点：10 分钟内新增覆盖 {newly} 个村"
    assert {m.label: m.value for m in at.metric}["10 分钟内覆盖需求"] == f"{100 * share:.1f}%"
    # The default is the best single site: no other candidate alone brings more demand within T.
    covered_by = (expected["matrix"].minutes <= THRESHOLD) & ~(expected["existing"].minutes.min(axis=0) <= THRESHOLD)
    gains = covered_by.astype(float) @ expected["demand"].to_numpy()
    assert gains[list(expected["matrix"].agency_ids).index(pick)] == pytest.approx(gains.max())


def test_a_clicked_point_becomes_a_candidate_and_one_outside_the_region_is_refused(workspace_path, expected):
    at = _page(question="what_if", sources=["health", "grid", "click"], clicks=[(1.5200, 42.5620)],
               what_if_pick="click-1")
    assert not at.exception and not at.error
    assert _by_key(at.selectbox, "siting.what_if_pick").value == "click-1"
    sites = _frame_with(at, "编号", "来源")
    assert list(sites["编号"]) == ["plan-click-1"] and list(sites["来源"]) == ["地图点选"]

    at = _page(sources=["grid", "click"], clicks=[(2.5, 42.5)])
    assert not at.exception
    assert any("outside the planning region" in e.value for e in at.error)


# ----------------------------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------------------------
def test_p_larger_than_the_candidates_is_refused_with_a_message(workspace_path, expected):
    at = _page(p=500)
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"无法完成规划：要新增 500 家，但只有 {len(expected['pool'])} 个候选点：请调低 p，或增加候选点来源、缩小网格、"
        "降低最小距离。"]
    assert not at.subheader  # no result is drawn from a refused request


def test_threshold_too_small_and_no_candidates_left_are_explained(workspace_path, expected):
    at = _page(question="fewest", threshold=1)
    assert not at.exception
    (message,) = [e.value for e in at.error]
    best = np.minimum(expected["existing"].minutes.min(axis=0), expected["matrix"].minutes.min(axis=0))
    assert message.startswith(f"无法完成规划：即使启用所有候选点，仍有 {int((best > 1).sum())} 个村无法在 1 分钟内到达")
    assert f"请把 T 提高到至少 {np.ceil(best.max()):.0f} 分钟" in message

    at = _page(exclude_m=20000)
    assert not at.exception
    assert [e.value for e in at.error] == ["无法完成规划：排除后没有候选点：468 个候选点都在现有机构 20000 米以内。"
                                          "请降低最小距离或增加候选点。"]


# ----------------------------------------------------------------------------------------------------------------
# Scenarios in the workspace
# ----------------------------------------------------------------------------------------------------------------
def test_saving_reloading_and_promoting_a_scenario_adds_planned_agencies(workspace_path, expected):
    at = _page()
    assert not at.exception and not at.error
    store = _store(at)
    before = store.read_agencies()
    assert not (before["status"] == "planned").any()

    _by_key(at.text_input, "siting.save_name").set_value("下三家 10 分钟")
    _by_key(at.button, "siting.save").click()
    at.run()
    assert not at.exception and not at.error
    saved = store.list_scenarios()
    assert saved["name"].tolist() == ["下三家 10 分钟"] and saved["n_agencies"].tolist() == [3]
    stored = store.load_scenario("下三家 10 分钟")
    assert sorted(stored.agencies_frame()["agency_id"]) == sorted(f"plan-{c}" for c in expected["mclp"].selected_ids)
    assert stored.results["scenario"]["parameters"]["model"] == "MCLP"

    # Reload: the saved scenario is shown and compared with the status quo.
    _by_key(at.button, "siting.load").click()
    at.run()
    assert not at.exception and not at.error
    assert any(i.value == "正在查看已保存的方案“下三家 10 分钟”。" for i in at.info)
    assert at.subheader[0].value.startswith("已保存方案“下三家 10 分钟”：3 个新址")

    # Promote: three planned agencies land in the registry, ready for the allocation page.
    _by_key(at.button, "siting.promote").click()
    at.run()
    assert not at.exception and not at.error
    after = store.read_agencies()
    planned = after[after["status"] == "planned"]
    assert sorted(planned["agency_id"]) == sorted(f"plan-{c}" for c in expected["mclp"].selected_ids)
    assert (planned["care_type"] == "home").all() and (planned["capacity"] == 50).all()
    assert len(after) == len(before) + 3
    assert any(s.value.startswith("已将方案“下三家 10 分钟”的 3 个新址写入名录") for s in at.success)
    actions = store.read_audit_log()["action"].tolist()
    assert {"save_scenario", "upsert_agencies"} <= set(actions)

    # The promoted sites now count as supply; the same scenario cannot be promoted twice.
    assert _by_key(at.button, "siting.promote").disabled
    assert any(c.value == "其中 3 个新址已在名录中（此前已写入），不能重复写入。" for c in at.caption)
    _by_key(at.button, "siting.unload").click()
    at.run()
    assert not at.exception and not at.error
    coverage = _frame_with(at, "阈值", "现状覆盖率")
    assert coverage.iloc[0]["现状覆盖率"] == 99.7  # the status quo now holds the three planned agencies


def test_a_resident_session_cannot_save_or_promote(workspace_path, monkeypatch):
    from workspace.auth import hash_password

    monkeypatch.setenv("LTCI_PLANNER_PASSWORD_HASH", hash_password("correct horse battery", rounds=4))
    monkeypatch.setenv("LTCI_PLANNER_USER", "planner")
    at = _page()
    assert not at.exception and not at.error
    keys = {b.key for b in at.button}
    assert "siting.save" not in keys and "siting.promote" not in keys
    assert sum(i.value.startswith("此操作会修改工作区数据，需要规划员登录") for i in at.info) == 2
    assert _store(at).list_scenarios().empty


def test_english_labels(workspace_path):
    at = _page(lang="en")
    assert not at.exception and not at.error
    assert at.title[0].value == "Siting: where new agencies should go"
    assert at.subheader[0].value.startswith("3 proposed sites:")
    assert _frame_with(at, "Threshold", "Coverage now", "Coverage proposed") is not None


def test_widget_changes_reuse_the_candidate_matrix_and_a_click_adds_only_its_own_row(workspace_path, monkeypatch):
    calls: list[int] = []
    original = cand.candidate_travel_matrix

    def counting(network, candidates, units, **kw):
        calls.append(len(candidates))
        return original(network, candidates, units, **kw)

    monkeypatch.setattr(cand, "candidate_travel_matrix", counting)
    at = _page()
    assert not at.exception and not at.error
    calls.clear()
    _by_key(at.number_input, "siting.p").set_value(4)
    _by_key(at.number_input, "siting.threshold").set_value(15)
    _by_key(at.number_input, "siting.exclude_m").set_value(800)
    at.run()
    assert not at.exception and not at.error
    assert calls == []  # threshold, p and the exclusion distance never rerun shortest paths
    assert at.subheader[0].value.startswith("建议的 4 个新址：15 分钟内")

    at.session_state["siting.clicks"] = [(1.5412, 42.5461)]  # a point no other test uses: not cached yet
    _by_key(at.multiselect, "siting.sources@zh").set_value(["health", "grid", "click"])
    at.run()
    assert not at.exception and not at.error
    assert calls == [1]  # the click's own row only
