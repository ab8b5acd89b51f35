"""Plan operations: shortfall substitution, service-area reduction, suspension, versioned change logs."""

from __future__ import annotations

import json

import pytest

from geo.errors import InputError, PlanningError
from planning.adjacency import build_adjacency
from planning.allocation import AllocationModel
from planning.plan_ops import Plan, reduce_service_area, replan, substitute_shortfall, suspend_agency
from test_allocation import agencies_at, grid_units, straight_matrix


@pytest.fixture(scope="module")
def world():
    units = grid_units(6, 5)
    agencies = agencies_at(units, ["U00", "U05", "U42", "U22"], [120.0, 120.0, 120.0, 120.0])
    matrix = straight_matrix(units, agencies)
    adjacency = build_adjacency(units)
    model = AllocationModel(units, agencies, matrix, adjacency=adjacency, mountain_rule="off", time_limit_s=30)
    return units, agencies, matrix, adjacency, model.solve().to_plan()


def test_shortfall_moves_only_the_dropped_agencys_units(world):
    units, agencies, matrix, adjacency, plan = world
    held = set(plan.units_of("A3"))
    new = substitute_shortfall(plan, units, agencies, matrix, agency_id="A3", adjacency=adjacency,
                               mountain_rule="off")
    assert new.version == 2 and new.parent_version == 1
    assert {c.unit_id for c in new.changes} == held
    assert all(c.from_agency == "A3" and c.to_agency in {"A0", "A1", "A2"} for c in new.changes)
    assert all("dropped out" in c.why for c in new.changes)
    assert "A3" not in set(new.assignment.values())
    # Every other unit stayed where it was.
    assert all(new.assignment[u] == a for u, a in plan.assignment.items() if u not in held)
    assert plan.units_of("A3") == sorted(held)  # the old version is untouched


def test_capacity_fall_moves_the_fewest_units(world):
    units, agencies, matrix, adjacency, plan = world
    load = 10.0 * len(plan.units_of("A3"))
    new = substitute_shortfall(plan, units, agencies, matrix, agency_id="A3", new_capacity=load - 20.0,
                               adjacency=adjacency, mountain_rule="off")
    assert len(new.changes) == 2  # 10 demand per unit, 20 to shed
    assert all(c.from_agency == "A3" for c in new.changes)
    assert len(new.units_of("A3")) == len(plan.units_of("A3")) - 2


def test_service_area_reduction_takes_farthest_units_first(world):
    units, agencies, matrix, adjacency, plan = world
    new = reduce_service_area(plan, units, agencies, matrix, agency_id="A0", n_units=2, adjacency=adjacency,
                              mountain_rule="off")
    moved = [c for c in new.changes if c.from_agency == "A0"]
    assert len(moved) == 2
    times = dict(zip(matrix.unit_ids, matrix.minutes[0]))
    kept = new.units_of("A0")
    assert min(times[c.unit_id] for c in moved) >= max(times[u] for u in kept) - 1.0
    assert ["A0", moved[0].unit_id] in new.parameters["forbidden"]
    assert all("service-area reduction" in c.why for c in moved)


def test_reduction_by_demand_share(world):
    units, agencies, matrix, adjacency, plan = world
    before = len(plan.units_of("A1"))
    new = reduce_service_area(plan, units, agencies, matrix, agency_id="A1", demand_share=0.25,
                              adjacency=adjacency, mountain_rule="off")
    removed = before - len(new.units_of("A1"))
    assert removed * 10.0 >= 0.25 * before * 10.0 and (removed - 1) * 10.0 < 0.25 * before * 10.0


def test_suspension_keeps_units_through_replans(world):
    units, agencies, matrix, adjacency, plan = world
    suspended = suspend_agency(plan, "A2", why="complaints under investigation")
    assert suspended.version == 2 and suspended.changes == []
    assert suspended.parameters["suspended"] == ["A2"]
    bigger = agencies.assign(capacity=[200.0, 200.0, 200.0, 200.0])
    again = replan(suspended, units, bigger, matrix, adjacency=adjacency)
    assert again.version == 3
    assert again.units_of("A2") == plan.units_of("A2")


def test_bad_requests_leave_plan_intact(world):
    units, agencies, matrix, adjacency, plan = world
    before = json.dumps(plan.to_dict(), sort_keys=True)
    with pytest.raises(InputError, match="exactly one of n_units or demand_share"):
        reduce_service_area(plan, units, agencies, matrix, agency_id="A0")
    with pytest.raises(PlanningError):
        substitute_shortfall(plan, units, agencies.assign(capacity=[10.0, 10.0, 10.0, 120.0]), matrix,
                             agency_id="A3", adjacency=adjacency, mountain_rule="off")
    with pytest.raises(InputError, match="holds no unit"):
        substitute_shortfall(plan, units, agencies, matrix, agency_id="A9")
    assert json.dumps(plan.to_dict(), sort_keys=True) == before


def test_change_log_round_trips(world):
    units, agencies, matrix, adjacency, plan = world
    new = substitute_shortfall(plan, units, agencies, matrix, agency_id="A3", adjacency=adjacency,
                               mountain_rule="off")
    again = Plan.from_dict(json.loads(json.dumps(new.to_dict())))
    assert [c.to_dict() for c in again.changes] == [c.to_dict() for c in new.changes]
    assert list(new.changes_frame().columns) == ["unit_id", "from_agency", "to_agency", "why"]
