"""Operating districts (片区): k contiguous, demand-balanced, compact districts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from geo.errors import InputError, PlanningError
from planning.adjacency import build_adjacency
from planning.operating_districts import OperatingDistricts
from test_allocation import grid_units


@pytest.fixture(scope="module")
def districts():
    rng = np.random.default_rng(3)
    units = grid_units(6, 6, demand=rng.integers(5, 15, 36).astype(float))
    return units, OperatingDistricts(units, k=3, tolerance=0.1, time_limit_s=60).solve()


def test_districts_partition_contiguous_and_balanced(districts):
    units, od = districts
    assert od.labels.nunique() == 3 and len(od.labels) == 36
    adj = build_adjacency(units).reorder(od.labels.index).matrix
    for k in range(3):
        members = np.flatnonzero(od.labels.to_numpy() == k)
        assert connected_components(adj[members][:, members], directed=False)[0] == 1
    mean = units["demand"].sum() / 3
    assert (od.table["demand"] >= 0.9 * mean - 1e-9).all() and (od.table["demand"] <= 1.1 * mean + 1e-9).all()
    assert od.balance_ratio <= 1.1 / 0.9 + 1e-9
    assert od.table["demand"].sum() == pytest.approx(units["demand"].sum())


def test_districts_are_compact(districts):
    _, od = districts
    # A 6 × 6 grid in three blocks: each district close to a 2 × 6 strip or better (Polsby-Popper of a 2:6
    # rectangle is π·12/64 ≈ 0.59 in cells; latitude stretches it a little).
    assert od.compactness > 0.45
    assert od.mip_gap <= 1e-3
    assert 0 < od.mean_distance_km < 3.0


def test_unit_too_big_for_the_band():
    units = grid_units(4, 1, demand=[100.0, 1.0, 1.0, 1.0])
    with pytest.raises(PlanningError, match="balance binds: unit U00 alone has demand 100.0"):
        OperatingDistricts(units, k=2, tolerance=0.1).solve()


def test_bad_k_refused():
    units = grid_units(2, 1)
    with pytest.raises(InputError, match="k = 5 exceeds the 2 units"):
        OperatingDistricts(units, k=5)
