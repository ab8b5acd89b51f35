"""The coverage page (覆盖分析) through Streamlit's AppTest, checked against the planning models on the demo region."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from geo import settings
from geo.grid import count_grid_cells
from geo.region import load_demo_region
from planning.accessibility import AccessibilityModel
from planning.coverage import CoverageModel

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGE = str(ROOT / "ui" / "pages" / "coverage.py")
TIMEOUT = 180


@pytest.fixture(scope="module")
def region():
    return load_demo_region()


@pytest.fixture(scope="module")
def model(region):
    return CoverageModel(region.travel_matrix(), region.units, region.agencies).solve()


def _page(*, lang: str = "zh", isochrones: bool = False, **state) -> AppTest:
    """The page on its own (no router), isochrones off unless asked: each rerun stays around a second."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["lang"] = lang
    at.session_state["coverage.show_isochrones"] = isochrones
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _coverage_table(at: AppTest):
    tables = [t.value for t in at.table if "30 分钟" in t.value.columns or "30 min" in t.value.columns]
    assert tables, "no coverage table with a 30-minute column"
    return tables[0]


def _frame_with(at: AppTest, column: str):
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(frames) == 1, f"expected one table with a {column!r} column, found {len(frames)}"
    return frames[0]


def _expected_percent(model, scope, group, minutes, measure="demand"):
    table = model.table()
    row = table[(table["scope"] == scope) & (table["group"] == group) & (table["threshold_min"] == minutes)].iloc[0]
    return round(100 * row[f"share_{measure}"], 1)


def test_page_opens_through_the_router_with_the_30_minute_table(model):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("ui/pages/coverage.py").run()
    assert not at.exception and not at.error
    assert at.title[0].value == "覆盖分析：谁在护理服务的可达范围内"
    table = _coverage_table(at)
    assert list(table.columns) == ["范围", "分组", "长护需求合计", "15 分钟", "30 分钟", "45 分钟", "60 分钟"]
    assert len(table) == 1 + 3 + 7  # overall, three care types, seven parishes
    overall = table.iloc[0]
    assert (overall["范围"], overall["分组"]) == ("全域", "全部")
    assert overall["长护需求合计"] == pytest.approx(663.79, abs=0.01)
    assert overall["15 分钟"] == _expected_percent(model, "overall", "all", 15.0) == 99.2
    institution = table[table["分组"] == "机构护理"].iloc[0]
    assert institution["15 分钟"] == _expected_percent(model, "care_type", "institution", 15.0) == 88.4
    canillo = table[table["分组"] == "Canillo"].iloc[0]
    assert canillo["15 分钟"] == _expected_percent(model, "township", "Canillo", 15.0)
    assert canillo["15 分钟"] < 100 and canillo["30 分钟"] == 100.0
    # The 30-minute headline metrics and the uncovered list at the map threshold.
    assert [m.value for m in at.metric[:3]] == ["100.0%", "100.0%", "100.0%"]
    assert any(s.value == "所有村都在 30 分钟内可到达在营机构。" for s in at.success)


def test_measure_and_map_threshold_change_the_tables(model):
    at = _page()
    at.radio(key="coverage.measure").set_value("population").run()
    table = _coverage_table(at)
    assert table.columns[2] == "人口合计" and table.iloc[0]["人口合计"] == pytest.approx(85101, abs=1)
    assert table.iloc[0]["15 分钟"] == _expected_percent(model, "overall", "all", 15.0, "population")

    at.selectbox(key="coverage.map_threshold").set_value(15).run()
    assert not at.exception
    expected = model.uncovered_units(threshold=15.0)
    uncovered = _frame_with(at, "单元编号")
    assert list(uncovered["单元编号"]) == list(expected["unit_id"])  # sorted by demand, largest first
    assert len(uncovered) == 3 and np.all(np.diff(uncovered["长护需求"].to_numpy()) <= 0)
    np.testing.assert_allclose(uncovered["到最近机构（分钟）"].astype(float), expected["nearest_minutes"], atol=0.051)
    assert all(float(m) > 15 for m in uncovered["到最近机构（分钟）"])


