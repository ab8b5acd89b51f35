"""The 分片包干 (district allocation) page through Streamlit's AppTest, on a temporary workspace each test.

The page's solve is cached per process (``st.cache_resource``), so tests that share parameters share one solve.
The operation and saving tests run with contiguity off: what they check (moves reported, versions saved, a
failed solve leaving the plan intact) does not depend on it, and it keeps this file fast; the opening test runs
the page's own defaults.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from geo.region import load_demo_region
from geo.schema import ACTIVE_STATUSES
from planning.allocation import AllocationModel, agency_capacity
from workspace.store import open_store

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGE = str(ROOT / "ui" / "pages" / "allocation.py")
TIMEOUT = 600  # a cold solve plus the operating districts on two cores
P = "allocation."
# One operating district is instant; the k = 4 districts have their own (slow) test.
FAST = {P + "contiguity": False, P + "od_k": 1}
LOAD = "负载 / 容量"


@pytest.fixture(scope="module")
def region():
    return load_demo_region()


def _page(*, lang: str = "zh", **state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["lang"] = lang
    for key, value in {**FAST, **state}.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _agency_table(at) -> pd.DataFrame:
    tables = [t.value for t in at.table if LOAD in t.value.columns]
    assert len(tables) == 1, f"expected one per-agency table, found {len(tables)}"
    return tables[0]


def _loads(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    parts = table[LOAD].str.split(" / ", expand=True).astype(float)
    return parts[0].to_numpy(), parts[1].to_numpy()


def _errors(at) -> list[str]:
    """Error messages outside the operating-districts tab (which has its own model and test)."""
    districts = {e.value for e in at.tabs[3].error} if len(at.tabs) > 3 else set()
    return [e.value for e in at.error if e.value not in districts]


def _button(at, key):
    return next(b for b in at.button if b.key == key)


def _active_ids(region) -> set[str]:
    ag = region.agencies
    return set(ag.loc[ag["status"].isin(ACTIVE_STATUSES), "agency_id"].astype(str))


def test_page_opens_through_the_router_with_a_solved_plan(region, workspace_path):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("ui/pages/allocation.py").run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    assert at.title[0].value == "分片包干：每个村/社区由一家机构负责"
    metrics = {m.label: m.value for m in at.tabs[0].metric}  # the districts tab has a gap of its own
    assert metrics["求解状态"] in ("最优", "达到时限（可行）")
    assert metrics["已分配村/社区"] == f"{len(region.units)} / {len(region.units)}"
    gap = float(metrics["最优性差距"].rstrip("%"))
    # A time-limited solve on a busy machine may stop early; the page must then say so with its gap.
    assert gap >= 0 and (metrics["求解状态"] != "最优" or gap <= 0.011)
    table = _agency_table(at)
    # Every active agency is listed, and none is loaded beyond its capacity.
    assert _active_ids(region) <= set(table["机构编号"])
    load, capacity = _loads(table)
    assert (load <= capacity + 0.05).all()
    assert table["村/社区数"].sum() == len(region.units)
    assert load.sum() == pytest.approx(region.units["demand"].sum(), abs=0.1 * len(table))
    # Registry capacities, not made-up numbers.
    registry = dict(zip(region.agencies["agency_id"].astype(str), agency_capacity(region.agencies)))
    for aid, cap in zip(table["机构编号"], capacity):
        assert cap == pytest.approx(registry[aid], abs=0.5)


def test_tables_and_comparison_match_the_model(region, workspace_path):
    at = _page()
    model = AllocationModel(region.units, region.agencies, region.travel_matrix(), contiguity=False,
                            pairs="auto", time_limit_s=60).solve()
    table = _agency_table(at).set_index("机构编号")
    expected = model.agency_table.set_index("agency_id")
    for aid in _active_ids(region):
        assert table.loc[aid, "村/社区数"] == expected.loc[aid, "units"]
        assert table.loc[aid, "长护需求"] == pytest.approx(round(expected.loc[aid, "demand"], 1), abs=0.05)
    comparison = next(t.value for t in at.table if "就近分配" in t.value.columns).set_index("指标")
    for label, column in (("平均行车时间（分钟，按需求加权）", "mean_travel_min"), ("最长行车时间（分钟）", "max_travel_min"),
                          ("超出容量的需求", "overload_demand"), ("不连片的村/社区数", "contiguity_violations")):
        for side, row in (("本方案", "plan"), ("就近分配", "nearest")):
            assert float(comparison.loc[label, side]) == pytest.approx(model.comparison.loc[row, column], abs=0.06)
    assert float(comparison.loc["超出容量的需求", "就近分配"]) > 0  # nearest assignment overloads someone
    assert float(comparison.loc["超出容量的需求", "本方案"]) == 0


def test_shortfall_substitution_reports_every_moved_unit(region, workspace_path):
    at = _page()
    before = _agency_table(at).set_index("机构编号")
    leaving = before["村/社区数"].idxmax()
    held = int(before.loc[leaving, "村/社区数"])
    at.radio(key=P + "op").set_value("substitute").run()
    at.selectbox(key=P + "op_agency").set_value(leaving).run()
    _button(at, P + "op_run").click().run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    moved = next(t.value for t in at.table if "原机构" in t.value.columns)
    assert any(f"完成：{len(moved)} 个村/社区移动" in s.value for s in at.success), [s.value for s in at.success]
    name = before.loc[leaving, "机构"]
    # Every unit it held moved, to another agency; other units move only to make room, and each is listed.
    assert (moved["原机构"] == name).sum() == held
    assert (moved["新机构"] != name).all() and (moved["原机构"] != moved["新机构"]).all()
    assert moved["原因"].str.contains(leaving).all()
    after = _agency_table(at).set_index("机构编号")
    assert leaving not in after.index or after.loc[leaving, "村/社区数"] == 0
    load, capacity = _loads(after.reset_index())
    assert (load <= capacity + 0.05).all()
    assert after["村/社区数"].sum() == len(region.units)
    assert any("当前方案 v2（补位后）" == h.value for h in at.subheader)


def test_suspension_keeps_units_and_a_replan_gives_it_none_new(region, workspace_path):
    at = _page()
    before = _agency_table(at).set_index("机构编号")
    agency = before["村/社区数"].idxmax()
    at.radio(key=P + "op").set_value("suspend").run()
    at.selectbox(key=P + "op_agency").set_value(agency).run()
    _button(at, P + "op_run").click().run()
    assert not _errors(at), _errors(at)
    after = _agency_table(at).set_index("机构编号")
    assert after.loc[agency, "状态"].startswith("暂停")
    assert after.loc[agency, "村/社区数"] == before.loc[agency, "村/社区数"]  # keeps its units
    assert any("完成：0 个村/社区移动" in s.value for s in at.success)
    at.radio(key=P + "op").set_value("replan").run()
    _button(at, P + "op_run").click().run()
    assert not _errors(at), _errors(at)
    replanned = _agency_table(at).set_index("机构编号")
    assert replanned.loc[agency, "村/社区数"] <= before.loc[agency, "村/社区数"]
    assert any(h.value == "当前方案 v3（重新规划后）" for h in at.subheader)
    load, capacity = _loads(replanned.reset_index())
    assert (load <= capacity + 0.05).all()


def test_saving_creates_version_1_then_2_with_the_change_log(region, workspace_path):
    at = _page(**{P + "plan_id": "测试方案"})
    _button(at, P + "save").click().run()
    assert not at.exception, at.exception
    assert any("第 1 版" in s.value for s in at.success), [s.value for s in at.success]
    table = _agency_table(at).set_index("机构编号")
    reduced = table["村/社区数"].idxmax()
    at.radio(key=P + "op").set_value("reduce").run()
    at.selectbox(key=P + "op_agency").set_value(reduced).run()
    at.number_input(key=P + "red_units").set_value(2).run()
    _button(at, P + "op_run").click().run()
    assert not _errors(at), _errors(at)
    _button(at, P + "save").click().run()
    assert any("第 2 版" in s.value for s in at.success), [s.value for s in at.success]

    store = open_store(str(workspace_path))
    try:
        versions = store.list_plan_versions("测试方案")
        assert versions["version"].tolist() == [1, 2]
        assert versions["created_by"].nunique() == 1
        first, second = store.load_plan("测试方案", 1), store.load_plan("测试方案", 2)
        assert len(first.changes) == 0 and len(first.assignments) == len(region.units)
        assert first.assignments["agency_id"].notna().all()
        assert len(second.changes) >= 2
        moved_out = second.changes[second.changes["from_agency"] == reduced]
        assert len(moved_out) == 2 and moved_out["why"].str.contains(f"{reduced}: 缩减服务范围").all()
        diff = store.compare_plans("测试方案", 1, 2)
        moved = diff[diff["from_agency"] != diff["to_agency"]]  # the rest only changed backup
        assert set(moved["unit_id"]) == set(second.changes["unit_id"])
        assert second.meta.parameters["forbidden"]  # the penalty is kept for later re-plans
    finally:
        store.close()
    # The page's history shows the saved versions and version 2's change log.
    assert any("第 2 版的变更记录" in m.value for m in at.markdown)


def test_capacity_below_demand_is_named_and_the_plan_stays(region, workspace_path):
    at = _page(**{P + "plan_id": "保留方案"})
    kept = _agency_table(at)
    _button(at, P + "save").click().run()
    store = open_store(str(workspace_path))
    try:
        saved = store.list_plan_versions("保留方案")
    finally:
        store.close()
    # Capacity from caregivers at half a client each: far below the region's demand.
    at.radio(key=P + "capacity_source").set_value("caregivers")
    at.number_input(key=P + "clients_per_caregiver").set_value(0.5)
    _button(at, "FormSubmitter:allocation.form-重新求解").click().run()
    assert not at.exception, at.exception
    errors = _errors(at)
    assert errors and any("capacity" in e for e in errors), errors
    assert any("未被改动" in w.value for w in at.warning)
    pd.testing.assert_frame_equal(_agency_table(at), kept)
    store = open_store(str(workspace_path))
    try:  # the saved plan is untouched: same single version, rows still matching their checksum
        assert store.list_plan_versions("保留方案")["version"].tolist() == saved["version"].tolist() == [1]
        assert len(store.load_plan("保留方案", 1).assignments) == len(region.units)
    finally:
        store.close()


def test_page_in_english(region, workspace_path):
    at = _page(lang="en")
    assert at.title[0].value == "District allocation: one agency for every village"
    assert not _errors(at), _errors(at)
    table = next(t.value for t in at.table if "Load / capacity" in t.value.columns)
    assert table["Units"].sum() == len(region.units)
    assert [t.label for t in at.tabs] == ["Zones and tables", "Change the plan", "Save and history",
                                          "Operating districts"]


def test_locks_that_contradict_capacity_are_named(region, workspace_path):
    small = "osm-n522787974"  # capacity 16
    biggest = region.units.sort_values("demand", ascending=False)["unit_id"].astype(str).tolist()[:3]
    at = _page(**{P + "initial_tables": {"locks": [[u, small] for u in biggest]}})
    errors = _errors(at)
    assert len(errors) == 1 and "locks contradict capacity" in errors[0] and small in errors[0], errors
    assert any("还没有可用的方案" in i.value for i in at.info)  # no plan on the page, and no traceback
    assert not _agency_table_or_none(at)


def _agency_table_or_none(at):
    return [t for t in at.table if LOAD in t.value.columns]


def test_zones_gpkg_and_pdf_report(region, workspace_path, tmp_path):
    from ui.pages import allocation as page

    matrix = region.travel_matrix()
    model = AllocationModel(region.units, region.agencies, matrix, contiguity=False, time_limit_s=60).solve()
    plan = model.to_plan()
    frame = page.PlanFrame(plan.assignment, plan.backup, region.units, region.agencies, matrix,
                           clients_per_caregiver=4.0)
    units = page.unit_table(frame, plan.reasons)
    agencies = page.agency_table(frame)
    path = tmp_path / "zones.gpkg"
    path.write_bytes(page.zones_gpkg(region, units, region.agencies, agencies))
    assert set(gpd.list_layers(path)["name"]) == {"units", "agencies"}
    zones = gpd.read_file(path, layer="units")
    assert len(zones) == len(region.units)
    assert (zones.set_index("unit_id")["agency_id"] == model.assignment.reindex(zones["unit_id"]).to_numpy()).all()
    assert np.allclose(zones.sort_values("unit_id")["travel_min"],
                       model.unit_table.sort_values("unit_id")["travel_min"], atol=1e-3)
    ag = gpd.read_file(path, layer="agencies")
    assert len(ag) == len(region.agencies)
    assert {"agency_id", "zone_units", "zone_demand", "plan_capacity", "load_ratio"} <= set(ag.columns)
    expected = model.agency_table.set_index("agency_id")
    held = ag.set_index("agency_id")["zone_units"].dropna()
    assert (held == expected.loc[held.index, "units"]).all() and held.sum() == len(region.units)
    pdf = page.report_pdf(region, plan, units, agencies, page.comparison_display(
        frame.metrics(frame.owner), frame.metrics(frame.nearest_owner())), region.agencies,
        pd.DataFrame(columns=["unit_id"]), lang="zh")
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000 and b"STSong-Light" in pdf


@pytest.mark.slow
def test_four_operating_districts_are_balanced_and_cover_every_unit(region, workspace_path):
    at = _page(**{P + "od_k": 4, P + "od_time": 60})
    districts = at.tabs[3]
    assert not districts.error, [e.value for e in districts.error]
    table = next(t.value for t in districts.table if "中心村" in t.value.columns)
    assert len(table) == 4
    assert table["村/社区数"].sum() == len(region.units)
    demand = table["长护需求"].to_numpy(dtype=float)
    assert demand.sum() == pytest.approx(region.units["demand"].sum(), abs=0.5)
    mean = region.units["demand"].sum() / 4
    assert (np.abs(demand - mean) <= 0.1 * mean + 0.1).all()  # the default ±10 % band
    metrics = {m.label: m.value for m in districts.metric}
    assert float(metrics["需求最高/最低之比"]) == pytest.approx(demand.max() / demand.min(), abs=0.01)
    assert 0 < float(metrics["紧凑度（Polsby-Popper 平均）"]) <= 1


def test_solver_choice_reaches_the_model_and_the_gap_tooltip(region, workspace_path):
    from ui.pages.allocation import DEFAULTS, SOLVER_CHOICES, model_options

    assert DEFAULTS["solver"] == "auto" and set(SOLVER_CHOICES) == {"auto", "cpsat", "highs"}
    assert model_options({**DEFAULTS, "solver": "highs"})["solver"] == "highs"
    assert model_options({k: v for k, v in DEFAULTS.items() if k != "solver"})["solver"] == "auto"  # older plans
    at = _page(**{P + "solver": "highs"})
    assert not _errors(at), _errors(at)
    gap = next(m for m in at.tabs[0].metric if m.label == "最优性差距")
    assert "HiGHS" in gap.proto.help
