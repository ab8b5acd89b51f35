"""Coverage by the nearest active agency: hand-checked shares, toggles, zero supply, bad input, export."""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import Point, box

from geo.errors import InputError
from geo.traveltime import TravelMatrix
from planning.coverage import CoverageModel, coverage_to_gpkg, coverage_to_xlsx

INF = np.inf


@pytest.fixture()
def agencies() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "agency_id": ["H1", "I1", "M1", "M2"],
            "name": ["Hospital", "Institution", "Home suspended", "Home planned"],
            "care_type": ["hospital", "institution", "home", "home"],
            "status": ["designated", "designated", "suspended", "planned"],
            "capacity": [50, 30, 20, 10],
        },
        geometry=[Point(0, 0), Point(1, 0), Point(2, 0), Point(3, 0)], crs="EPSG:4326",
    )


@pytest.fixture()
def units() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "unit_id": ["330281001001", "330281001002", "330281001003", "330281002001", "330281002002", "330281002003"],
            "name": ["甲社区", "乙村", "丙村", "丁村", "戊村", "己村"],
            "township": ["梨洲街道", "梨洲街道", "梨洲街道", "大岚镇", "大岚镇", "大岚镇"],
            "population": [1000.0, 800.0, 600.0, 400.0, 200.0, 100.0],
            "demand": [8.0, 6.0, 5.0, 3.0, 2.0, 1.0],
        },
        geometry=[box(i, 0, i + 1, 1) for i in range(6)], crs="EPSG:4326",
    )


@pytest.fixture()
def matrix(agencies, units) -> TravelMatrix:
    minutes = np.array(
        [
            # u1   u2   u3   u4   u5   u6
            [10., 20., 40., 50., 70., INF],  # H1 hospital
            [25., 12., 35., 44., 65., INF],  # I1 institution
            [5.0, 5.0, 5.0, 5.0, 5.0, 5.0],  # M1 home (suspended: must never count)
            [14., 31., 29., 61., 58., INF],  # M2 home (planned: active)
        ]
    )
    return TravelMatrix(minutes, agencies["agency_id"], units["unit_id"])


