"""Siting models: hand-checked answers, equality with spopt's objectives, capacity, greedy, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pulp
import pytest

from geo.errors import InputError, PlanningError
from geo.traveltime import TravelMatrix
from planning.siting import LSCP, MCLP, Greedy, PMedian


def _instance(seed: int, n_units: int = 140, n_cand: int = 35, n_exist: int = 3):
    """Points in a 50 × 50 km square; minutes = km at 60 km/h, so distance equals minutes."""
    rng = np.random.default_rng(seed)
    units = rng.uniform(0, 50, (n_units, 2))
    cands = rng.uniform(0, 50, (n_cand, 2))
    exist = rng.uniform(0, 50, (n_exist, 2))
    cand_min = np.linalg.norm(cands[:, None] - units[None], axis=2)
    exist_min = np.linalg.norm(exist[:, None] - units[None], axis=2)
    demand = rng.integers(1, 30, n_units).astype(float)
    return cand_min, exist_min, demand


def _spopt_inputs(cand_min, exist_min):
    """spopt wants clients × facilities with the fixed facilities flagged."""
    full = np.vstack([exist_min, cand_min]).T
    predefined = np.r_[np.ones(len(exist_min)), np.zeros(len(cand_min))].astype(int)
    return full, predefined


CBC = pulp.PULP_CBC_CMD(msg=False)


# ---------------------------------------------------------------------------------------------------------------------
# Hand-checked tiny instance
#
# units      u0  u1  u2  u3    demand 10, 20, 30, 40
# cand a      5  50  50  50
# cand b     50  10  12  50
# cand c     50  50  14  13
# existing    8  50  50  50    → u0 already within 15 min

TINY = np.array([[5, 50, 50, 50], [50, 10, 12, 50], [50, 50, 14, 13]], dtype=float)
TINY_EXIST = np.array([[8, 50, 50, 50]], dtype=float)
TINY_DEMAND = np.array([10, 20, 30, 40], dtype=float)


def test_mclp_tiny_by_hand():
    model = MCLP(TINY, threshold_min=15, p=1, demand=TINY_DEMAND, existing_matrix=TINY_EXIST,
                 candidate_ids=["a", "b", "c"]).solve()
    # c covers u2 + u3 = 70 more; b covers u1 + u2 = 50; plus u0 (10) from the existing agency
    assert model.selected_ids == ["c"]
    assert model.objective == pytest.approx(80.0)
    assert model.added_demand == pytest.approx(70.0)
    assert model.mip_gap == pytest.approx(0.0, abs=1e-9)
    cov = model.unit_coverage
    assert cov["newly_covered"].tolist() == [False, False, True, True]
    assert cov.loc["u3", "nearest_id"] == "c"
    assert model.assignment.loc["u0"] == "e0"


def test_lscp_tiny_by_hand():
    model = LSCP(TINY, threshold_min=15, demand=TINY_DEMAND, existing_matrix=TINY_EXIST,
                 candidate_ids=["a", "b", "c"]).solve()
    assert sorted(model.selected_ids) == ["b", "c"]
    assert model.objective == 2
    # with a cheaper a it is still b + c: a covers only what the existing agency already does
    share = LSCP(TINY, threshold_min=15, demand=TINY_DEMAND, existing_matrix=TINY_EXIST, coverage_share=0.5,
                 candidate_ids=["a", "b", "c"]).solve()
    assert share.selected_ids == ["c"]  # 10 + 70 = 80 % ≥ 50 %
    assert share.summary()["covered_share"] == pytest.approx(0.8)


def test_lscp_setup_cost_trades_count_for_cost():
    # without existing agencies a + b + c (cost 3) or d alone cover every unit
    matrix = np.vstack([TINY, [[10, 10, 10, 10]]])
    cheap = LSCP(matrix, threshold_min=15, setup_cost=[1, 1, 1, 3.5], candidate_ids=list("abcd")).solve()
    assert cheap.selected_ids == ["a", "b", "c"]
    assert cheap.objective == pytest.approx(3.0)
    pricey = LSCP(matrix, threshold_min=15, setup_cost=[1, 1, 1, 2.5], candidate_ids=list("abcd")).solve()
    assert pricey.selected_ids == ["d"]
    assert pricey.objective == pytest.approx(2.5)


def test_pmedian_tiny_by_hand():
    model = PMedian(TINY, p=1, demand=TINY_DEMAND, existing_matrix=TINY_EXIST, candidate_ids=["a", "b", "c"]).solve()
    # existing gives 10·8 + 50·(20+30+40) = 4580; b: 80 + 200 + 360 + 2000 = 2640; c: 80 + 1000 + 420 + 520 = 2020
    assert model.selected_ids == ["c"]
    assert model.objective == pytest.approx(2020.0)
    assert model.mean_travel_min == pytest.approx(20.2)


def test_pmedian_unit_only_candidates_reach():
    matrix = np.array([[5.0, np.inf], [9.0, 30.0]])
    model = PMedian(matrix, p=1, demand=[1.0, 1.0]).solve()
    # a is nearer to u0 but cannot reach u1: only b serves every unit
    assert model.selected_ids == ["c1"]
    assert model.objective == pytest.approx(39.0)


# ---------------------------------------------------------------------------------------------------------------------
# Same objective as spopt on the same matrix (fixed existing facilities as spopt's predefined facilities)


@pytest.mark.parametrize("seed", [3, 11])
def test_mclp_equals_spopt(seed):
    from spopt.locate import MCLP as SpoptMCLP

    cand_min, exist_min, demand = _instance(seed)
    full, predefined = _spopt_inputs(cand_min, exist_min)
    for p in (2, 5):
        ours = MCLP(cand_min, threshold_min=9, p=p, demand=demand, existing_matrix=exist_min).solve()
        ref = SpoptMCLP.from_cost_matrix(full, demand, 9, p + len(exist_min),
                                         predefined_facilities_arr=predefined).solve(CBC)
        assert ours.objective == pytest.approx(pulp.value(ref.problem.objective), abs=1e-6)
        assert ours.status == "Optimal"


def test_mclp_equals_spopt_without_existing():
    from spopt.locate import MCLP as SpoptMCLP

    cand_min, _, demand = _instance(5)
    ours = MCLP(cand_min, threshold_min=8, p=4, demand=demand).solve()
    ref = SpoptMCLP.from_cost_matrix(cand_min.T, demand, 8, 4).solve(CBC)
    assert ours.objective == pytest.approx(pulp.value(ref.problem.objective), abs=1e-6)


@pytest.mark.parametrize("seed", [3, 11])
def test_lscp_equals_spopt(seed):
    from spopt.locate import LSCP as SpoptLSCP

    cand_min, exist_min, _ = _instance(seed)
    threshold = float(np.ceil(np.vstack([cand_min, exist_min]).min(axis=0).max())) + 1
    full, predefined = _spopt_inputs(cand_min, exist_min)
    ours = LSCP(cand_min, threshold_min=threshold, existing_matrix=exist_min).solve()
    ref = SpoptLSCP.from_cost_matrix(full, threshold, predefined_facilities_arr=predefined).solve(CBC)
    # spopt counts the predefined facilities too
    assert ours.objective == pulp.value(ref.problem.objective) - len(exist_min)
    assert ours.objective >= 3
    alone = float(np.ceil(cand_min.min(axis=0).max())) + 1  # without existing agencies every unit needs a candidate
    ref0 = SpoptLSCP.from_cost_matrix(cand_min.T, alone).solve(CBC)
    assert LSCP(cand_min, threshold_min=alone).solve().objective == pulp.value(ref0.problem.objective)


@pytest.mark.parametrize("seed", [3, 11])
def test_pmedian_equals_spopt(seed):
    from spopt.locate import PMedian as SpoptPMedian

    cand_min, exist_min, demand = _instance(seed, n_units=90, n_cand=25)
    full, predefined = _spopt_inputs(cand_min, exist_min)
    ours = PMedian(cand_min, p=3, demand=demand, existing_matrix=exist_min).solve()
    ref = SpoptPMedian.from_cost_matrix(full, demand, 3 + len(exist_min),
                                        predefined_facilities_arr=predefined).solve(CBC)
    assert ours.objective == pytest.approx(pulp.value(ref.problem.objective), rel=1e-9)
    ref0 = SpoptPMedian.from_cost_matrix(cand_min.T, demand, 3).solve(CBC)
    assert PMedian(cand_min, p=3, demand=demand).solve().objective == pytest.approx(
        pulp.value(ref0.problem.objective), rel=1e-9)


# ---------------------------------------------------------------------------------------------------------------------
# Capacitated variants


def test_capacitated_mclp_counts_only_what_capacity_takes():
    # one candidate reaches u0 (demand 8) and u1 (demand 7) but can take 10
    matrix = np.array([[5.0, 6.0, 40.0]])
    model = MCLP(matrix, threshold_min=10, p=1, demand=[8.0, 7.0, 5.0], candidate_capacity=[10.0]).solve()
    assert model.objective == pytest.approx(10.0)
    assert model.allocation["demand"].sum() == pytest.approx(10.0)
    uncapped = MCLP(matrix, threshold_min=10, p=1, demand=[8.0, 7.0, 5.0]).solve()
    assert uncapped.objective == pytest.approx(15.0)


def test_capacitated_mclp_existing_capacity_and_choice():
    # existing agency near u0 is full up to 4; candidate a (cap 20) reaches u0+u1, b (cap 5) reaches u0+u1+u2
    matrix = np.array([[5.0, 5.0, 40.0], [5.0, 5.0, 5.0]])
    exist = np.array([[3.0, 40.0, 40.0]])
    model = MCLP(matrix, threshold_min=10, p=1, demand=[6.0, 6.0, 6.0], existing_matrix=exist,
                 candidate_capacity=[20.0, 5.0], existing_capacity=[4.0], candidate_ids=["a", "b"]).solve()
    assert model.selected_ids == ["a"]
    assert model.objective == pytest.approx(12.0)  # 4 by the existing agency + 8 by a (a could take 12)
    assert model.added_demand == pytest.approx(8.0)


def test_capacitated_lscp_needs_more_sites_than_uncapacitated():
    cand_min, exist_min, demand = _instance(7, n_units=60, n_cand=20)
    plain = LSCP(cand_min, threshold_min=20, demand=demand, existing_matrix=exist_min, coverage_share=0.9).solve()
    capped = LSCP(cand_min, threshold_min=20, demand=demand, existing_matrix=exist_min, coverage_share=0.9,
                  candidate_capacity=np.full(20, demand.sum() / 8), existing_capacity=np.full(3, 50.0)).solve()
    assert capped.objective > plain.objective
    assert capped.allocation["demand"].sum() >= 0.9 * demand.sum() - 1e-6
    served = capped.allocation.groupby("site_id")["demand"].sum()
    assert (served.filter(like="e") <= 50.0 + 1e-6).all()


def test_capacitated_pmedian_splits_demand():
    # a is closest to both units but can take only 5 of the 10
    matrix = np.array([[1.0, 1.0], [10.0, 10.0]])
    model = PMedian(matrix, p=2, demand=[5.0, 5.0], candidate_capacity=[5.0, 100.0]).solve()
    assert model.objective == pytest.approx(5 * 1 + 5 * 10)
    with pytest.raises(PlanningError, match="exceeds"):
        PMedian(matrix, p=1, demand=[5.0, 5.0], candidate_capacity=[5.0, 6.0])


# ---------------------------------------------------------------------------------------------------------------------
# Side constraints


def test_group_minimums_and_budget_bind():
    cand_min, exist_min, demand = _instance(3)
    groups = np.where(np.arange(len(cand_min)) < 5, "north", "south")
    free = MCLP(cand_min, threshold_min=9, p=4, demand=demand, existing_matrix=exist_min).solve()
    forced = MCLP(cand_min, threshold_min=9, p=4, demand=demand, existing_matrix=exist_min,
                  candidate_group=groups, min_new_by_group={"north": 3}).solve()
    assert (groups[forced.selected] == "north").sum() >= 3
    assert forced.objective <= free.objective + 1e-9
    cost = np.where(np.arange(len(cand_min)) % 2 == 0, 1.0, 3.0)
    capped = MCLP(cand_min, threshold_min=9, p=4, demand=demand, setup_cost=cost, budget=4.0).solve()
    assert cost[capped.selected].sum() <= 4.0
    assert len(capped.selected) == 4


# ---------------------------------------------------------------------------------------------------------------------
# Greedy


def test_greedy_is_never_better_than_exact():
    cand_min, exist_min, demand = _instance(11)
    exact = MCLP(cand_min, threshold_min=9, p=5, demand=demand, existing_matrix=exist_min).solve()
    greedy = Greedy(cand_min, goal="coverage", threshold_min=9, p=5, demand=demand, existing_matrix=exist_min).solve()
    assert greedy.objective <= exact.objective + 1e-9
    assert greedy.gains == sorted(greedy.gains, reverse=True)
    median = PMedian(cand_min, p=3, demand=demand, existing_matrix=exist_min).solve()
    g_median = Greedy(cand_min, goal="median", p=3, demand=demand, existing_matrix=exist_min).solve()
    assert g_median.objective >= median.objective - 1e-9
    cover = Greedy(TINY, goal="cover_all", threshold_min=15, existing_matrix=TINY_EXIST).solve()
    assert cover.objective == 2 and cover.unit_coverage["covered"].all()


def test_greedy_tiny_order():
    greedy = Greedy(TINY, goal="coverage", threshold_min=15, p=2, demand=TINY_DEMAND, candidate_ids=list("abc")).solve()
    assert greedy.selected_ids == ["c", "b"]  # c brings 70, then b brings u1 (20) over a's u0 (10)
    assert greedy.gains == [70.0, 20.0]
    assert greedy.objective == pytest.approx(90.0)


# ---------------------------------------------------------------------------------------------------------------------
# TravelMatrix input


def test_from_travel_matrix_aligns_units_and_demand():
    candidates = TravelMatrix(TINY, ["a", "b", "c"], ["u0", "u1", "u2", "u3"])
    existing = TravelMatrix(TINY_EXIST[:, ::-1], ["old"], ["u3", "u2", "u1", "u0"])
    demand = pd.Series([40.0, 30.0, 20.0, 10.0], index=["u3", "u2", "u1", "u0"])
    model = MCLP.from_travel_matrix(candidates, existing=existing, demand=demand, threshold_min=15, p=1).solve()
    assert model.selected_ids == ["c"]
    assert model.objective == pytest.approx(80.0)
    assert model.assignment.loc["u0"] == "old"
    with pytest.raises(InputError, match="demand"):
        MCLP.from_travel_matrix(candidates, demand=demand.iloc[:3], threshold_min=15, p=1)


# ---------------------------------------------------------------------------------------------------------------------
# Bad input: raised before the solver, with the binding constraint named


def test_p_larger_than_candidates():
    with pytest.raises(PlanningError, match="p=4 .* only 3 candidates"):
        MCLP(TINY, threshold_min=15, p=4)


def test_threshold_too_small():
    with pytest.raises(PlanningError, match="closest candidate–unit pair is 5.0 min"):
        MCLP(TINY, threshold_min=2, p=1)
    with pytest.raises(PlanningError, match="so small"):
        LSCP(TINY, threshold_min=4)


def test_no_candidates_after_exclusions():
    with pytest.raises(PlanningError, match="no candidate sites are left"):
        MCLP(np.zeros((0, 4)), threshold_min=15, p=1)


def test_candidates_outside_network_extent():
    matrix = TINY.copy()
    matrix[1] = np.inf
    with pytest.raises(InputError, match="outside the road network") as err:
        PMedian(matrix, p=1, candidate_ids=["a", "b", "c"])
    assert [p.value for p in err.value.problems] == ["b"]


def test_lscp_names_uncoverable_units():
    with pytest.raises(PlanningError, match=r"u0 \(50.0 min\)"):
        LSCP(TINY[1:], threshold_min=15)


def test_every_input_problem_reported_at_once():
    with pytest.raises(InputError) as err:
        MCLP(np.array([[1.0, np.nan]]), threshold_min=-1, p=0, demand=[1.0, -2.0], unit_ids=["x", "x"])
    reasons = " | ".join(str(p) for p in err.value.problems)
    for expected in ("NaN", "threshold_min", "p must", "demand", "repeats"):
        assert expected in reasons
    with pytest.raises(InputError, match="existing_capacity"):
        MCLP(TINY, threshold_min=15, p=1, existing_matrix=TINY_EXIST, candidate_capacity=[1, 1, 1])
    with pytest.raises(InputError, match="same units"):
        MCLP(TINY, threshold_min=15, p=1, existing_matrix=np.zeros((1, 3)))


def test_group_minimums_checked_before_solving():
    with pytest.raises(PlanningError, match="north: needs 2, has 1"):
        MCLP(TINY, threshold_min=15, p=2, candidate_group=["north", "south", "south"], min_new_by_group={"north": 2})
    with pytest.raises(PlanningError, match="more than p=1"):
        MCLP(TINY, threshold_min=15, p=1, candidate_group=["n", "s", "s"], min_new_by_group={"n": 1, "s": 1})


def test_reductions_keep_the_optimum_with_duplicate_candidates():
    cand_min, exist_min, demand = _instance(3)
    doubled = np.vstack([cand_min, cand_min])  # every candidate twice: one of each pair is dominated
    once = MCLP(cand_min, threshold_min=9, p=5, demand=demand, existing_matrix=exist_min).solve()
    twice = MCLP(doubled, threshold_min=9, p=5, demand=demand, existing_matrix=exist_min).solve()
    assert twice.objective == pytest.approx(once.objective)
    assert len(twice.selected) == 5
    # more sites than non-dominated candidates: the reduction steps aside and p is still met
    many = MCLP(doubled, threshold_min=9, p=60, demand=demand, existing_matrix=exist_min).solve()
    assert len(many.selected) == 60
    cover = LSCP(doubled, threshold_min=30, existing_matrix=exist_min).solve()
    assert cover.objective == LSCP(cand_min, threshold_min=30, existing_matrix=exist_min).solve().objective
