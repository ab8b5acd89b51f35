"""Siting on the demo region: grid candidates through the travel-time engine, the models, and a scenario."""

from __future__ import annotations

import numpy as np
import pytest

from geo import settings
from geo.errors import InputError
from planning import candidates as cand
from planning.scenarios import Scenario, compare_scenarios
from planning.siting import LSCP, MCLP, Greedy, PMedian

pytestmark = pytest.mark.skipif(not (settings.demo_region_dir / "roads.npz").exists(),
                                reason="demo region not built (make region)")


@pytest.fixture(scope="module")
def setup():
    from geo.region import load_demo_region

    region = load_demo_region()
    active = region.active_agencies()
    grid = cand.candidates_from_grid(region.townships, cell_size_m=1000, townships=region.townships)
    kept, _ = cand.exclude_near_agencies(grid, active, min_distance_m=300)
    matrix = cand.candidate_travel_matrix(region.network, kept, region.units)
    existing = region.travel_matrix(agencies=active)
    demand = region.units.set_index("unit_id")["demand"]
    return region, kept, matrix, existing, demand


def test_off_network_grid_candidates_are_refused_then_dropped_openly(setup):
    region, kept, matrix, existing, demand = setup
    assert (~np.isfinite(matrix.minutes).any(axis=1)).any()  # mountain cells far from any road
    with pytest.raises(InputError, match="outside the road network"):
        MCLP.from_travel_matrix(matrix, existing=existing, demand=demand, threshold_min=10, p=3)
    on_net, off, sub = cand.exclude_off_network(kept, matrix)
    assert len(on_net) + len(off) == len(kept)
    assert np.isfinite(sub.minutes).any(axis=1).all()


def test_models_on_demo_region(setup):
    region, kept, matrix, existing, demand = setup
    kept, _, matrix = cand.exclude_off_network(kept, matrix)
    mclp = MCLP.from_travel_matrix(matrix, existing=existing, demand=demand, threshold_min=10, p=3).solve()
    greedy = Greedy.from_travel_matrix(matrix, existing=existing, demand=demand, goal="coverage",
                                       threshold_min=10, p=3).solve()
    before = float(
        demand.loc[list(existing.unit_ids)].to_numpy()[existing.minutes.min(axis=0) <= 10].sum())
    assert mclp.objective > before
    assert greedy.objective <= mclp.objective + 1e-9
    assert mclp.mip_gap == pytest.approx(0.0, abs=1e-9)
    lscp = LSCP.from_travel_matrix(matrix, existing=existing, demand=demand, threshold_min=10).solve()
    assert lscp.unit_coverage["covered"].all()
    pmed = PMedian.from_travel_matrix(matrix, existing=existing, demand=demand, p=3).solve()
    assert pmed.mean_travel_min < (demand.loc[list(existing.unit_ids)].to_numpy()
                                   * existing.minutes.min(axis=0)).sum() / demand.sum()
    status_quo = Scenario.from_matrix(existing, name="today", demand=demand)
    plan = Scenario.from_model(mclp, name="3 more", candidates=kept)
    comparison = compare_scenarios(status_quo, plan)
    gained = comparison.coverage.set_index("threshold_min").loc[15, "covered_share_change"]
    assert gained >= 0
    assert len(comparison.became_covered(10)) == int(mclp.unit_coverage["newly_covered"].sum())
