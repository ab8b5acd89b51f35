"""Benchmark: agencies × units travel-time matrices, our engine beside the usual alternatives, in one run.

Graphs
------
* ``demo``: the embedded Andorra network (``data/andorra/roads.npz``, real OSM, about 2,900 nodes). Our engine's
  ``auto`` mode runs scipy here (below :data:`geo.settings.cch_min_nodes`). 10,000 destinations on 2,900 nodes
  are drawn with replacement.
* ``tiles`` (default large graph): 72 copies of the real Andorra network laid out 8 × 9 in its UTM zone
  (≈ 205,000 nodes, ≈ 400,000 arcs, ≈ 250 km × 245 km), each copy's edge times scaled by an independent factor
  in [0.85, 1.15] so copies differ, neighbouring copies joined by three two-way 70 km/h trunk links per side
  (from the outermost node in each third of the border). This keeps real road structure (valleys, hairpins,
  one-ways, a sparse hierarchy), which is what decides how well contraction hierarchies work.
* ``grid`` (``--graph grid``): a perturbed 460 × 460 street grid (≈ 211,000 nodes after the largest strongly
  connected component): 110 m blocks with ±25 m jitter, 12 % of local segments removed, 15 % one-way, a 60 km/h
  arterial every 10th row and column, local streets at 25/30/40 km/h. A uniform grid has no small separators, so
  it is the hard case for contraction hierarchies (CCH and pandana preprocessing and queries are several times
  slower than on ``tiles``); it takes well over 10 minutes with the whole peer set.

Both large graphs become a :class:`geo.network.RoadNetwork` through the same arrays as a loaded OSM file:
integer-millisecond arc times, largest strongly connected component, Morton node order.

Engines timed on the same origins (random nodes) and destinations (random nodes):
* ours: ``geo.traveltime.node_times_s(engine="auto")`` (CCH at this size; its one-off build is reported as
  preprocessing) and ``engine="scipy"``;
* per-pair ``networkx.shortest_path_length`` (sampled pairs, extrapolated, labelled);
* ``networkx.single_source_dijkstra_path_length`` per agency (all 50 origins; 300 extrapolated from them);
* pandana contraction hierarchies (``Network`` build = preprocessing, ``shortest_path_lengths`` on the pairs);
* ``scipy.sparse.csgraph.dijkstra`` without and with a one-hour ``limit`` (the limited one answers only
  pairs within an hour; it is still counted as a peer);
* RoutingKit CCH through pyroutingkit directly (topology build + customisation = preprocessing).

Accuracy: networkx single-source results on the 50 origins are the reference for every pair they cover
(all 50 × 10,000; the first 50 rows of 300 × 10,000, whose origins start with the same 50), and the per-pair
samples cover the rest. ``max_abs_diff_s`` is the largest absolute difference in seconds (for the one-hour
scipy run, over pairs within the hour, and any pair whose reachability differs counts as ``inf``).

The last line printed is one JSON object for the large graph at 50 × 10,000.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo import settings  # noqa: E402
from geo.network import RoadNetwork, _spatial_order  # noqa: E402

HOUR_S = 3600.0


# ----------------------------------------------------------------------------------------------------------------
# Graphs
# ----------------------------------------------------------------------------------------------------------------
def _network_from_arrays(lon, lat, tail, head, time_ms, length_m, highway, *, source: str) -> RoadNetwork:
    """Largest strongly connected component and Morton order, as :func:`geo.network.prepare_network` does."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = len(lon)
    adjacency = sp.csr_matrix((np.ones(len(tail)), (tail, head)), shape=(n, n))
    _, label = connected_components(adjacency, directed=True, connection="strong")
    keep = label == np.argmax(np.bincount(label))
    old = np.flatnonzero(keep)
    old = old[_spatial_order(lon[old], lat[old])]
    position = np.full(n, -1, dtype=np.int64)
    position[old] = np.arange(len(old))
    edge = keep[tail] & keep[head]
    # Parallel arcs cannot arise in these generators (each arc joins a distinct node pair once per direction).
    return RoadNetwork(
        node_osmid=old.astype(np.int64), lon=np.asarray(lon)[old], lat=np.asarray(lat)[old],
        tail=position[tail[edge]].astype(np.int32), head=position[head[edge]].astype(np.int32),
        time_ms=np.asarray(time_ms)[edge].astype(np.uint32), length_m=np.asarray(length_m)[edge].astype(np.float32),
        highway=np.asarray(highway, dtype=object)[edge], meta={"source": source, "nodes_in_source": int(n)},
    )


