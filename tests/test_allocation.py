"""District allocation (分片包干) on small synthetic grids: rules, diagnosis and results with real numbers."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.errors import InputError, PlanningError
from geo.traveltime import TravelMatrix
from planning.adjacency import build_adjacency
from planning.allocation import LP_SPLIT_SHARE, AllocationModel, AllocationWeights, count_contiguity_violations
from planning.plan_ops import Plan

SIZE = 0.01  # degrees; about 0.8 × 1.1 km at 42.5° N


def grid_units(nx: int, ny: int, *, demand=None, settings=None, island: bool = False) -> gpd.GeoDataFrame:
    boxes, ids, setting, town = [], [], [], []
    for j in range(ny):
        for i in range(nx):
            boxes.append(shapely.box(1.4 + i * SIZE, 42.4 + j * SIZE, 1.4 + (i + 1) * SIZE, 42.4 + (j + 1) * SIZE))
            ids.append(f"U{j}{i}")
            setting.append(settings(i, j) if settings else "rural")
            town.append("North" if j >= ny // 2 else "South")
    if island:
        boxes.append(shapely.box(1.4 + (nx + 2) * SIZE, 42.4, 1.4 + (nx + 3) * SIZE, 42.4 + SIZE))
        ids.append("ISLE")
        setting.append("rural")
        town.append("South")
    units = gpd.GeoDataFrame({"unit_id": ids, "name": ids, "township": town, "setting": setting}, geometry=boxes,
                             crs="EPSG:4326")
    units["demand"] = 10.0 if demand is None else demand
    units["population"] = units["demand"] * 100
    return units


def agencies_at(units, cells: list[str], capacity, *, status=None, quality=None, leading=None) -> gpd.GeoDataFrame:
    pts = [units.set_index("unit_id").geometry[c].representative_point() for c in cells]
    n = len(cells)
    return gpd.GeoDataFrame({
        "agency_id": [f"A{k}" for k in range(n)], "name": [f"Agency {k}" for k in range(n)],
        "status": status or ["designated"] * n, "capacity": capacity, "certified_caregivers": np.nan,
        "quality_score": quality or [80.0] * n, "leading": leading or [False] * n,
    }, geometry=pts, crs="EPSG:4326")


def straight_matrix(units, agencies, *, speed_kph: float = 30.0) -> TravelMatrix:
    up = units.geometry.representative_point()
    ux, uy = up.x.to_numpy(), up.y.to_numpy()
    ax, ay = agencies.geometry.x.to_numpy(), agencies.geometry.y.to_numpy()
    km = np.hypot((ax[:, None] - ux[None, :]) * 82.0, (ay[:, None] - uy[None, :]) * 111.0)
    return TravelMatrix(1.0 + km / speed_kph * 60.0, agencies["agency_id"], units["unit_id"])


@pytest.fixture(scope="module")
def grid():
    units = grid_units(6, 5)
    agencies = agencies_at(units, ["U00", "U05", "U42"], [120.0, 100.0, 110.0])
    return units, agencies, straight_matrix(units, agencies)


@pytest.fixture(scope="module")
def solved(grid):
    units, agencies, matrix = grid
    return AllocationModel(units, agencies, matrix, time_limit_s=30, mountain_rule="off").solve()


def test_adjacency_rook_queen_and_islands():
    units = grid_units(3, 3, island=True)
    rook = build_adjacency(units, rule="rook")
    queen = build_adjacency(units, rule="queen")
    assert sorted(rook.neighbours("U11")) == ["U01", "U10", "U12", "U21"]
    assert len(queen.neighbours("U11")) == 8
    assert rook.islands == ["ISLE"]
    assert rook.matrix.nnz == 2 * 12 and queen.matrix.nnz == 2 * 20


def test_adjacency_refuses_duplicates():
    units = grid_units(2, 1)
    units.loc[1, "unit_id"] = "U00"
    with pytest.raises(InputError, match="duplicate unit id"):
        build_adjacency(units)


def test_every_unit_once_capacity_and_contiguity(grid, solved):
    units, agencies, _ = grid
    assert solved.assignment.notna().all()
    table = solved.agency_table.set_index("agency_id")
    assert table["units"].sum() == 30
    assert (table["demand"] <= table["capacity"] + 1e-9).all()
    # 300 demand over 330 capacity: someone is at least 300/330 full on average
    assert table["demand"].sum() == pytest.approx(300.0)
    assert solved.comparison.loc["plan", "contiguity_violations"] == 0
    assert solved.comparison.loc["plan", "overload_demand"] == 0
    assert solved.mip_gap <= 1e-3
    assert solved.status == "Optimal"


def test_capacity_makes_plan_costlier_than_nearest(solved):
    cmp = solved.comparison
    # Nearest assignment overloads someone (the three agencies split the grid unevenly) ...
    assert cmp.loc["nearest", "overload_demand"] > 0
    # ... and the capacity-feasible plan pays for it in travel.
    assert cmp.loc["plan", "weighted_travel"] >= cmp.loc["nearest", "weighted_travel"] - 1e-6
    assert solved.summary["extra_travel_vs_nearest"] >= 0


def test_unit_table_backups_have_room(solved):
    ut = solved.unit_table
    assert (ut["backup_agency_id"] != ut["agency_id"]).all()
    spare = (solved.agency_table.set_index("agency_id")["capacity"]
             - solved.agency_table.set_index("agency_id")["demand"])
    # Units of one agency moving to their backups together never overfill a backup.
    for agency, group in ut.groupby("agency_id"):
        moved = group.groupby("backup_agency_id")["demand"].sum()
        assert (moved <= spare[moved.index] + 1e-9).all(), agency


def test_contiguity_counter_counts_cut_off_units():
    units = grid_units(3, 1)
    adj = build_adjacency(units)
    owner = np.array([0, 1, 0])
    assert count_contiguity_violations(owner, adj.matrix, {0: 0, 1: 1}) == 1
    assert count_contiguity_violations(np.array([0, 0, 1]), adj.matrix, {0: 0, 1: 2}) == 0


def test_total_capacity_short_names_numbers(grid):
    units, agencies, matrix = grid
    small = agencies.assign(capacity=[100.0, 100.0, 50.0])
    with pytest.raises(PlanningError, match=r"total capacity 250 < demand 300"):
        AllocationModel(units, small, matrix).solve()


def test_reachable_capacity_short_in_mountain_townships():
    units = grid_units(6, 4, settings=lambda i, j: "mountain" if j >= 2 else "urban")
    agencies = agencies_at(units, ["U00", "U05", "U32"], [200.0, 200.0, 30.0])
    matrix = straight_matrix(units, agencies)
    # The mountain agency alone reaches the north within the cap, and it is small.
    m = matrix.minutes.copy()
    north = units["township"].eq("North").to_numpy()
    m[:2, north] = 99.0
    capped = TravelMatrix(m, matrix.agency_ids, matrix.unit_ids)
    with pytest.raises(PlanningError, match=r"total capacity 30 < demand 120 in the mountain townships North"):
        AllocationModel(units, agencies, capped, travel_cap_min=60).solve()


def test_no_active_agencies(grid):
    units, agencies, matrix = grid
    off = agencies.assign(status=["suspended", "terminated", "terminated"])
    with pytest.raises(PlanningError, match="no active agencies"):
        AllocationModel(units, off, matrix).solve()


def test_locks_that_exceed_capacity(grid):
    units, agencies, matrix = grid
    locks = {u: "A2" for u in ["U40", "U41", "U42", "U43", "U44", "U45", "U30", "U31", "U32", "U33", "U34", "U35"]}
    with pytest.raises(PlanningError, match=r"locks contradict capacity: units locked to A2 carry demand 120 > its "
                                            r"capacity 110"):
        AllocationModel(units, agencies, matrix, locks=locks).solve()


def test_agency_outside_region_is_refused(grid):
    units, agencies, matrix = grid
    far = agencies.copy()
    far.loc[1, "geometry"] = shapely.Point(2.5, 42.4)
    with pytest.raises(InputError, match=r"outside the region"):
        AllocationModel(units, far, matrix)


def test_travel_cap_leaves_a_reasoned_unassigned_unit():
    units = grid_units(4, 1, demand=[10.0, 10.0, 10.0, 10.0])
    agencies = agencies_at(units, ["U00"], [100.0])
    matrix = straight_matrix(units, agencies)
    cap = float(matrix.minutes[0, 2]) + 0.1
    model = AllocationModel(units, agencies, matrix, travel_cap_min=cap).solve()
    assert model.assignment["U03"] is None
    assert model.assignment[["U00", "U01", "U02"]].tolist() == ["A0", "A0", "A0"]
    reason = model.unit_table.set_index("unit_id").loc["U03", "reason"]
    assert reason.startswith("no agency within the travel cap")


def test_locks_and_forbidden_pairs_hold(grid):
    units, agencies, matrix = grid
    free = AllocationModel(units, agencies, matrix, mountain_rule="off", time_limit_s=30).solve()
    assert free.assignment["U03"] != "A0" and free.assignment["U20"] == "A0"
    model = AllocationModel(units, agencies, matrix, mountain_rule="off", locks={"U03": "A0"},
                            forbidden=[("A0", "U20")], time_limit_s=30).solve()
    assert model.assignment["U03"] == "A0"
    assert model.assignment["U20"] != "A0"
    assert model.comparison.loc["plan", "contiguity_violations"] == 0


def test_suspended_agency_keeps_units_and_gets_no_new(grid, solved):
    units, agencies, matrix = grid
    previous = solved.assignment.to_dict()
    held = sorted(u for u, a in previous.items() if a == "A1")
    model = AllocationModel(units, agencies, matrix, mountain_rule="off", previous=previous, suspended=["A1"],
                            time_limit_s=30).solve()
    assert sorted(model.assignment[model.assignment == "A1"].index) == held


def test_island_is_exempt_and_reported():
    units = grid_units(4, 3, island=True)
    agencies = agencies_at(units, ["U00", "U23"], [80.0, 80.0])
    model = AllocationModel(units, agencies, straight_matrix(units, agencies), mountain_rule="off").solve()
    assert model.islands == ["ISLE"]
    assert model.assignment["ISLE"] in {"A0", "A1"}
    assert "island" in model.unit_table.set_index("unit_id").loc["ISLE", "note"]


def test_volunteering_bonus_moves_a_border_unit(grid, solved):
    units, agencies, matrix = grid
    # A unit on a zone border that its agency does not hold yet.
    target = next(u for u, a in solved.assignment.items() if a == "A2"
                  and any(solved.assignment[n] == "A1" for n in solved.adjacency.neighbours(u)))
    model = AllocationModel(units, agencies, matrix, mountain_rule="off", preferences={"A1": [target]},
                            weights=AllocationWeights(volunteer_bonus_min=60.0), time_limit_s=30).solve()
    assert model.assignment[target] == "A1"


def test_mountain_rule_gives_urban_holders_mountain_demand():
    units = grid_units(6, 4, settings=lambda i, j: "urban" if i <= 1 else ("mountain" if i >= 4 else "rural"))
    agencies = agencies_at(units, ["U00", "U30", "U05"], [100.0, 100.0, 150.0])
    matrix = straight_matrix(units, agencies)
    off = AllocationModel(units, agencies, matrix, mountain_rule="off").solve()
    hard = AllocationModel(units, agencies, matrix, mountain_rule="hard",
                           weights=AllocationWeights(mountain_share=0.5), time_limit_s=30).solve()
    t_off = off.agency_table.set_index("agency_id")
    t_hard = hard.agency_table.set_index("agency_id")
    # Without the rule the urban agencies take at most one mountain unit; with it, far more.
    assert t_off.loc[["A0", "A1"], "mountain_demand"].sum() <= 10.0
    assert t_hard.loc[["A0", "A1"], "mountain_demand"].sum() >= 30.0
    ratio = 0.5 * 80.0 / 80.0  # share × mountain demand / urban demand
    for a in ("A0", "A1"):
        assert t_hard.loc[a, "mountain_demand"] >= ratio * t_hard.loc[a, "urban_demand"] - 1e-6
    assert hard.comparison.loc["plan", "contiguity_violations"] == 0


def test_leading_partner_is_the_backup(grid):
    units, agencies, matrix = grid
    roomy = agencies.assign(capacity=[150.0, 150.0, 300.0])
    model = AllocationModel(units, roomy, matrix, mountain_rule="off", pairs={"A0": "A2"}, time_limit_s=30).solve()
    ut = model.unit_table
    a0 = ut[ut["agency_id"] == "A0"]
    assert len(a0) > 0 and (a0["backup_agency_id"] == "A2").all()
    assert model.agency_table.set_index("agency_id").loc["A2", "backs_up"] == "A0"


def test_load_balance_band(grid):
    units, agencies, matrix = grid
    model = AllocationModel(units, agencies, matrix, mountain_rule="off", balance_band=0.05, time_limit_s=30).solve()
    ratio = model.agency_table["load_ratio"]
    overall = 300.0 / 330.0
    assert (ratio >= 0.95 * overall - 1e-9).all() and (ratio <= 1.05 * overall + 1e-9).all()


def test_plan_round_trips_through_json(solved):
    plan = solved.to_plan()
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.assignment == plan.assignment
    assert again.version == 1 and again.parameters["contiguity"] is True
    assert again.backup == plan.backup


@pytest.fixture(scope="module")
def mountain_grid():
    units = grid_units(7, 6, demand=np.random.default_rng(5).uniform(2, 18, 42).round(3),
                       settings=lambda i, j: "urban" if i <= 1 else ("mountain" if i >= 5 else "rural"))
    agencies = agencies_at(units, ["U00", "U51", "U23", "U06", "U45"], [110.0, 95.0, 100.0, 80.0, 95.0],
                           quality=[85.0, 70.0, 90.0, 60.0, 75.0])
    return units, agencies, straight_matrix(units, agencies)


def test_cpsat_and_highs_reach_the_same_optimum(mountain_grid):
    units, agencies, matrix = mountain_grid
    plans = {s: AllocationModel(units, agencies, matrix, time_limit_s=60, mip_rel_gap=1e-4, solver=s).solve()
             for s in ("highs", "cpsat")}
    assert plans["highs"].model_size["solver"] == plans["highs"].summary["solver"] == "HiGHS"
    assert plans["cpsat"].model_size["solver"] == plans["cpsat"].summary["solver"] == "CP-SAT"
    for plan in plans.values():
        assert plan.status == "Optimal" and plan.mip_gap <= 1e-4
        assert plan.agency_table["load_ratio"].max() <= 1 + 1e-9
        assert plan.summary["unassigned"] == 0
    assert plans["cpsat"].objective == pytest.approx(plans["highs"].objective, rel=2e-4)
    # The soft urban + mountain rule is priced in: the objective exceeds the plain cost of the pairs.
    assert plans["cpsat"].agency_table["mountain_demand"].sum() > 0


def test_small_models_are_solved_whole_and_large_ones_pruned(mountain_grid):
    units, agencies, matrix = mountain_grid
    whole = AllocationModel(units, agencies, matrix, time_limit_s=30, candidates_k=2).solve()
    assert whole.attempts[0]["k"] is None and whole.model_size["pruned"] is False
    pruned = AllocationModel(units, agencies, matrix, time_limit_s=30, candidates_k=2, prune_above_pairs=0).solve()
    assert pruned.attempts[0]["k"] == 2
    assert pruned.attempts[0]["pairs"] < whole.model_size["pairs"]
    # The whole model's optimum is never worse than a pruned one's.
    assert whole.objective <= pruned.objective + 1e-6 * abs(pruned.objective)


def test_unknown_solver_is_refused(grid):
    units, agencies, matrix = grid
    with pytest.raises(InputError, match="solver must be one of"):
        AllocationModel(units, agencies, matrix, solver="cplex")


def test_auto_solver_follows_contiguity_and_the_lp_split(mountain_grid):
    units, agencies, matrix = mountain_grid
    zoned = AllocationModel(units, agencies, matrix, time_limit_s=30).solve()
    loose = AllocationModel(units, agencies, matrix, time_limit_s=30, contiguity=False).solve()
    assert zoned.model_size["contiguity"] == "ordered"
    split = zoned.model_size["lp_split_share"]
    assert 0 <= split <= 1
    assert zoned.model_size["solver"] == ("CP-SAT" if split > LP_SPLIT_SHARE else "HiGHS")
    assert loose.model_size["solver"] == "HiGHS" and loose.model_size["contiguity"] == "none"
    # Dropping a constraint never makes the optimum worse.
    assert loose.objective <= zoned.objective + 1e-6 * abs(zoned.objective)


def test_time_limit_without_a_plan_names_the_hard_rules_to_relax():
    from geo.region import load_demo_region

    region = load_demo_region()
    # On the demo region no plan satisfying the hard urban + mountain rule is found in 2 s (nor in 120 s).
    with pytest.raises(PlanningError, match=r"no feasible plan found within the time limit of 2 s.*"
                                            r"mountain_rule='soft'.*contiguity"):
        AllocationModel(region.units, region.agencies, region.travel_matrix(), time_limit_s=2,
                        mountain_rule="hard").solve()


def test_demo_region_is_solved_whole_and_proven_optimal_by_cpsat():
    from geo.region import load_demo_region

    region = load_demo_region()
    model = AllocationModel(region.units, region.agencies, region.travel_matrix(), time_limit_s=60).solve()
    # Town-sized units against small agencies: the LP relaxation splits most units, so auto picks CP-SAT.
    assert model.model_size["lp_split_share"] > 0.6 and model.model_size["solver"] == "CP-SAT"
    assert model.model_size["pruned"] is False and model.attempts[0]["k"] is None
    assert model.status == "Optimal" and model.mip_gap <= 1e-4
    assert model.summary["unassigned"] == 0
    assert count_contiguity_violations(model.owner, model.adjacency.matrix, model.roots,
                                       np.isin(model.unit_ids, model.islands)) == 0
    loads = model.agency_table
    assert (loads["demand"] <= loads["capacity"] + 1e-6).all()


def test_a_very_short_time_limit_still_returns_a_valid_plan_with_an_honest_gap():
    from geo.region import load_demo_region

    region = load_demo_region()
    model = AllocationModel(region.units, region.agencies, region.travel_matrix(), time_limit_s=0.1).solve()
    # The seed plan (zones grown from the roots in the model's order, led by the LP relaxation) is kept.
    assert model.summary["unassigned"] == 0
    assert count_contiguity_violations(model.owner, model.adjacency.matrix, model.roots,
                                       np.isin(model.unit_ids, model.islands)) == 0
    loads = model.agency_table
    assert (loads["demand"] <= loads["capacity"] + 1e-6).all()
    # Not proven: the gap is measured against the LP bound, not taken from the seed's own evaluation.
    if model.status != "Optimal":
        assert 0.01 < model.mip_gap < 1
