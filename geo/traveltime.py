"""Travel times between agencies and planning units over the road graph.

The graph is turned into compact arrays once (:mod:`geo.network`); every matrix, nearest-agency pass and
isochrone then runs in a compiled engine: ``scipy.sparse.csgraph.dijkstra`` for one-to-all and
multi-source passes, and RoutingKit's customizable contraction hierarchies for many-to-many matrices on
large graphs. Edge weights are integer milliseconds, so every engine sums the same integers and agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TravelMatrix:
    """Agencies × units travel times in minutes (float32, ``inf`` = unreachable), with both id axes kept.

    Attributes
    ----------
    minutes : np.ndarray
        Shape ``(len(agency_ids), len(unit_ids))``, door-to-door minutes including both access legs.
    agency_ids, unit_ids : np.ndarray
        The id of each row and column, as text.
    distance_km : np.ndarray or None
        Road distance along the fastest path, same shape, when computed.
    """

    minutes: np.ndarray
    agency_ids: np.ndarray
    unit_ids: np.ndarray
    distance_km: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.minutes = np.asarray(self.minutes, dtype=np.float32)
        self.agency_ids = np.asarray(self.agency_ids, dtype=object).astype(str)
        self.unit_ids = np.asarray(self.unit_ids, dtype=object).astype(str)
        if self.minutes.shape != (len(self.agency_ids), len(self.unit_ids)):
            raise ValueError(
                f"matrix shape {self.minutes.shape} does not match {len(self.agency_ids)} agencies × "
                f"{len(self.unit_ids)} units"
            )

    def subset(self, *, agency_ids=None, unit_ids=None) -> "TravelMatrix":
        """The matrix restricted to the given ids, in the given order."""
        ai = np.arange(len(self.agency_ids)) if agency_ids is None else self._positions(self.agency_ids, agency_ids)
        ui = np.arange(len(self.unit_ids)) if unit_ids is None else self._positions(self.unit_ids, unit_ids)
        dist = None if self.distance_km is None else self.distance_km[np.ix_(ai, ui)]
        return TravelMatrix(self.minutes[np.ix_(ai, ui)], self.agency_ids[ai], self.unit_ids[ui], dist, dict(self.meta))

    @staticmethod
    def _positions(axis: np.ndarray, wanted) -> np.ndarray:
        index = {v: i for i, v in enumerate(axis)}
        missing = [w for w in map(str, wanted) if w not in index]
        if missing:
            raise KeyError(f"ids not in the matrix: {missing[:5]}")
        return np.array([index[str(w)] for w in wanted], dtype=np.int64)


# ----------------------------------------------------------------------------------------------------------------
# Snapping and the access leg
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Snap:
    """Where points join the road network.

    ``node`` is the node position, ``access_m`` the straight-line distance to it, ``access_min`` the time of that
    leg at :data:`geo.settings.access_speed_kph`, and ``reachable`` is False where the point lies farther than
    the maximum access distance from any road (its times are ``inf``, never invented).
    """

    node: np.ndarray
    access_m: np.ndarray
    access_min: np.ndarray
    reachable: np.ndarray


def snap_points(network, lon, lat, *, max_access_m: float | None = None) -> Snap:
    """Snap WGS84 points to their nearest network node with a KD-tree built once per network.

    Raises
    ------
    InputError
        When coordinates are missing or not longitude/latitude.
    """
    from geo import settings
    from geo.errors import InputError, Problem
    from geo.network import project_lonlat

    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    bad = ~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if bad.any():
        raise InputError(
            "points must be WGS84 longitude/latitude",
            [Problem("missing or out-of-range coordinates", row=int(i) + 1, value=(lon[i], lat[i])) for i in np.flatnonzero(bad)],
        )
    max_access_m = settings.max_access_distance_m if max_access_m is None else float(max_access_m)
    x, y = project_lonlat(lon, lat, network.projection)
    xy = np.column_stack([x, y])
    # Points a quarter of the globe away do not project into the network's UTM zone (inf): unreachable.
    projected = np.isfinite(xy).all(axis=1)
    dist = np.full(len(lon), np.inf)
    node = np.zeros(len(lon), dtype=np.int64)
    if projected.any():
        dist[projected], node[projected] = network.kdtree.query(xy[projected])
    access_min = dist / (settings.access_speed_kph / 3.6) / 60.0
    return Snap(node, dist, access_min, dist <= max_access_m)


# ----------------------------------------------------------------------------------------------------------------
# Engines: node-to-node seconds for many origins and many targets
# ----------------------------------------------------------------------------------------------------------------
def node_times_s(network, sources, targets, *, engine: str = "auto", limit_s: float | None = None) -> np.ndarray:
    """Shortest travel times in seconds between network nodes, shape ``(len(sources), len(targets))``.

    Parameters
    ----------
    engine : {"auto", "scipy", "cch"}
        ``scipy`` runs ``scipy.sparse.csgraph.dijkstra`` from each distinct source (with ``limit_s`` it stops
        early, so cost follows the area reachable); ``cch`` uses RoutingKit's customizable contraction hierarchy,
        built once per network and cached on disk. ``auto`` picks ``cch`` on graphs of at least
        :data:`geo.settings.cch_min_nodes` nodes and scipy below.
    limit_s : float, optional
        Times above this are ``inf`` (scipy stops searching there; cch results are masked).
    """
    from geo import settings

    sources = np.asarray(sources, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    if engine == "auto":
        engine = "cch" if network.node_count >= settings.cch_min_nodes else "scipy"
    if engine == "cch":
        out = _cch_times_s(network, sources, targets)
    elif engine == "scipy":
        out = _scipy_times_s(network, sources, targets, limit_s=limit_s)
    else:
        raise ValueError(f"unknown engine {engine!r}: use 'auto', 'scipy' or 'cch'")
    if limit_s is not None:
        out[out > limit_s] = np.inf
    return out


def _scipy_times_s(network, sources, targets, *, limit_s=None, chunk: int = 64) -> np.ndarray:
    from scipy.sparse.csgraph import dijkstra

    unique, inverse = np.unique(sources, return_inverse=True)
    out = np.empty((len(unique), len(targets)), dtype=np.float64)
    limit = np.inf if limit_s is None else float(limit_s)
    # Chunks of origins bound memory at chunk × nodes × 8 bytes on large graphs.
    for start in range(0, len(unique), chunk):
        block = unique[start : start + chunk]
        dist = dijkstra(network.csr, directed=True, indices=block, limit=limit)
        out[start : start + len(block)] = dist[:, targets]
    return out[inverse]


_CCH_CACHE: dict[str, object] = {}


def cch_metric(network):
    """The customized CCH metric for ``network``: topology built once (and saved under the cache dir)."""
    import pyroutingkit as rk

    from geo import settings

    key = network.fingerprint()
    if key in _CCH_CACHE:
        return _CCH_CACHE[key]
    topo = rk.CCHTopology()
    folder = settings.cache_dir / "cch" / key
    loaded = False
    if (folder / "done").exists():
        try:
            topo.load(str(folder))
            loaded = True
        except Exception:  # a stale or partial cache is rebuilt, not trusted
            loaded = False
    if not loaded:
        topo.build(
            network.tail.astype(np.uint32), network.head.astype(np.uint32),
            network.lat.astype(np.float32), network.lon.astype(np.float32), network.node_count,
        )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            topo.save(str(folder))
            (folder / "done").write_text("ok")
        except OSError as exc:  # an unwritable cache folder only costs a rebuild in the next process
            import logging

            logging.getLogger(__name__).info("CCH topology not cached in %s: %s", folder, exc)
    metric = rk.CCHMetric(topo)
    metric.customize(network.time_ms.astype(np.uint32))
    _CCH_CACHE[key] = (topo, metric)
    return _CCH_CACHE[key]


def _cch_times_s(network, sources, targets) -> np.ndarray:
    import pyroutingkit as rk

    _, metric = cch_metric(network)
    ms = np.asarray(metric.distances_many_to_many(sources.astype(np.uint32), targets.astype(np.uint32)))
    out = ms.astype(np.float64) / 1000.0
    out[ms >= rk.INF_WEIGHT] = np.inf
    return out


# ----------------------------------------------------------------------------------------------------------------
# Agencies × units
# ----------------------------------------------------------------------------------------------------------------
def _points_of(frame, *, lon_col: str | None = None, lat_col: str | None = None):
    if lon_col and lon_col in frame and lat_col in frame:
        return frame[lon_col].to_numpy(float), frame[lat_col].to_numpy(float)
    geom = frame.geometry
    if geom.crs is not None and not geom.crs.equals("EPSG:4326"):
        from geo.errors import InputError, Problem

        raise InputError(f"points are in {geom.crs.to_string()}, expected WGS84 (EPSG:4326)",
                         [Problem("reproject with .to_crs(4326)", code="crs")])
    pts = geom.representative_point() if not (geom.geom_type == "Point").all() else geom
    return pts.x.to_numpy(float), pts.y.to_numpy(float)


def travel_time_matrix(
    network,
    agencies,
    units,
    *,
    engine: str = "auto",
    limit_min: float | None = None,
) -> TravelMatrix:
    """Door-to-door minutes from every agency to every unit's representative point.

    Each time = agency access leg + road time + unit access leg. Agencies or units farther than the maximum
    access distance from any road get ``inf`` on their whole row or column.

    Parameters
    ----------
    agencies : GeoDataFrame
        Points with ``agency_id`` (WGS84).
    units : GeoDataFrame
        With ``unit_id`` and ``rep_lon``/``rep_lat`` (else the polygon's representative point).
    """
    a_lon, a_lat = _points_of(agencies)
    u_lon, u_lat = _points_of(units, lon_col="rep_lon", lat_col="rep_lat")
    a_snap = snap_points(network, a_lon, a_lat)
    u_snap = snap_points(network, u_lon, u_lat)
    seconds = node_times_s(
        network, a_snap.node, u_snap.node, engine=engine,
        limit_s=None if limit_min is None else limit_min * 60.0,
    )
    minutes = seconds / 60.0 + a_snap.access_min[:, None] + u_snap.access_min[None, :]
    minutes[~a_snap.reachable, :] = np.inf
    minutes[:, ~u_snap.reachable] = np.inf
    if limit_min is not None:
        minutes[minutes > limit_min] = np.inf
    return TravelMatrix(
        minutes.astype(np.float32),
        agencies["agency_id"].astype(str).to_numpy(),
        units["unit_id"].astype(str).to_numpy(),
        meta={
            "engine": engine,
            "agency_nodes": a_snap.node, "unit_nodes": u_snap.node,
            "agency_access_m": a_snap.access_m, "unit_access_m": u_snap.access_m,
            "agency_reachable": a_snap.reachable, "unit_reachable": u_snap.reachable,
        },
    )


def nearest_agencies(matrix: TravelMatrix, *, k: int = 5, active=None):
    """The ``k`` fastest agencies for every unit, as a long DataFrame (unit_id, rank, agency_id, minutes).

    ``active`` is an optional boolean mask over the matrix's agencies; inactive ones are never listed.
    Unreachable pairs are left out, so a unit with no reachable agency has no rows.
    """
    import pandas as pd

    minutes = matrix.minutes.astype(np.float64)
    if active is not None:
        minutes = np.where(np.asarray(active, dtype=bool)[:, None], minutes, np.inf)
    k = max(1, min(int(k), minutes.shape[0]))
    part = np.argpartition(minutes, k - 1, axis=0)[:k] if minutes.shape[0] > k else np.tile(
        np.arange(minutes.shape[0])[:, None], (1, minutes.shape[1]))
    vals = np.take_along_axis(minutes, part, axis=0)
    order = np.argsort(vals, axis=0, kind="stable")
    part, vals = np.take_along_axis(part, order, axis=0), np.take_along_axis(vals, order, axis=0)
    ranks, cols = np.nonzero(np.isfinite(vals))
    return pd.DataFrame(
        {
            "unit_id": matrix.unit_ids[cols],
            "rank": ranks + 1,
            "agency_id": matrix.agency_ids[part[ranks, cols]],
            "minutes": vals[ranks, cols],
        }
    ).sort_values(["unit_id", "rank"], kind="stable").reset_index(drop=True)


def nearest_agency_per_node(network, agencies, *, active=None):
    """For every network node, the minutes from its nearest agency and that agency's position, in one pass.

    One multi-source Dijkstra (``min_only=True``) over the whole graph. Each agency enters through a virtual
    node joined to its road node by its access leg, so unequal access legs are honoured and scipy's
    ``sources`` output names the owning agency directly. Returns ``(minutes, agency_index)``; nodes no agency
    can reach get ``inf`` and ``-1``.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    lon, lat = _points_of(agencies)
    snap = snap_points(network, lon, lat)
    use = snap.reachable.copy()
    if active is not None:
        use &= np.asarray(active, dtype=bool)
    idx = np.flatnonzero(use)
    n = network.node_count
    if len(idx) == 0:
        return np.full(n, np.inf), np.full(n, -1, dtype=np.int64)
    base = network.csr
    m = len(idx)
    # Append m rows (virtual sources) and m columns; each virtual row has one edge to its agency's node.
    indptr = np.concatenate([base.indptr, base.indptr[-1] + np.arange(1, m + 1)])
    indices = np.concatenate([base.indices, snap.node[idx].astype(base.indices.dtype)])
    data = np.concatenate([base.data, np.maximum(snap.access_min[idx] * 60.0, 1e-6)])
    graph = sp.csr_matrix((data, indices, indptr), shape=(n + m, n + m))
    dist, _, src = dijkstra(graph, directed=True, indices=np.arange(n, n + m), min_only=True,
                            return_predecessors=True)
    owner = np.where(src[:n] >= n, idx[np.clip(src[:n] - n, 0, m - 1)], -1)
    return dist[:n] / 60.0, owner


# ----------------------------------------------------------------------------------------------------------------
# Routes and isochrones
# ----------------------------------------------------------------------------------------------------------------
def _edge_lookup(network):
    """CSR whose value at (tail, head) is edge position + 1: path nodes → edge geometries without dicts."""
    import scipy.sparse as sp

    cached = network.__dict__.get("_edge_lookup")
    if cached is None:
        n = network.node_count
        cached = sp.csr_matrix((np.arange(1, network.edge_count + 1), (network.tail, network.head)), shape=(n, n))
        network.__dict__["_edge_lookup"] = cached
    return cached


def routes_to_point(network, lon: float, lat: float, from_nodes) -> list[dict]:
    """Fastest routes from several network nodes to one point, from a single reverse Dijkstra.

    Returns one dict per entry of ``from_nodes``: ``seconds`` (road part), ``km`` and ``edges`` (edge positions
    along the route, in travel order); ``seconds`` is ``inf`` and ``edges`` empty where no route exists.
    """
    from scipy.sparse.csgraph import dijkstra

    target = snap_points(network, [lon], [lat], max_access_m=np.inf).node[0]
    dist, pred = dijkstra(network.csr.T.tocsr(), directed=True, indices=int(target), return_predecessors=True)
    lookup = _edge_lookup(network)
    out = []
    for start in np.asarray(from_nodes, dtype=np.int64):
        if not np.isfinite(dist[start]):
            out.append({"seconds": np.inf, "km": np.inf, "edges": np.zeros(0, dtype=np.int64)})
            continue
        path = [int(start)]
        while path[-1] != target:  # walks one path of a few hundred nodes, not pairs
            path.append(int(pred[path[-1]]))
        nodes = np.asarray(path)
        edges = np.asarray(lookup[nodes[:-1], nodes[1:]]).ravel() - 1
        out.append({"seconds": float(dist[start]), "km": float(network.length_m[edges].sum() / 1000.0), "edges": edges})
    return out


def route_line(network, edges):
    """The route's geometry as one WGS84 LineString following the roads."""
    import shapely

    from geo.network import edge_geometries

    if len(edges) == 0:
        return None
    parts = [np.asarray(g.coords) for g in edge_geometries(network, edges)]
    return shapely.LineString(np.concatenate(parts))


def _edge_samples(network, *, spacing_m: float = 80.0, resolution: int = 10):
    """Points every ``spacing_m`` along each edge with their edge, fraction along it, and H3 cell (cached)."""
    import h3

    key = ("_edge_samples", spacing_m, resolution)
    cached = network.__dict__.get(key)
    if cached is None:
        counts = np.maximum(1, np.ceil(network.length_m / spacing_m).astype(np.int64)) + 1
        edge = np.repeat(np.arange(network.edge_count), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        frac = (np.arange(len(edge)) - first) / (counts[edge] - 1)
        lon = network.lon[network.tail[edge]] * (1 - frac) + network.lon[network.head[edge]] * frac
        lat = network.lat[network.tail[edge]] * (1 - frac) + network.lat[network.head[edge]] * frac
        cells = np.array([h3.latlng_to_cell(a, b, resolution) for a, b in zip(lat, lon)], dtype=object)
        cached = (edge, frac, cells)
        network.__dict__[key] = cached
    return cached


def isochrones(network, agencies, *, thresholds=None, resolution: int = 10):
    """Service-area polygons per agency and threshold (minutes), as a GeoDataFrame in WGS84.

    A road point is inside the T-minute area when agency access leg + road time to it ≤ T (times are
    interpolated along each edge from its tail). The area is the union of the H3 cells (resolution 10, about
    0.015 km² each) holding such road points, so it follows the valleys' roads instead of cutting across ridges
    as a convex hull would, and merging cells is exact and fast.
    """
    import geopandas as gpd
    import h3
    import shapely
    from scipy.sparse.csgraph import dijkstra

    from geo import settings

    thresholds = sorted(settings.coverage_thresholds_min if thresholds is None else thresholds)
    lon, lat = _points_of(agencies)
    snap = snap_points(network, lon, lat)
    edge, frac, cells = _edge_samples(network, resolution=resolution)
    edge_min = network.time_ms[edge] / 60000.0
    rows = []
    reachable = np.flatnonzero(snap.reachable)
    if len(reachable):
        dist = dijkstra(network.csr, directed=True, indices=snap.node[reachable], limit=max(thresholds) * 60.0)
    for k, i in enumerate(reachable):
        at_sample = dist[k][network.tail[edge]] / 60.0 + snap.access_min[i] + frac * edge_min
        for t in thresholds:
            inside = np.unique(cells[at_sample <= t])
            if len(inside) == 0:
                continue
            shape = shapely.geometry.shape(h3.cells_to_h3shape(list(inside)).__geo_interface__)
            rows.append({"agency_id": str(agencies["agency_id"].iloc[i]), "minutes": float(t),
                         "area_km2": len(inside) * h3.average_hexagon_area(resolution, unit="km^2"),
                         "geometry": shape})
    return gpd.GeoDataFrame(rows, columns=["agency_id", "minutes", "area_km2", "geometry"], geometry="geometry",
                            crs="EPSG:4326")