def make_tiled_network(base: RoadNetwork, *, cols: int = 8, rows: int = 9, links: int = 3, scale: float = 1.0,
                       seed: int = 7) -> RoadNetwork:
    """``cols × rows`` copies of ``base`` side by side, joined by ``links`` two-way trunk roads per shared side.

    ``scale`` shrinks each copy's geometry, lengths and times alike (speeds unchanged): a denser network with the
    same topology.
    """
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    x0, y0 = base.xy.min(axis=0)
    xy = (base.xy - [x0, y0]) * scale + [x0, y0]
    width, height = np.ptp(xy, axis=0) + 2000.0 * scale
    bx, by = xy[:, 0] - x0, xy[:, 1] - y0
    n0 = base.node_count

    def border(along: np.ndarray, across: np.ndarray, *, outer_max: bool) -> np.ndarray:
        # The outermost node in each of `links` equal bands along the side, so links spread along the border.
        lo, hi = along.min(), along.max()
        picks = []
        for band in range(links):
            inside = np.flatnonzero((along >= lo + (hi - lo) * band / links) & (along <= lo + (hi - lo) * (band + 1) / links))
            picks.append(inside[np.argmax(across[inside]) if outer_max else np.argmin(across[inside])])
        return np.asarray(picks)

    east, west = border(by, bx, outer_max=True), border(by, bx, outer_max=False)
    north, south = border(bx, by, outer_max=True), border(bx, by, outer_max=False)
    xs, ys, tails, heads, times, lengths, classes = [], [], [], [], [], [], []
    link_tail, link_head = [], []
    for r in range(rows):
        for c in range(cols):
            k = r * cols + c
            xs.append(bx + c * width)
            ys.append(by + r * height)
            tails.append(base.tail.astype(np.int64) + k * n0)
            heads.append(base.head.astype(np.int64) + k * n0)
            factor = rng.uniform(0.85, 1.15, base.edge_count)
            times.append(np.maximum(1, np.rint(base.time_ms * factor * scale)).astype(np.int64))
            lengths.append(base.length_m.astype(np.float64) * scale)
            classes.append(base.highway)
            if c + 1 < cols:
                link_tail += list(east + k * n0)
                link_head += list(west + (k + 1) * n0)
            if r + 1 < rows:
                link_tail += list(north + k * n0)
                link_head += list(south + (k + cols) * n0)
    x, y = np.concatenate(xs), np.concatenate(ys)
    lt, lh = np.asarray(link_tail), np.asarray(link_head)
    link_m = np.hypot(x[lt] - x[lh], y[lt] - y[lh]) * 1.2
    link_ms = np.maximum(1, np.rint(link_m / (70.0 / 3.6) * 1000.0)).astype(np.int64)
    back = Transformer.from_crs(base.projection, "EPSG:4326", always_xy=True)
    lon, lat = back.transform(x + x0, y + y0)
    return _network_from_arrays(
        np.asarray(lon), np.asarray(lat),
        np.concatenate(tails + [lt, lh]), np.concatenate(heads + [lh, lt]),
        np.concatenate(times + [link_ms, link_ms]), np.concatenate(lengths + [link_m, link_m]),
        np.concatenate(classes + [np.full(2 * len(lt), "trunk", dtype=object)]),
        source=f"{cols}x{rows} tiles of {base.meta.get('source', 'the demo network')}",
    )


