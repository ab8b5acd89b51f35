"""Scenarios: built from a model or a matrix, compared, saved as a dict and promoted to the registry."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from geo.errors import InputError, PlanningError
from geo.schema import AGENCY_COLUMNS
from geo.traveltime import TravelMatrix
from planning import candidates as cand
from planning.scenarios import Scenario, compare_scenarios, coverage_table, promote_to_registry
from planning.siting import MCLP

# units u0..u3 (demand 10, 20, 30, 40); one existing agency; candidates a, b, c
CAND = TravelMatrix(np.array([[5, 50, 50, 50], [50, 10, 12, 50], [50, 50, 14, 13]], float),
                    ["a", "b", "c"], ["u0", "u1", "u2", "u3"])
EXIST = TravelMatrix(np.array([[8, 40, 50, 70]], float), ["old"], ["u0", "u1", "u2", "u3"])
DEMAND = pd.Series([10.0, 20.0, 30.0, 40.0], index=["u0", "u1", "u2", "u3"])


@pytest.fixture()
def candidates() -> gpd.GeoDataFrame:
    frame = cand.candidates_from_points([(1.50, 42.5), (1.51, 42.5), (1.52, 42.5)])
    frame["candidate_id"] = ["a", "b", "c"]
    frame["township"] = ["T1", "T1", "T2"]
    return frame


@pytest.fixture()
def status_quo() -> Scenario:
    return Scenario.from_matrix(EXIST, name="status quo", demand=DEMAND)


@pytest.fixture()
def plan(candidates) -> Scenario:
    model = MCLP.from_travel_matrix(CAND, existing=EXIST, demand=DEMAND, threshold_min=15, p=1).solve()
    return Scenario.from_model(model, name="next agency", candidates=candidates,
                               parameters={"min_distance_m": 300}, capacity=30)


def test_coverage_table_by_threshold(status_quo):
    table = coverage_table(status_quo, thresholds=(15, 45, 60)).set_index("threshold_min")
    assert table.loc[15, "covered_demand"] == 10
    assert table.loc[45, "covered_demand"] == 30
    assert table.loc[60, "covered_share"] == pytest.approx(0.6)
    assert table.loc[60, "uncovered_demand"] == 40
    default = coverage_table(status_quo)
    assert default["threshold_min"].tolist() == [15.0, 30.0, 45.0, 60.0]


def test_from_model_records_sites_and_parameters(plan):
    assert plan.new_sites["agency_id"].tolist() == ["plan-c"]
    assert plan.new_sites["township"].tolist() == ["T2"]
    assert plan.new_sites["capacity"].tolist() == [30.0]
    assert plan.parameters["model"] == "MCLP" and plan.parameters["p"] == 1
    assert plan.parameters["min_distance_m"] == 300
    assert plan.unit_travel_min.tolist() == [8.0, 40.0, 14.0, 13.0]
    assert plan.summary["objective"] == pytest.approx(80.0)


def test_compare_side_by_side(status_quo, plan):
    comparison = compare_scenarios(status_quo, plan)
    cov = comparison.coverage.set_index("threshold_min")
    assert cov.loc[15, "covered_share_a"] == pytest.approx(0.1)
    assert cov.loc[15, "covered_share_b"] == pytest.approx(0.8)
    assert cov.loc[15, "uncovered_demand_b"] == 20
    assert cov.loc[60, "covered_share_change"] == pytest.approx(0.4)
    travel = comparison.travel
    assert travel.loc["mean_travel_min", "a"] == pytest.approx((80 + 800 + 1500 + 2800) / 100)
    assert travel.loc["mean_travel_min", "b"] == pytest.approx((80 + 800 + 420 + 520) / 100)
    assert travel.loc["max_travel_min", "change"] == pytest.approx(40 - 70)
    assert travel.loc["new_sites", "b"] == 1
    assert comparison.became_covered(15) == ["u2", "u3"]
    assert comparison.units["became_covered_60"].tolist() == [False, False, False, True]
    assert not comparison.units.filter(like="lost_").to_numpy().any()
    json.dumps(comparison.to_dict())


def test_compare_refuses_different_units(status_quo):
    other = Scenario.from_matrix(EXIST.subset(unit_ids=["u0", "u1"]), name="other", demand=DEMAND)
    with pytest.raises(InputError, match="different units"):
        compare_scenarios(status_quo, other)


def test_dict_round_trip_through_json(plan):
    unreachable = plan.unit_travel_min.copy()
    unreachable.iloc[1] = np.inf
    plan.unit_travel_min = unreachable
    back = Scenario.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert back.name == plan.name and back.created_at == plan.created_at
    assert back.parameters == json.loads(json.dumps(plan.parameters))
    assert np.array_equal(back.unit_travel_min.to_numpy(), plan.unit_travel_min.to_numpy())
    assert np.isinf(back.unit_travel_min.iloc[1])
    assert back.new_sites["agency_id"].tolist() == ["plan-c"]
    assert back.new_sites.geometry.iloc[0].equals(plan.new_sites.geometry.iloc[0])
    assert compare_scenarios(plan, back).coverage["covered_share_change"].abs().max() == 0
    with pytest.raises(InputError, match="incomplete"):
        Scenario.from_dict({"name": "x"})


def test_promote_adds_planned_agencies(plan):
    registry = gpd.GeoDataFrame({c: [None] for c in AGENCY_COLUMNS}, geometry=[Point(1.49, 42.5)], crs="EPSG:4326")
    registry["agency_id"] = ["old"]
    registry["status"] = ["designated"]
    out = promote_to_registry(plan, registry)
    assert len(out) == 2
    new = out.iloc[1]
    assert new["agency_id"] == "plan-c" and new["status"] == "planned" and new["capacity"] == 30
    assert new["care_type"] == "home" and new["township"] == "T2"
    assert set(AGENCY_COLUMNS) <= set(out.columns)
    with pytest.raises(InputError, match="already in the registry"):
        promote_to_registry(plan, out)


def test_promote_needs_capacity_and_sites(status_quo, candidates):
    model = MCLP.from_travel_matrix(CAND, existing=EXIST, demand=DEMAND, threshold_min=15, p=1).solve()
    no_cap = Scenario.from_model(model, name="no capacity", candidates=candidates)
    registry = gpd.GeoDataFrame({"agency_id": ["old"], "status": ["designated"]}, geometry=[Point(1.49, 42.5)],
                                crs="EPSG:4326")
    with pytest.raises(InputError, match="default_capacity"):
        promote_to_registry(no_cap, registry)
    assert promote_to_registry(no_cap, registry, default_capacity=25)["capacity"].iloc[-1] == 25
    with pytest.raises(PlanningError, match="nothing to promote"):
        promote_to_registry(status_quo, registry)


def test_unsolved_model_is_refused(candidates):
    model = MCLP.from_travel_matrix(CAND, existing=EXIST, demand=DEMAND, threshold_min=15, p=1)
    with pytest.raises(PlanningError, match="not solved"):
        Scenario.from_model(model, name="x", candidates=candidates)


def test_adding_one_candidate(status_quo, candidates):
    added = Scenario.from_sites(["b"], name="add b", candidates=candidates, candidate_matrix=CAND,
                                existing_matrix=EXIST, demand=DEMAND, capacity=20)
    assert added.unit_travel_min.tolist() == [8.0, 10.0, 12.0, 50.0]
    assert added.new_sites["agency_id"].tolist() == ["plan-b"]
    assert compare_scenarios(status_quo, added).became_covered(15) == ["u1", "u2"]
    with pytest.raises(InputError, match="unknown"):
        Scenario.from_sites(["zz"], name="x", candidates=candidates, candidate_matrix=CAND, existing_matrix=EXIST,
                            demand=DEMAND)