def test_toggling_agencies_off_never_recomputes_paths_and_zero_active_is_said_plainly(monkeypatch, region, model):
    import geo.traveltime

    at = _page()
    calls = []
    original = geo.traveltime.node_times_s
    monkeypatch.setattr(geo.traveltime, "node_times_s", lambda *a, **k: calls.append(1) or original(*a, **k))

    institutions = set(region.agencies.loc[region.agencies["care_type"] == "institution", "agency_id"])
    keep = [a for a in model.active_agency_ids if a not in institutions]
    at.multiselect(key="coverage.active").set_value(keep).run()
    assert not at.exception
    assert any("没有在营的机构护理机构" in w.value for w in at.warning)
    table = _coverage_table(at)
    assert table[table["分组"] == "机构护理"].iloc[0][["15 分钟", "30 分钟", "60 分钟"]].tolist() == [0.0, 0.0, 0.0]
    expected = model.with_active(keep)
    assert table.iloc[0]["15 分钟"] == _expected_percent(expected, "overall", "all", 15.0)

    at.multiselect(key="coverage.active").set_value([]).run()
    assert not at.exception
    assert any("没有在营机构：所有村均未覆盖" in e.value for e in at.error)
    table = _coverage_table(at)
    assert (table[["15 分钟", "30 分钟", "45 分钟", "60 分钟"]].to_numpy() == 0).all()
    uncovered = _frame_with(at, "单元编号")
    assert len(uncovered) == len(region.units) and set(uncovered["到最近机构（分钟）"]) == {"不可达"}
    assert any("没有在营机构提供名额" in w.value for w in at.warning)  # E2SFCA says it too
    assert calls == []  # only the cheap parts ran again

    at.button(key="coverage.reset").click().run()
    assert sorted(at.multiselect(key="coverage.active").value) == sorted(model.active_agency_ids)
    assert not at.error


def test_grid_mode_with_a_small_h3_resolution(region):
    at = _page(**{"coverage.unit_kind": "h3", "coverage.h3_resolution": 6})
    assert not at.exception and not at.error
    cells = count_grid_cells(region.townships, kind="h3", resolution=6)
    assert any(f"网格共 {cells:,} 个单元，人口合计 85,101" in c.value for c in at.caption)
    table = _coverage_table(at)
    assert table.columns[2] == "长护需求合计"
    assert table.iloc[0]["长护需求合计"] == pytest.approx(85101 * settings.eligible_rate, rel=1e-3)
    assert 0 < table.iloc[0]["15 分钟"] <= table.iloc[0]["60 分钟"] <= 100
    assert at.metric[0].label == "覆盖的网格单元"


def test_oversized_grids_are_refused_with_the_count(region):
    at = _page(**{"coverage.unit_kind": "h3", "coverage.h3_resolution": 13})
    assert not at.exception
    count = count_grid_cells(region.townships, kind="h3", resolution=13)
    assert count > settings.max_grid_cells
    assert len(at.error) == 1
    assert f"H3 分辨率 13 将生成 {count:,} 个单元，超过上限 1,000,000 个" in at.error[0].value
    assert not at.table  # nothing computed on a refused grid

    at.radio(key="coverage.unit_kind").set_value("square").run()
    at.number_input(key="coverage.square_m").set_value(10).run()
    count = count_grid_cells(region.townships, kind="square", cell_size_m=10)
    assert f"10 米正方形网格 将生成 {count:,} 个单元" in at.error[0].value


def test_e2sfca_section_names_its_decay_and_matches_the_model(region):
    at = _page()
    assert any("Luo & Qi（2009）分段函数：0–10 分钟权重 1.00，10–20 分钟 0.68，20–30 分钟 0.22" in m.value
               for m in at.markdown)
    access = AccessibilityModel(region.travel_matrix(), region.units, region.agencies).solve()
    scores = access.unit_scores()
    with_demand = scores["demand"] > 0
    metrics = {m.label: m for m in at.metric}
    assert metrics["全域供需比（名额/需求）"].value == f"{access.regional_ratio:.3f}"
    for klass, label in (("well_served", "服务充足"), ("under_served", "服务不足")):
        n = int(((scores["access_class"] == klass) & with_demand).sum())
        assert metrics[label].value == f"{n:,} 个村"
    lacking = _frame_with(at, "E2SFCA 得分")
    assert len(lacking) == int((scores["access_class"].isin(["under_served", "no_access"]) & with_demand).sum())
    assert np.all(np.diff(lacking["E2SFCA 得分"].to_numpy()) >= -1e-4)

    at.radio(key="coverage.decay").set_value("gaussian").run()
    at.selectbox(key="coverage.catchment").set_value(45).run()
    assert not at.exception
    assert any("高斯函数 W = exp(−t² / 2σ²)，σ = 15 分钟，超过 45 分钟为 0" in m.value for m in at.markdown)
    gaussian = AccessibilityModel(region.travel_matrix(), region.units, region.agencies, decay="gaussian",
                                  catchment_min=45).solve()
    assert {m.label: m for m in at.metric}["全域供需比（名额/需求）"].value == f"{gaussian.regional_ratio:.3f}"


def test_english_page_and_downloads_offered():
    at = _page(lang="en", isochrones=True)
    assert not at.exception and not at.error
    assert at.title[0].value == "Coverage: who is within reach of care"
    table = _coverage_table(at)
    assert list(table.columns[:3]) == ["Scope", "Group", "Total demand"] and "30 min" in table.columns
    labels = [b.proto.label for b in at.get("download_button")]
    for label in ("Coverage tables (Excel)", "Units with metrics (GeoPackage)", "Units with metrics (CSV)",
                  "PDF report (one click)", "Download GeoPackage"):
        assert label in labels
