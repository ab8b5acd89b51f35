"""planning.mip: HiGHS and CP-SAT wrappers agree, CP-SAT's fixed point stays feasible in floating point."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from planning.mip import CpSatMip, HighsMip, make_mip


def capacitated_assignment(seed: int, n_units: int = 14, n_agencies: int = 4):
    """x[a,u] binary, each unit once, fractional demand within capacity, a continuous shortfall per agency:
    the shape of the allocation model, small enough for both solvers to prove."""
    rng = np.random.default_rng(seed)
    demand = rng.uniform(0.5, 9.0, n_units).round(4)
    capacity = np.full(n_agencies, demand.sum() * 1.3 / n_agencies).round(3)
    minutes = rng.uniform(2, 40, (n_agencies, n_units))
    pa, pu = np.divmod(np.arange(n_agencies * n_units), n_units)
    n_p = len(pa)
    mountain = rng.random(n_units) < 0.3
    cost = np.concatenate([demand[pu] * minutes[pa, pu], np.full(n_agencies, 30.0)])
    rows = [pu, n_units + pa, n_units + n_agencies + pa, n_units + n_agencies + np.arange(n_agencies)]
    cols = [np.arange(n_p), np.arange(n_p), np.arange(n_p), n_p + np.arange(n_agencies)]
    # Soft share rule: mountain demand − 0.2 × other demand + shortfall ≥ 0.
    vals = [np.ones(n_p), demand[pu], np.where(mountain[pu], demand[pu], -0.2 * demand[pu]), np.ones(n_agencies)]
    matrix = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(n_units + 2 * n_agencies, n_p + n_agencies)).tocsc()
    row_lower = np.concatenate([np.ones(n_units), np.zeros(n_agencies), np.zeros(n_agencies)])
    row_upper = np.concatenate([np.ones(n_units), capacity, np.full(n_agencies, np.inf)])
    integer = np.concatenate([np.ones(n_p, bool), np.zeros(n_agencies, bool)])
    lower = np.zeros(n_p + n_agencies)
    upper = np.concatenate([np.ones(n_p), np.full(n_agencies, np.inf)])
    return cost, lower, upper, integer, matrix, row_lower, row_upper


def row_activity_ok(model, values, tol=1e-7) -> bool:
    _, lower, upper, _, matrix, row_lower, row_upper = model
    act = sp.csr_matrix(matrix) @ values
    return bool((act >= row_lower - tol).all() and (act <= row_upper + tol).all()
                and (values >= lower - tol).all() and (values <= upper + tol).all())


@pytest.mark.parametrize("seed", range(6))
def test_cpsat_and_highs_prove_the_same_optimum(seed):
    model = capacitated_assignment(seed)
    highs = HighsMip(*model, mip_rel_gap=1e-9).solve(time_limit_s=30)
    cpsat = CpSatMip(*model, mip_rel_gap=0.0).solve(time_limit_s=30)
    assert highs.status == cpsat.status == "Optimal"
    assert cpsat.objective == pytest.approx(highs.objective, rel=1e-6)
    assert cpsat.bound == pytest.approx(highs.objective, rel=1e-6)
    assert cpsat.gap <= 1e-6
    # The reported objective is the floating-point cost of the returned plan, which satisfies every row.
    assert cpsat.objective == pytest.approx(float(model[0] @ cpsat.values), rel=1e-12)
    assert row_activity_ok(model, cpsat.values)
    x = cpsat.values[:-4]
    assert np.allclose(x, np.round(x))


def test_fixed_point_rounds_outwards_so_a_float_infeasible_pair_is_not_taken():
    # 0.3333334 + 0.6666667 = 1.0000001 > 1: both items do not fit. Rounded to the nearest 1e-6 they would
    # (333333 + 666667 = 1,000,000); rounded outwards they do not.
    model = (np.array([-1.0, -1.0]), np.zeros(2), np.ones(2), np.ones(2, bool),
             sp.csc_matrix(np.array([[0.3333334, 0.6666667]])), np.array([-np.inf]), np.array([1.0]))
    res = CpSatMip(*model, mip_rel_gap=0.0).solve(time_limit_s=10)
    assert res.status == "Optimal"
    assert res.objective == pytest.approx(-1.0)
    assert row_activity_ok(model, res.values, tol=0.0)


@pytest.mark.parametrize("cls", [HighsMip, CpSatMip])
def test_infeasible_models_say_so(cls):
    # x0 + x1 = 1 and x0 + x1 ≥ 2 on binaries.
    model = (np.ones(2), np.zeros(2), np.ones(2), np.ones(2, bool), sp.csc_matrix(np.ones((2, 2))),
             np.array([1.0, 2.0]), np.array([1.0, np.inf]))
    res = cls(*model, mip_rel_gap=1e-6).solve(time_limit_s=10)
    assert not res.feasible
    assert res.values is None
    assert "nfeasible" in res.status


@pytest.mark.parametrize("cls", [HighsMip, CpSatMip])
def test_added_rows_cut_off_the_previous_optimum(cls):
    model = capacitated_assignment(3)
    solver = cls(*model, mip_rel_gap=0.0)
    first = solver.solve(time_limit_s=30)
    chosen = np.flatnonzero(first.values[:-4] > 0.5)
    # Forbid the whole first plan: at most len(chosen) − 1 of its pairs.
    solver.add_rows(np.zeros(len(chosen), dtype=int), chosen, np.ones(len(chosen)), np.array([-np.inf]),
                    np.array([len(chosen) - 1.0]))
    second = solver.solve(time_limit_s=30)
    assert second.status == "Optimal"
    assert second.objective >= first.objective - 1e-6
    assert not np.array_equal(np.flatnonzero(second.values[:-4] > 0.5), chosen)


def test_a_start_is_accepted_and_the_optimum_still_proven():
    model = capacitated_assignment(1)
    best = HighsMip(*model, mip_rel_gap=1e-9).solve(time_limit_s=30)
    n_p = len(model[0]) - 4
    res = CpSatMip(*model, mip_rel_gap=0.0).solve(time_limit_s=30, start=best.values[:n_p],
                                                     start_columns=np.arange(n_p))
    assert res.status == "Optimal"
    assert res.objective == pytest.approx(best.objective, rel=1e-6)


def test_make_mip_builds_the_named_solver_and_refuses_others():
    model = capacitated_assignment(0)
    assert isinstance(make_mip(*model, mip_rel_gap=1e-4), HighsMip)
    assert isinstance(make_mip(*model, mip_rel_gap=1e-4, solver="cpsat"), CpSatMip)
    for name in ("auto", "gurobi"):
        with pytest.raises(ValueError, match="solver must be"):
            make_mip(*model, mip_rel_gap=1e-4, solver=name)


def test_cpsat_refuses_negative_lower_bounds():
    cost, lower, upper, integer, matrix, row_lower, row_upper = capacitated_assignment(0)
    lower = lower.copy()
    lower[-1] = -5.0
    model = (cost, lower, upper, integer, matrix, row_lower, row_upper)
    with pytest.raises(ValueError, match="lower bounds"):
        CpSatMip(*model, mip_rel_gap=1e-4)