def make_grid_network(*, size: int = 460, spacing_m: float = 110.0, seed: int = 7) -> RoadNetwork:
    """A perturbed street grid with removed segments, one-way streets and an arterial every 10th row/column."""
    rng = np.random.default_rng(seed)
    ii, jj = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    x = (jj * spacing_m + rng.uniform(-25, 25, ii.shape)).ravel()
    y = (ii * spacing_m + rng.uniform(-25, 25, ii.shape)).ravel()
    a_h = (ii[:, :-1] * size + jj[:, :-1]).ravel()
    a_v = (ii[:-1, :] * size + jj[:-1, :]).ravel()
    a = np.concatenate([a_h, a_v])
    b = np.concatenate([a_h + 1, a_v + size])
    arterial = np.concatenate([(ii[:, :-1] % 10 == 0).ravel(), (jj[:-1, :] % 10 == 0).ravel()])
    keep = arterial | (rng.random(len(a)) > 0.12)
    a, b, arterial = a[keep], b[keep], arterial[keep]
    oneway = ~arterial & (rng.random(len(a)) < 0.15)
    flip = oneway & (rng.random(len(a)) < 0.5)
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    two = ~oneway
    tail, head = np.concatenate([a, b[two]]), np.concatenate([b, a[two]])
    is_art = np.concatenate([arterial, arterial[two]])
    length = np.hypot(x[tail] - x[head], y[tail] - y[head]) * rng.uniform(1.0, 1.25, len(tail))
    kph = np.where(is_art, 60.0, rng.choice([25.0, 30.0, 40.0], len(tail), p=[0.6, 0.25, 0.15]))
    time_ms = np.maximum(1, np.rint(length / (kph / 3.6) * 1000.0)).astype(np.int64)
    lon = 121.0 + x / (111_320.0 * np.cos(np.radians(30.0)))
    lat = 30.0 + y / 110_574.0
    return _network_from_arrays(lon, lat, tail, head, time_ms, length,
                                np.where(is_art, "primary", "residential").astype(object),
                                source=f"perturbed {size}x{size} grid")