def _row(table: pd.DataFrame, scope: str, group: str, threshold: float) -> pd.Series:
    hit = table[(table["scope"] == scope) & (table["group"] == group) & (table["threshold_min"] == threshold)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_nearest_active_agency_ignores_suspended_ones(matrix, units, agencies):
    model = CoverageModel(matrix, units, agencies).solve()
    assert model.nearest_minutes.tolist() == pytest.approx([10, 12, 29, 44, 58, INF])
    assert model.nearest_agency_id.tolist() == ["H1", "I1", "M2", "I1", "M2", ""]
    assert model.minutes_by_care_type["home"].tolist() == pytest.approx([14, 31, 29, 61, 58, INF])
    assert "1 units (100 people) cannot reach any active agency" in model.message


def test_shares_overall_per_care_type_and_township(matrix, units, agencies):
    table = CoverageModel(matrix, units, agencies).solve().table(thresholds=[15, 30, 45, 60])
    r = _row(table, "overall", "all", 30)
    assert (r.units_covered, r.units_total) == (3, 6)
    assert r.share_population == pytest.approx((1000 + 800 + 600) / 3100)
    assert r.share_demand == pytest.approx(19 / 25)
    r = _row(table, "overall", "all", 45)
    assert r.units_covered == 4 and r.share_demand == pytest.approx(22 / 25)
    r = _row(table, "overall", "all", 60)
    assert r.units_covered == 5 and r.population_covered == pytest.approx(3000)
    # per care type: only agencies of that type count
    r = _row(table, "care_type", "home", 30)
    assert r.units_covered == 2 and r.demand_covered == pytest.approx(8 + 5)
    r = _row(table, "care_type", "hospital", 15)
    assert r.units_covered == 1 and r.share_population == pytest.approx(1000 / 3100)
    # per township, by any active agency
    r = _row(table, "township", "大岚镇", 45)
    assert (r.units_covered, r.units_total) == (1, 3)
    assert r.share_demand == pytest.approx(3 / 6)
    r = _row(table, "township", "梨洲街道", 15)
    assert r.share_population == pytest.approx(1800 / 2400)
    assert set(table["scope"]) == {"overall", "care_type", "township"}
    assert len(table) == 4 * (1 + 3 + 2)


def test_uncovered_units_are_sorted_by_demand_with_their_minutes(matrix, units, agencies):
    model = CoverageModel(matrix, units, agencies).solve()
    un = model.uncovered_units(threshold=30)
    assert un["unit_id"].tolist() == ["330281002001", "330281002002", "330281002003"]
    assert un["nearest_minutes"].tolist() == pytest.approx([44, 58, INF])
    assert un["reachable"].tolist() == [True, True, False]
    assert un["nearest_agency_name"].tolist() == ["Institution", "Home planned", ""]
    assert un["township"].tolist() == ["大岚镇"] * 3
    assert un["unit_id"].str.len().eq(12).all()  # codes stay text


def test_toggling_an_agency_matches_a_full_solve(matrix, units, agencies):
    base = CoverageModel(matrix, units, agencies).solve()
    off = base.toggle("I1")
    assert off.nearest_minutes.tolist() == pytest.approx([10, 20, 29, 50, 58, INF])
    assert base.nearest_minutes[1] == pytest.approx(12)  # the original is unchanged
    full = CoverageModel(matrix, units, agencies, active_agency_ids=["H1", "M2"]).solve()
    np.testing.assert_array_equal(off.nearest_minutes, full.nearest_minutes)
    np.testing.assert_array_equal(off.nearest_agency_id, full.nearest_agency_id)
    pd.testing.assert_frame_equal(off.table(), full.table())
    # switching the suspended home agency on puts everyone within 5 minutes
    on = off.toggle("M1", active=True)
    assert on.nearest_minutes.tolist() == pytest.approx([5.0] * 6)
    assert on.message == "No active institution agency: every unit is uncovered for that care type."
    back = on.toggle("M1").toggle("I1")
    np.testing.assert_array_equal(back.nearest_minutes, base.nearest_minutes)


def test_with_active_and_unknown_ids(matrix, units, agencies):
    model = CoverageModel(matrix, units, agencies).solve()
    only_home = model.with_active(["M2"])
    assert only_home.nearest_agency_id.tolist() == ["M2", "M2", "M2", "M2", "M2", ""]
    assert "No active hospital, institution agency" in only_home.message
    with pytest.raises(InputError, match="unknown agencies"):
        model.with_active(["M2", "nope"])
    with pytest.raises(InputError, match="unknown agency"):
        model.toggle("nope")


def test_zero_active_agencies_uncovers_everything_plainly(matrix, units, agencies):
    model = CoverageModel(matrix, units, agencies, active_agency_ids=[]).solve()
    assert np.isinf(model.nearest_minutes).all()
    assert model.message.startswith("No active agency")
    assert "all 6 units" in model.message
    table = model.table()
    assert (table["units_covered"] == 0).all()
    assert (table.loc[table["scope"] == "overall", "share_population"] == 0).all()
    assert len(model.uncovered_units()) == 6
    # also when every agency is suspended or terminated
    dead = agencies.assign(status=["suspended", "terminated", "suspended", "terminated"])
    assert CoverageModel(matrix, units, dead).solve().message.startswith("No active agency")


def test_threshold_change_reuses_the_solution(matrix, units, agencies):
    model = CoverageModel(matrix, units, agencies).solve()
    t1 = model.table(thresholds=[20])
    assert _row(t1, "overall", "all", 20).units_covered == 2
    t2 = model.table(thresholds=[29, 29.5])
    assert _row(t2, "overall", "all", 29).units_covered == 3  # the boundary is inclusive
    with pytest.raises(InputError, match="threshold must be a positive"):
        model.table(thresholds=[0, -5])


def test_bad_inputs_are_all_reported(matrix, units, agencies):
    bad_units = units.assign(population=[1, -1, "x", 3, 4, 5])
    bad_units.loc[5, "unit_id"] = "330281001001"
    bad_agencies = agencies.assign(care_type=["hospital", "clinic", "home", "home"])
    with pytest.raises(InputError) as err:
        CoverageModel(matrix, bad_units, bad_agencies)
    reasons = " | ".join(str(p) for p in err.value.problems)
    assert "row 6: duplicate unit_id" in reasons
    assert "row 2: population must be a number" in reasons and "row 3: population" in reasons
    assert "row 2: care_type must be one of" in reasons
    extra = pd.concat([units, units.iloc[[0]].assign(unit_id="999")], ignore_index=True)
    with pytest.raises(InputError, match="1 units are not in the travel matrix"):
        CoverageModel(matrix, extra, agencies)
    with pytest.raises(InputError, match="missing columns"):
        CoverageModel(matrix, units.drop(columns="demand"), agencies)


def test_matrix_order_and_extra_rows_do_not_matter(matrix, units, agencies):
    shuffled = TravelMatrix(matrix.minutes[::-1, ::-1], matrix.agency_ids[::-1], matrix.unit_ids[::-1])
    a = CoverageModel(matrix, units, agencies).solve()
    b = CoverageModel(shuffled, units.iloc[::-1], agencies.iloc[[2, 0, 3, 1]]).solve()
    got = dict(zip(b.unit_ids, b.nearest_minutes))
    assert [got[u] for u in a.unit_ids] == pytest.approx(a.nearest_minutes.tolist())
    sub = CoverageModel(matrix, units.iloc[:3], agencies.iloc[:2]).solve()
    assert sub.nearest_minutes.tolist() == pytest.approx([10, 12, 35])


def test_exports_hold_tables_and_unit_metrics(matrix, units, agencies, tmp_path):
    model = CoverageModel(matrix, units, agencies).solve()
    data = coverage_to_xlsx(model, thresholds=[15, 30], uncovered_threshold=30, path=tmp_path / "c.xlsx")
    assert (tmp_path / "c.xlsx").read_bytes() == data
    sheets = pd.read_excel(io.BytesIO(data), sheet_name=None, dtype={"unit_id": str})
    assert set(sheets) >= {"coverage", "uncovered", "units", "notes"}
    assert len(sheets["coverage"]) == 2 * 6
    assert sheets["uncovered"]["unit_id"].tolist()[0] == "330281002001"
    assert sheets["units"]["unit_id"].tolist()[0] == "330281001001"
    assert pd.isna(sheets["units"]["nearest_minutes"].iloc[5]) and not sheets["units"]["reachable"].iloc[5]
    assert sheets["units"]["covered_30"].tolist() == [True, True, True, False, False, False]

    gpkg = coverage_to_gpkg(model, thresholds=[30], path=tmp_path / "c.gpkg")
    layers = {name for name, _ in pyogrio.list_layers(tmp_path / "c.gpkg")}
    assert layers == {"units", "agencies", "coverage"}
    back = gpd.read_file(tmp_path / "c.gpkg", layer="units")
    assert back["unit_id"].tolist() == units["unit_id"].tolist()
    assert back["nearest_minutes"].iloc[:5].tolist() == pytest.approx([10, 12, 29, 44, 58])
    assert back.crs.to_epsg() == 4326 and len(gpkg) > 1000
    ag = gpd.read_file(tmp_path / "c.gpkg", layer="agencies")
    assert ag["active"].tolist() == [1, 1, 0, 1]


# ------------------------------------------------------------------------------------------------ maps
from planning.coverage_maps import (  # noqa: E402
    classify_minutes, isochrone_layer, make_coverage_map, travel_time_layer, uncovered_layer,
)


def test_minutes_are_classed_in_fixed_bands():
    klass, labels = classify_minutes([0, 15, 15.01, 44, 60, 61, INF, np.nan])
    assert klass.tolist() == [0, 0, 1, 2, 3, 4, 5, 5]
    assert labels == ["0–15 min", "15–30 min", "30–45 min", "45–60 min", "> 60 min", "unreachable"]


def test_map_layers_and_folium_map(matrix, units, agencies):
    model = CoverageModel(matrix, units, agencies).solve()
    travel = travel_time_layer(model)
    assert travel["minutes_label"].tolist() == ["0–15 min", "0–15 min", "15–30 min", "30–45 min", "45–60 min",
                                                "unreachable"]
    assert travel["color"].nunique() == 5
    gone = uncovered_layer(model, threshold=30)
    assert gone["unit_id"].tolist() == ["330281002001", "330281002002", "330281002003"]
    assert gone.geometry.iloc[0].equals(units.geometry.iloc[3])
    iso = gpd.GeoDataFrame({"agency_id": ["H1", "H1", "M2"], "minutes": [15.0, 30.0, 15.0]},
                           geometry=[box(0, 0, 1, 1), box(0, 0, 2, 2), box(3, 0, 4, 1)], crs="EPSG:4326")
    layer = isochrone_layer(iso, agencies)
    assert layer["minutes"].tolist() == [30.0, 15.0, 15.0]  # larger area drawn first
    assert layer["color"].tolist() == ["#d62728", "#d62728", "#1f77b4"]
    with pytest.raises(InputError, match="isochrone layer"):
        isochrone_layer(iso.drop(columns="minutes"))
    html = make_coverage_map(model, threshold=30, isochrones=iso).get_root().render()
    for text in ("0–15 min", "unreachable", "Uncovered units", "Service area: Hospital", "Service area: Home planned"):
        assert text in html


# ------------------------------------------------------------------------------------------------ demo region
@pytest.fixture(scope="module")
def demo():
    from geo.region import load_demo_region

    return load_demo_region()


def test_demo_region_coverage_agrees_with_the_engine(demo):
    from geo.traveltime import nearest_agencies

    matrix = demo.travel_matrix()
    model = CoverageModel(matrix, demo.units, demo.agencies).solve()
    active = demo.agencies["status"].isin(["designated", "planned"]).to_numpy()
    first = nearest_agencies(matrix, k=1, active=active).set_index("unit_id")
    reachable = np.isfinite(model.nearest_minutes)
    assert reachable.sum() == len(first)
    got = pd.Series(model.nearest_minutes, index=model.unit_ids)[first.index]
    np.testing.assert_allclose(got.to_numpy(), first["minutes"].to_numpy(), rtol=1e-6)
    table = model.table()
    overall = table[table["scope"] == "overall"].set_index("threshold_min")
    assert overall["share_population"].is_monotonic_increasing
    assert overall.loc[60.0, "population_total"] == pytest.approx(demo.units["population"].sum())
    # townships are the seven parishes; their covered population adds up to the overall figure
    town = table[(table["scope"] == "township") & (table["threshold_min"] == 15.0)]
    assert len(town) == 7
    assert town["population_covered"].sum() == pytest.approx(overall.loc[15.0, "population_covered"])


def test_demo_region_toggle_off_the_main_hospital(demo):
    matrix = demo.travel_matrix()
    model = CoverageModel(matrix, demo.units, demo.agencies).solve()
    hospital = "osm-w194554955"
    served = model.nearest_agency_id == hospital
    assert served.any()
    off = model.toggle(hospital)
    assert (off.nearest_minutes[served] >= model.nearest_minutes[served]).all()
    assert (off.nearest_agency_id != hospital).all()
    np.testing.assert_array_equal(off.nearest_minutes[~served], model.nearest_minutes[~served])
    hosp_on = model.minutes_by_care_type["hospital"]
    hosp_off = off.minutes_by_care_type["hospital"]
    assert (hosp_off >= hosp_on).all() and (hosp_off > hosp_on).any()


def test_demo_grid_coverage_and_isochrone_map(demo):
    from geo import grid
    from geo.traveltime import isochrones
    from planning.accessibility import AccessibilityModel

    nodes = np.column_stack([demo.network.lon, demo.network.lat])
    cells = grid.build_grid_units(demo.townships, resolution=8, townships=demo.townships,
                                  population_source=demo.population, road_nodes_xy=nodes)
    assert cells["population"].sum() == pytest.approx(demo.population["population"].sum(), rel=1e-3)
    matrix = demo.travel_matrix(units=cells)
    model = CoverageModel(matrix, cells, demo.agencies).solve()
    table = model.table(thresholds=[30])
    share = table.loc[table["scope"] == "overall", "share_population"].iloc[0]
    assert 0.5 < share <= 1.0  # Andorra's people live in the valleys, near the agencies
    acc = AccessibilityModel(matrix, cells, demo.agencies).solve()
    used = acc.weighted_demand > 0
    assert float(cells["demand"].to_numpy() @ acc.scores) == pytest.approx(
        acc.supply[acc.active & used].sum(), rel=1e-9)
    iso = isochrones(demo.network, demo.agencies.iloc[:2], thresholds=[15, 30])
    html = make_coverage_map(model, isochrones=iso).get_root().render()
    assert "Service area: " + str(demo.agencies["name"].iloc[0]) in html


def test_export_with_accessibility_scores(matrix, units, agencies, tmp_path):
    from planning.accessibility import AccessibilityModel

    model = CoverageModel(matrix, units, agencies).solve()
    acc = AccessibilityModel(matrix, units, agencies).solve()
    data = coverage_to_xlsx(model, accessibility=acc)
    sheets = pd.read_excel(io.BytesIO(data), sheet_name=None, dtype={"unit_id": str})
    assert sheets["units"]["e2sfca_score"].to_numpy() == pytest.approx(acc.scores)
    assert sheets["units"]["access_class"].iloc[5] == "no_access"
    assert sheets["accessibility"]["agency_id"].tolist() == ["H1", "I1", "M1", "M2"]
    coverage_to_gpkg(model, accessibility=acc, path=tmp_path / "a.gpkg")
    back = gpd.read_file(tmp_path / "a.gpkg", layer="units")
    assert back["access_class"].tolist() == acc.classes.tolist()
