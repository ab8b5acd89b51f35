"""Coverage speed on a grid of ≥ 10,000 units over the demo region.

Measures, on an H3 grid over the union of the demo region's parishes:

* full recomputation: grid cells → population → road-side points → travel matrix (the foundation engine) →
  coverage model solved → coverage table and uncovered list;
* a threshold change: new table and uncovered list from the solved model;
* toggling one agency off: the incremental toggle, new table and uncovered list;
* E2SFCA on the same matrix.

The peer for the interactive changes is the same answer recomputed from scratch on the already-computed matrix
(a new :class:`CoverageModel` solved over every active row), measured in the same run. Prints figures and ends
with one JSON line. Target: interactive changes < 200 ms.

Run: ``.venv/bin/python bench/coverage.py [--resolution 10]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo import grid, settings  # noqa: E402
from geo.region import load_demo_region  # noqa: E402
from planning.accessibility import AccessibilityModel  # noqa: E402
from planning.coverage import CoverageModel  # noqa: E402


def _timed(fn, repeat: int = 1):
    """Median wall time of ``repeat`` runs and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=10, help="H3 resolution (10 gives ~33k cells)")
    parser.add_argument("--repeat", type=int, default=7, help="repeats for the interactive timings")
    args = parser.parse_args()

    region = load_demo_region()
    boundary = region.townships
    nodes = np.column_stack([region.network.lon, region.network.lat])
    print(f"demo region: {len(region.agencies)} agencies, road graph {region.network.node_count:,} nodes")

    def full():
        cells = grid.build_grid_units(boundary, resolution=args.resolution, townships=region.townships,
                                      population_source=region.population, road_nodes_xy=nodes)
        t0 = time.perf_counter()
        matrix = _fresh_matrix(region, cells)
        t_matrix = time.perf_counter() - t0
        model = CoverageModel(matrix, cells, region.agencies).solve()
        model.table()
        model.uncovered_units()
        return cells, matrix, model, t_matrix

    full_s, (cells, matrix, model, matrix_s) = _timed(full)
    n = len(cells)
    print(f"grid: H3 resolution {args.resolution}, {n:,} units "
          f"({(cells['rep_source'] == 'road_node').sum():,} points on a road node), "
          f"population {cells['population'].sum():,.0f}")
    print(f"full recomputation (grid + population + points + matrix + coverage): {full_s:.3f} s "
          f"(of which travel matrix {matrix_s:.3f} s, {matrix.minutes.shape[0]} × {matrix.minutes.shape[1]:,})")

    def threshold_change():
        table = model.table(thresholds=(10.0, 20.0, 40.0))
        model.uncovered_units(threshold=20.0)
        return table

    threshold_s, _ = _timed(threshold_change, args.repeat)

    agency = str(model.nearest_agency_id[np.flatnonzero(model.nearest_agency_id != "")][0])

    def toggle():
        changed = model.toggle(agency)
        changed.table()
        changed.uncovered_units()
        return changed

    toggle_s, toggled = _timed(toggle, args.repeat)
    active_after = [a for a in model.active_agency_ids if a != agency]

    def peer():
        fresh = CoverageModel(matrix, cells, region.agencies, active_agency_ids=active_after).solve()
        fresh.table()
        fresh.uncovered_units()
        return fresh

    peer_s, fresh = _timed(peer, args.repeat)
    assert np.array_equal(fresh.nearest_minutes, toggled.nearest_minutes), "incremental toggle disagrees"

    e2sfca_s, acc = _timed(lambda: AccessibilityModel(matrix, cells, region.agencies).solve(), 3)

    ok = "meets" if max(threshold_s, toggle_s) < 0.2 else "MISSES"
    print(f"threshold change (table + uncovered list): {threshold_s * 1000:.1f} ms")
    print(f"toggle one agency off ({agency}) incl. table + uncovered: {toggle_s * 1000:.1f} ms; "
          f"peer (new model solved from the matrix): {peer_s * 1000:.1f} ms; ratio peer/toggle {peer_s / toggle_s:.1f}×")
    print(f"E2SFCA on the same matrix: {e2sfca_s * 1000:.1f} ms "
          f"({(acc.classes == 'under_served').sum():,} units under-served)")
    print(f"interactive target < 200 ms: {ok}")
    print(json.dumps({
        "units": int(n), "agencies": int(matrix.minutes.shape[0]), "h3_resolution": args.resolution,
        "full_recompute_s": round(full_s, 4), "matrix_s": round(matrix_s, 4),
        "threshold_change_s": round(threshold_s, 5), "toggle_agency_s": round(toggle_s, 5),
        "toggle_peer_full_solve_s": round(peer_s, 5), "e2sfca_s": round(e2sfca_s, 5),
        "target_s": 0.2, "max_grid_cells": settings.max_grid_cells,
    }))


def _fresh_matrix(region, cells):
    """The foundation engine's matrix, bypassing the region's cache so the time is real."""
    from geo.traveltime import travel_time_matrix

    return travel_time_matrix(region.network, region.agencies, cells)


if __name__ == "__main__":
    main()