def networkx_graph(network: RoadNetwork):
    """A networkx DiGraph on node positions with the same integer-millisecond weights."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(range(network.node_count))
    graph.add_weighted_edges_from(zip(network.tail.tolist(), network.head.tolist(), network.time_ms.tolist()))
    return graph


# ----------------------------------------------------------------------------------------------------------------
# Timing helpers
# ----------------------------------------------------------------------------------------------------------------
def timed(fn, *, repeats: int = 3, quick_s: float = 2.0):
    """Best wall time of ``fn()`` with the CPU seconds of that run, and the result.

    Runs are repeated (up to ``repeats``) only while they take under ``quick_s``: the same rule for every engine,
    so fast engines are not judged on one noisy run on a shared machine. CPU seconds sum all threads of this
    process; on an idle machine wall time ≈ CPU time / threads, so a wall time far above the CPU time means the
    run waited for cores other processes held.
    """
    best = cpu = None
    for attempt in range(repeats):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = fn()
        wall, used = time.perf_counter() - wall0, time.process_time() - cpu0
        if best is None or wall < best:
            best, cpu = wall, used
        if best >= quick_s:
            break
    return best, cpu, result


def measure_interleaved(engines: dict, *, rounds: int = 5, quick_s: float = 2.0) -> dict:
    """Best wall time (with its CPU seconds) and the result of each engine, timed in interleaved rounds.

    Round 1 runs every engine once; later rounds rerun, in the same order, those still under ``quick_s``. Engines
    compared with each other thus share the same stretches of machine load instead of one getting a quiet minute.
    """
    best: dict = {}
    for attempt in range(rounds):
        for name, fn in engines.items():
            if attempt and best[name][0] >= quick_s:
                continue
            wall, cpu, result = timed(fn, repeats=1)
            if name not in best or wall < best[name][0]:
                best[name] = (wall, cpu, result)
    return best


def max_abs_diff(values: np.ndarray, reference: np.ndarray) -> float:
    """Largest |values − reference| in seconds; a pair reachable in one and not the other counts as ``inf``."""
    values, reference = np.asarray(values, float), np.asarray(reference, float)
    finite_v, finite_r = np.isfinite(values), np.isfinite(reference)
    if (finite_v != finite_r).any():
        return float("inf")
    both = finite_v & finite_r
    return float(np.abs(values[both] - reference[both]).max()) if both.any() else 0.0


class Reference:
    """What networkx says: single-source rows for the first origins and per-pair samples anywhere."""

    def __init__(self, rows_s: np.ndarray, pair_index: np.ndarray, pair_s: np.ndarray):
        self.rows_s = rows_s  # (n_rows, n_units) seconds for origins[:n_rows]
        self.pair_index = pair_index  # (k, 2) origin row, unit column
        self.pair_s = pair_s

    def diff(self, matrix_s: np.ndarray, *, limit_s: float | None = None) -> float:
        rows = min(len(self.rows_s), matrix_s.shape[0])
        ref_rows = self.rows_s[:rows]
        ref_pairs = self.pair_s.copy()
        got_pairs = matrix_s[self.pair_index[:, 0], self.pair_index[:, 1]]
        if limit_s is not None:
            ref_rows = np.where(ref_rows <= limit_s, ref_rows, np.inf)
            ref_pairs = np.where(ref_pairs <= limit_s, ref_pairs, np.inf)
        return max(max_abs_diff(matrix_s[:rows], ref_rows), max_abs_diff(got_pairs, ref_pairs))


# ----------------------------------------------------------------------------------------------------------------
# One graph, all engines
# ----------------------------------------------------------------------------------------------------------------
def bench_graph(name: str, network: RoadNetwork, *, units: int = 10_000, agency_counts=(50, 300), pairs: int = 20,
                seed: int = 42, pandana_budget_s: float = 60.0) -> dict:
    import networkx as nx
    import pandana
    import pandas as pd
    import pyroutingkit as rk
    from scipy.sparse.csgraph import dijkstra

    import geo.traveltime as tt

    n = network.node_count
    rng = np.random.default_rng(seed)
    origins_all = rng.choice(n, max(agency_counts), replace=False)
    targets = rng.choice(n, units, replace=units > n)
    auto_engine = "cch" if n >= settings.cch_min_nodes else "scipy"
    print(f"\n=== {name}: {n:,} nodes, {network.edge_count:,} arcs; our auto engine = {auto_engine} ===", flush=True)

    # One-off preparation, each reported separately.
    prep = {}
    t = time.perf_counter()
    _ = network.csr
    prep["csr arrays"] = time.perf_counter() - t
    if auto_engine == "cch":
        t = time.perf_counter()
        tt.cch_metric(network)
        prep["ours: CCH build + customise"] = time.perf_counter() - t
        tt._CCH_CACHE.clear()
        t = time.perf_counter()
        tt.cch_metric(network)
        prep["ours: CCH reload from disk cache + customise"] = time.perf_counter() - t
    t = time.perf_counter()
    graph = networkx_graph(network)
    prep["networkx graph"] = time.perf_counter() - t
    t = time.perf_counter()
    topology = rk.CCHTopology()
    topology.build(network.tail.astype(np.uint32), network.head.astype(np.uint32),
                   network.lat.astype(np.float32), network.lon.astype(np.float32), n)
    metric = rk.CCHMetric(topology)
    metric.customize(network.time_ms.astype(np.uint32))
    prep["pyroutingkit CCH build + customise"] = time.perf_counter() - t
    sys.stdout.flush()
    t = time.perf_counter()
    pandana_net = pandana.Network(pd.Series(network.lon), pd.Series(network.lat),
                                  pd.Series(network.tail.astype(np.int64)), pd.Series(network.head.astype(np.int64)),
                                  pd.DataFrame({"seconds": network.time_ms / 1000.0}), twoway=False)
    prep["pandana CH build"] = time.perf_counter() - t
    for k, v in prep.items():
        print(f"  preprocessing  {k:<46s} {v:8.2f} s", flush=True)

    # networkx reference: per-pair samples and single-source rows for the smallest origin set.
    first = min(agency_counts)
    pair_index = np.column_stack([rng.integers(0, first, pairs), rng.integers(0, units, pairs)])
    start = time.perf_counter()
    pair_ms = np.array([nx.shortest_path_length(graph, int(origins_all[i]), int(targets[j]), weight="weight")
                        for i, j in pair_index], dtype=float)
    per_pair_s = (time.perf_counter() - start) / pairs
    start = time.perf_counter()
    rows = []
    for o in origins_all[:first]:
        lengths = nx.single_source_dijkstra_path_length(graph, int(o), weight="weight")
        rows.append([lengths.get(int(tg), np.inf) for tg in targets])
    nx_ss_per_origin = (time.perf_counter() - start) / first
    ref = Reference(np.asarray(rows, dtype=float) / 1000.0, pair_index, pair_ms / 1000.0)
    print(f"  networkx: {per_pair_s * 1000:.1f} ms per pair ({pairs} pairs), "
          f"{nx_ss_per_origin:.2f} s per single-source run ({first} origins)", flush=True)

    results = {}
    for count in agency_counts:
        origins = origins_all[:count]
        rows_out = {}

        def record(engine, seconds, matrix, *, cpu=None, preprocessing=0.0, extrapolated=False, limit=None, note=""):
            diff = None if matrix is None else ref.diff(matrix, limit_s=limit)
            rows_out[engine] = {"time_s": seconds, "cpu_s": cpu, "preprocessing_s": preprocessing,
                                "extrapolated": extrapolated, "limited": limit is not None,
                                "max_abs_diff_s": diff, "note": note}

        src32, dst32 = origins.astype(np.uint32), targets.astype(np.uint32)

        def raw_cch():
            ms = np.asarray(metric.distances_many_to_many(src32, dst32))
            out = ms / 1000.0
            out[ms >= rk.INF_WEIGHT] = np.inf
            return out

        o_rep, t_rep = np.repeat(origins, units), np.tile(targets, count)
        ours_key = f"ours auto ({auto_engine})"
        engines = {
            ours_key: (lambda: tt.node_times_s(network, origins, targets, engine="auto"),
                       {"preprocessing": prep.get("ours: CCH build + customise", prep["csr arrays"])}),
            "ours scipy": (lambda: tt.node_times_s(network, origins, targets, engine="scipy"),
                           {"preprocessing": prep["csr arrays"]}),
            "pandana CH": (lambda: np.asarray(pandana_net.shortest_path_lengths(o_rep, t_rep, imp_name="seconds"))
                           .reshape(count, units), {"preprocessing": prep["pandana CH build"]}),
            "scipy dijkstra": (lambda: dijkstra(network.csr, directed=True, indices=origins)[:, targets], {}),
            "scipy dijkstra, 1 h limit": (
                lambda: dijkstra(network.csr, directed=True, indices=origins, limit=HOUR_S)[:, targets],
                {"limit": HOUR_S, "note": "answers pairs within 1 h only"}),
            "pyroutingkit CCH": (raw_cch, {"preprocessing": prep["pyroutingkit CCH build + customise"]}),
        }
        predicted = results[first]["engines"]["pandana CH"]["time_s"] * count / first if first in results else 0.0
        if predicted > pandana_budget_s:
            engines.pop("pandana CH")
        for engine, (wall, cpu, matrix) in measure_interleaved({k: v[0] for k, v in engines.items()}).items():
            record(engine, wall, matrix, cpu=cpu, **engines[engine][1])
        if "pandana CH" not in engines:
            measured = results[first]["engines"]["pandana CH"]
            record("pandana CH", predicted, None, extrapolated=True, preprocessing=prep["pandana CH build"],
                   note=f"extrapolated from {first} × {units}")
            rows_out["pandana CH"]["max_abs_diff_s"] = measured["max_abs_diff_s"]

        record("networkx per-pair", per_pair_s * count * units, None, extrapolated=True,
               note=f"extrapolated from {pairs} pairs")
        rows_out["networkx per-pair"]["max_abs_diff_s"] = max_abs_diff(
            ref.pair_s, ref.rows_s[pair_index[:, 0], pair_index[:, 1]])
        record("networkx single-source", nx_ss_per_origin * count, None, extrapolated=count > first,
               preprocessing=prep["networkx graph"],
               note=f"extrapolated from {first} origins" if count > first else f"measured on all {count} origins")
        rows_out["networkx single-source"]["max_abs_diff_s"] = max_abs_diff(
            ref.rows_s[pair_index[:, 0], pair_index[:, 1]], ref.pair_s)

        ours_s = rows_out[ours_key]["time_s"]
        print(f"\n  {count} agencies × {units:,} units ({count * units:,} pairs)")
        print(f"  {'engine':<28s} {'time s':>20s} {'cpu s':>8s} {'prep s':>8s} {'× ours':>10s} {'max|Δ| s':>10s}  note")
        for engine, row in rows_out.items():
            row["ratio_to_ours"] = row["time_s"] / ours_s
            diff = "—" if row["max_abs_diff_s"] is None else f"{row['max_abs_diff_s']:.2e}"
            label = f"{row['time_s']:.4g}" + (" (extrapolated)" if row["extrapolated"] else "")
            cpu_label = "—" if row["cpu_s"] is None else f"{row['cpu_s']:.3g}"
            print(f"  {engine:<28s} {label:>20s} {cpu_label:>8s} {row['preprocessing_s']:8.2f} {row['ratio_to_ours']:10.3g} "
                  f"{diff:>10s}  {row['note']}", flush=True)
        results[count] = {"engines": rows_out, "ours": ours_key}

    # The nearest agency for every node: one multi-source pass (agencies at the first origins' road nodes).
    import geopandas as gpd

    origins = origins_all[:first]
    agencies = gpd.GeoDataFrame({"agency_id": [f"A{i}" for i in range(first)]},
                                geometry=gpd.points_from_xy(network.lon[origins], network.lat[origins]), crs="EPSG:4326")
    tt.nearest_agency_per_node(network, agencies)  # warms the projection and KD-tree (cached per network)
    nearest_s, nearest_cpu, (minutes, owner) = timed(lambda: tt.nearest_agency_per_node(network, agencies), repeats=5)
    brute = ref.rows_s.min(axis=0)  # seconds from the nearest of the first origins, per target
    nearest_diff = max_abs_diff(minutes[targets] * 60.0, brute)
    print(f"\n  nearest agency for all {n:,} nodes ({first} agencies, one pass): {nearest_s:.3f} s "
          f"(cpu {nearest_cpu:.3f} s); "
          f"max |Δ| vs networkx min over agencies {nearest_diff:.2e} s", flush=True)
    return {"name": name, "nodes": n, "arcs": network.edge_count, "auto_engine": auto_engine, "prep": prep,
            "results": results, "nearest_s": nearest_s, "nearest_cpu_s": nearest_cpu, "nearest_diff_s": nearest_diff,
            "per_pair_s": per_pair_s}


def summary(run: dict, *, count: int = 50) -> dict:
    res = run["results"][count]
    engines = res["engines"]
    ours = engines[res["ours"]]
    measured = {k: v for k, v in engines.items() if not k.startswith("ours") and not v["extrapolated"]}
    # Peers answering the same question (every pair, no time limit); the limited run is reported beside them.
    peers = {k: v for k, v in measured.items() if not v["limited"]}
    fastest = min(peers, key=lambda k: peers[k]["time_s"])
    fastest_any = min(measured, key=lambda k: measured[k]["time_s"])
    per_pair = engines["networkx per-pair"]["time_s"]
    return {
        "graph": run["name"], "nodes": run["nodes"], "arcs": run["arcs"], "agencies": count, "units": 10_000,
        "engine": res["ours"], "ours_s": round(ours["time_s"], 4), "ours_preprocessing_s": round(ours["preprocessing_s"], 2),
        "ours_scipy_s": round(engines["ours scipy"]["time_s"], 4),
        "per_pair_extrapolated_s": round(per_pair, 1),
        "speedup_vs_per_pair": round(per_pair / ours["time_s"], 1),
        "fastest_peer": fastest, "fastest_peer_s": round(peers[fastest]["time_s"], 4),
        "ratio_to_fastest_peer": round(ours["time_s"] / peers[fastest]["time_s"], 3),
        "fastest_incl_limited": fastest_any,
        "ratio_to_fastest_incl_limited": round(ours["time_s"] / measured[fastest_any]["time_s"], 3),
        "ours_cpu_s": round(ours["cpu_s"], 4), "fastest_peer_cpu_s": round(peers[fastest]["cpu_s"], 4),
        "max_abs_diff_s": ours["max_abs_diff_s"],
        "nearest_all_nodes_s": round(run["nearest_s"], 4),
        "nearest_all_nodes_cpu_s": round(run["nearest_cpu_s"], 4),
        "peers_s": {k: round(v["time_s"], 4) for k, v in engines.items() if not k.startswith("ours")},
        "load_average": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", choices=["tiles", "grid"], default="tiles", help="the large graph")
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=20, help="networkx per-pair samples")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink each tile (denser network)")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args(argv)

    # A fresh cache folder, so our CCH build is measured rather than loaded from an earlier run.
    settings.cache_dir = Path(tempfile.mkdtemp(prefix="ltci_bench_cache_"))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start "
          "(a busy shared machine slows every engine; ratios are measured in the same run)")
    demo = RoadNetwork.load(settings.demo_region_dir / "roads.npz")
    if not args.skip_demo:
        run = bench_graph("demo (Andorra)", demo, units=args.units, pairs=args.pairs)
        print("demo summary:", json.dumps(summary(run)))
    start = time.perf_counter()
    large = make_tiled_network(demo, scale=args.scale) if args.graph == "tiles" else make_grid_network()
    print(f"\nlarge graph ({large.meta['source']}) generated in {time.perf_counter() - start:.1f} s")
    run = bench_graph(f"{args.graph} ({large.node_count:,} nodes)", large, units=args.units, pairs=args.pairs)
    final = summary(run)
    final["targets_met"] = {
        "ratio_to_fastest_peer<=1.5": final["ratio_to_fastest_peer"] <= 1.5,
        "speedup_vs_per_pair>=10000": final["speedup_vs_per_pair"] >= 10_000,
        "nearest_all_nodes_s<0.1": final["nearest_all_nodes_s"] < 0.1,
        "max_abs_diff_s<=1e-3": final["max_abs_diff_s"] is not None and final["max_abs_diff_s"] <= 1e-3,
    }
    return final


if __name__ == "__main__":
    print(json.dumps(main()))
