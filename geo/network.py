"""Road networks: load from any source, give every edge a travel time, and turn the graph into arrays once.

Every source goes through the same path after loading::

    OSM XML / PBF file ─┐
    GraphML file ───────┼─> networkx MultiDiGraph ─> prepare_network() ─> RoadNetwork (arrays)
    place name/polygon ─┘   (OSMnx, cached on disk)

``prepare_network`` validates the graph, sets edge speeds from ``maxspeed`` or the per-class table in
:mod:`geo.settings`, keeps the largest strongly connected component, sorts nodes spatially (Dijkstra runs
markedly faster on a cache-friendly node order) and stores edge travel times as integer milliseconds, so every
engine downstream sums the same integers.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import re
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from geo import settings
from geo.errors import InputError, Problem

#: ``highway`` values a car can use. Anything else (footway, path, steps, cycleway, construction…) is dropped
#: when reading a raw OSM file, matching OSMnx's ``network_type="drive"``.
DRIVABLE_HIGHWAYS: frozenset[str] = frozenset(
    {
        "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link", "secondary",
        "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential", "living_street",
        "service", "road", "busway",
    }
)
_EXCLUDED_SERVICE = frozenset({"parking", "parking_aisle", "driveway", "private", "emergency_access"})
#: Car-access rules as in OSMnx's ``drive`` filter (``access=private``, ``motor_vehicle=no``, ``motorcar=no`` are
#: out), so a file pre-filtered that way, such as the demo's ``andorra_drive.osm.bz2``, loads unchanged. The most
#: specific tag present decides, as OSM defines: ``access=private`` + ``motor_vehicle=yes`` is drivable.
_CAR_ACCESS_KEYS = ("motorcar", "motor_vehicle", "vehicle", "access")
_NO_CAR = {"motorcar": frozenset({"no"}), "motor_vehicle": frozenset({"no"}), "vehicle": frozenset({"no"}),
           "access": frozenset({"private"})}


@dataclass
class RoadNetwork:
    """A drivable road network as compact arrays, ready for compiled shortest-path engines.

    Attributes
    ----------
    node_osmid : np.ndarray (int64)
        OSM id of each node, in the engine's (spatially sorted) order.
    lon, lat : np.ndarray (float64)
        WGS84 coordinates of each node.
    tail, head : np.ndarray (int32)
        Edge endpoints as node positions; parallel edges are already reduced to the fastest.
    time_ms : np.ndarray (uint32)
        Edge travel time in integer milliseconds.
    length_m : np.ndarray (float32)
        Edge length in metres.
    highway : np.ndarray (str)
        OSM class of each edge.
    edge_offsets, edge_coords : np.ndarray
        Road geometry of each edge as lon/lat vertices: edge ``i`` is ``edge_coords[edge_offsets[i]:edge_offsets[i+1]]``
        (kept as flat arrays so the file loads without pickles).
    meta : dict
        Source, counts and the speed table used.
    """

    node_osmid: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    tail: np.ndarray
    head: np.ndarray
    time_ms: np.ndarray
    length_m: np.ndarray
    highway: np.ndarray
    edge_offsets: np.ndarray | None = None
    edge_coords: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def node_count(self) -> int:
        return int(len(self.node_osmid))

    @property
    def edge_count(self) -> int:
        return int(len(self.tail))

    @cached_property
    def csr(self) -> sp.csr_matrix:
        """Adjacency in seconds (float64) for ``scipy.sparse.csgraph``; built once per network."""
        n = self.node_count
        return sp.csr_matrix((self.time_ms.astype(np.float64) / 1000.0, (self.tail, self.head)), shape=(n, n))

    @cached_property
    def csr_length(self) -> sp.csr_matrix:
        n = self.node_count
        return sp.csr_matrix((self.length_m.astype(np.float64), (self.tail, self.head)), shape=(n, n))

    @cached_property
    def projection(self):
        """A local metric CRS (UTM zone of the network's centre) for distances and buffers."""
        from pyproj import CRS
        from pyproj.aoi import AreaOfInterest
        from pyproj.database import query_utm_crs_info

        info = query_utm_crs_info(
            datum_name="WGS 84",
            area_of_interest=AreaOfInterest(
                float(self.lon.min()), float(self.lat.min()), float(self.lon.max()), float(self.lat.max())
            ),
        )
        return CRS.from_epsg(int(info[0].code))

    @cached_property
    def xy(self) -> np.ndarray:
        """Node coordinates in :attr:`projection` metres, shape (n, 2)."""
        return np.column_stack(project_lonlat(self.lon, self.lat, self.projection))

    @cached_property
    def kdtree(self):
        """A KD-tree over node coordinates, built once (``osmnx.nearest_nodes`` rebuilds one per call)."""
        from scipy.spatial import cKDTree

        return cKDTree(self.xy)

    def bounds(self) -> tuple[float, float, float, float]:
        return float(self.lon.min()), float(self.lat.min()), float(self.lon.max()), float(self.lat.max())

    def extent_polygon(self, *, buffer_m: float | None = None):
        """The network's extent: the convex hull of its nodes, widened by the access distance, in WGS84."""
        import shapely
        from pyproj import Transformer

        buffer_m = settings.max_access_distance_m if buffer_m is None else buffer_m
        hull = shapely.MultiPoint(self.xy).convex_hull.buffer(buffer_m)
        back = Transformer.from_crs(self.projection, "EPSG:4326", always_xy=True)
        return shapely.ops.transform(back.transform, hull)

    # -- persistence -------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the arrays to one ``.npz`` file (loads in milliseconds; GraphML takes seconds)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            node_osmid=self.node_osmid, lon=self.lon, lat=self.lat, tail=self.tail, head=self.head,
            time_ms=self.time_ms, length_m=self.length_m, highway=self.highway.astype("U"),
            edge_offsets=self.edge_offsets if self.edge_offsets is not None else np.zeros(0, np.int64),
            edge_coords=self.edge_coords if self.edge_coords is not None else np.zeros((0, 2)),
            meta=np.array(json.dumps(self.meta, ensure_ascii=False)),
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> "RoadNetwork":
        """Read a network written by :meth:`save`."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise InputError(f"{path.name} is not a saved road network (.npz)", [Problem(str(exc))]) from exc
        meta = json.loads(str(arrays.pop("meta")))
        arrays["highway"] = arrays["highway"].astype(object)
        if len(arrays.get("edge_offsets", ())) == 0:
            arrays["edge_offsets"] = arrays["edge_coords"] = None
        return cls(**arrays, meta=meta)

    def fingerprint(self) -> str:
        """A short hash of the topology and weights, for caches keyed on the network."""
        h = hashlib.sha1()
        for a in (self.node_osmid, self.tail, self.head, self.time_ms):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


def project_lonlat(lon, lat, crs) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat arrays to ``crs`` x/y arrays."""
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = t.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.asarray(x), np.asarray(y)


# ----------------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------------
def load_road_network(
    source: str | Path | object,
    *,
    network_type: str = "drive",
    cache: bool = True,
) -> RoadNetwork:
    """Load a drivable road network from a file, a place name or a boundary polygon.

    Parameters
    ----------
    source : str, Path or shapely Polygon
        An OSM file (``.osm``, ``.osm.bz2``, ``.osm.gz``, ``.xml``, ``.osm.pbf``), a GraphML file, a saved
        network (``.npz``), a place name such as ``"余姚市, 浙江省"`` (needs internet), or a WGS84 polygon.
    network_type : str
        OSMnx network type for online downloads.
    cache : bool
        Keep OSMnx downloads in :data:`geo.settings.cache_dir` so a second load works offline.

    Returns
    -------
    RoadNetwork
    """
    graph, label = read_graph(source, network_type=network_type, cache=cache)
    if isinstance(graph, RoadNetwork):
        return graph
    return prepare_network(graph, source_label=label)


def read_graph(source, *, network_type: str = "drive", cache: bool = True):
    """Read ``source`` into a networkx MultiDiGraph (or a ready RoadNetwork for ``.npz``) and a label."""
    import shapely

    if isinstance(source, shapely.geometry.base.BaseGeometry):
        return _graph_from_polygon(source, network_type=network_type, cache=cache), "polygon"
    path = Path(str(source))
    suffixes = "".join(path.suffixes).lower()
    if path.exists():
        if path.is_dir():
            raise InputError(f"{path} is a folder, not a road network file")
        if suffixes.endswith(".npz"):
            return RoadNetwork.load(path), path.name
        if suffixes.endswith(".graphml"):
            return _graph_from_graphml(path), path.name
        if suffixes.endswith(".pbf"):
            return _graph_from_pbf(path), path.name
        if any(suffixes.endswith(s) for s in (".osm", ".osm.bz2", ".osm.gz", ".xml", ".xml.bz2", ".xml.gz")):
            return _graph_from_osm_xml(path), path.name
        raise InputError(
            f"{path.name}: unknown road network file type",
            [Problem("expected .osm, .osm.bz2, .osm.gz, .osm.pbf, .graphml or .npz", value=path.suffix)],
        )
    if path.suffix.lower() in {".osm", ".pbf", ".graphml", ".npz", ".xml", ".bz2", ".gz"} or "/" in str(source):
        raise InputError(f"road network file not found: {source}")
    return _graph_from_place(str(source), network_type=network_type, cache=cache), str(source)


def _sniff(path: Path) -> bytes:
    opener = bz2.open if path.suffix.lower() == ".bz2" else gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(4096)
    except (OSError, EOFError) as exc:
        raise InputError(f"{path.name} cannot be read as a compressed file", [Problem(str(exc))]) from exc


def _graph_from_osm_xml(path: Path):
    """OSM XML → drivable ways only (libosmium) → OSMnx graph.

    ``osmnx.graph_from_xml`` turns every way in the file into edges (buildings, footways, rivers), so a user's
    raw export is first cut to drivable ways with the same filter as PBF files.
    """
    head = _sniff(path).lstrip()
    if not head:
        raise InputError(f"{path.name} is empty")
    if not head.startswith(b"<") or b"<osm" not in head:
        raise InputError(
            f"{path.name} is not an OSM XML file",
            [Problem("an OSM XML file starts with <?xml …?> and an <osm> element", value=head[:40])],
        )
    return _graph_from_drivable_ways(path, kind="OSM XML")


def _graph_from_drivable_ways(path: Path, *, kind: str):
    import osmnx as ox

    with tempfile.TemporaryDirectory(prefix="ltci_osm_") as folder:
        extract = _drivable_extract(path, Path(folder), kind=kind)
        try:
            return ox.graph_from_xml(extract, simplify=True, retain_all=True)
        except InputError:
            raise
        except Exception as exc:  # osmnx raises bare ValueError/ParseError/EmptyOverpassResponse variants
            raise _explain_osm_failure(path, exc) from exc


def _graph_from_pbf(path: Path):
    """PBF → a drivable-only OSM XML in a temp folder (libosmium), then the same XML reader."""
    with open(path, "rb") as fh:
        start = fh.read(64)
    if len(start) == 0:
        raise InputError(f"{path.name} is empty")
    # A PBF starts with a 4-byte big-endian header length then a BlobHeader whose type is "OSMHeader".
    if b"OSMHeader" not in start:
        raise InputError(f"{path.name} is not an OSM PBF file", [Problem("no OSMHeader block at the start")])
    return _graph_from_drivable_ways(path, kind="OSM PBF")


def _drivable_extract(path: Path, folder: Path, *, kind: str) -> Path:
    """The drivable ways of an OSM file and the nodes they use, written as OSM XML into ``folder``."""
    import osmium

    tmp = folder / f"{path.name.split('.')[0] or 'extract'}_drive.osm"
    kept = 0
    try:
        with osmium.BackReferenceWriter(str(tmp), ref_src=str(path), overwrite=True) as writer:
            for way in osmium.FileProcessor(str(path), osmium.osm.WAY).with_filter(osmium.filter.KeyFilter("highway")):
                if _is_drivable(dict(way.tags)):
                    writer.add_way(way)
                    kept += 1
    except RuntimeError as exc:
        raise InputError(f"{path.name} cannot be read as {kind}", [Problem(str(exc))]) from exc
    if kept == 0:
        raise InputError(
            f"{path.name} holds no drivable roads",
            [Problem("no way has a drivable highway tag (footways, paths, tracks and private roads do not count)")],
        )
    return tmp


def _is_drivable(tags: dict) -> bool:
    hw = tags.get("highway")
    if hw not in DRIVABLE_HIGHWAYS or tags.get("area") == "yes":
        return False
    decisive = next((k for k in _CAR_ACCESS_KEYS if k in tags), None)
    if decisive is not None and tags[decisive] in _NO_CAR[decisive]:
        return False
    return not (hw == "service" and tags.get("service") in _EXCLUDED_SERVICE)


def _graph_from_graphml(path: Path):
    import osmnx as ox

    head = _sniff(path)
    if b"graphml" not in head.lower():
        raise InputError(f"{path.name} is not a GraphML file", [Problem("no <graphml> element", value=head[:40])])
    try:
        return ox.load_graphml(path)
    except Exception as exc:
        raise InputError(f"{path.name} could not be read as an OSMnx GraphML network", [Problem(str(exc))]) from exc


def _configure_osmnx_cache(cache: bool) -> None:
    import osmnx as ox

    ox.settings.use_cache = cache
    ox.settings.cache_folder = str(settings.cache_dir / "osmnx")


def _graph_from_place(query: str, *, network_type: str, cache: bool):
    import osmnx as ox

    _configure_osmnx_cache(cache)
    try:
        return ox.graph_from_place(query, network_type=network_type, retain_all=True)
    except Exception as exc:
        raise _explain_download_failure(query, exc) from exc


def _graph_from_polygon(polygon, *, network_type: str, cache: bool):
    import osmnx as ox

    _configure_osmnx_cache(cache)
    if polygon.is_empty or not polygon.is_valid:
        raise InputError("the boundary polygon is empty or invalid")
    minx, miny, maxx, maxy = polygon.bounds
    if not (-180 <= minx <= 180 and -90 <= miny <= 90 and -180 <= maxx <= 180 and -90 <= maxy <= 90):
        raise InputError(
            "the boundary polygon is not in WGS84 longitude/latitude (EPSG:4326)",
            [Problem("reproject it first", value=polygon.bounds)],
        )
    try:
        return ox.graph_from_polygon(polygon, network_type=network_type, retain_all=True)
    except Exception as exc:
        raise _explain_download_failure("polygon", exc) from exc


def _explain_download_failure(what: str, exc: Exception) -> InputError:
    text = f"{type(exc).__name__}: {exc}"
    if any(k in text for k in ("ConnectionError", "Max retries", "NameResolution", "timed out", "Temporary failure")):
        return InputError(f"cannot download {what}: no internet connection; load an OSM file instead", [Problem(text)])
    return InputError(f"could not get a road network for {what}", [Problem(text)])


def _explain_osm_failure(path: Path, exc: Exception) -> InputError:
    text = f"{type(exc).__name__}: {exc}"
    if "no data" in text.lower() or "empty" in text.lower() or "found no graph nodes" in text.lower():
        return InputError(f"{path.name} holds no drivable roads", [Problem(text)])
    return InputError(f"{path.name} could not be read as OSM data", [Problem(text)])


# ----------------------------------------------------------------------------------------------------------------
# The shared path: speeds, travel times, largest component, arrays
# ----------------------------------------------------------------------------------------------------------------
_MAXSPEED_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?", re.I)
#: Implicit country limits seen in OSM ``maxspeed`` (e.g. ``ES:urban``), in km/h.
_IMPLICIT_LIMITS = {"urban": 50.0, "rural": 90.0, "motorway": 120.0, "trunk": 100.0, "living_street": 20.0,
                    "walk": 6.0, "nsl_single": 96.0, "nsl_dual": 112.0}


def parse_maxspeed(value) -> float | None:
    """A tagged ``maxspeed`` in km/h, or ``None`` when it cannot be read (``none``, ``signals``, garbage).

    Lists (from merged edges) give their mean; ``mph`` is converted; ``CC:urban``-style values use common limits.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    values = value if isinstance(value, (list, tuple)) else str(value).split(";")
    speeds = []
    for v in values:
        v = str(v).strip().lower()
        m = _MAXSPEED_RE.fullmatch(v) or _MAXSPEED_RE.match(v)
        if m and m.group(0).strip() and v[0].isdigit():
            kph = float(m.group(1)) * (1.609344 if (m.group(2) or "").lower() == "mph" else 1.0)
            if 0 < kph <= 200:
                speeds.append(kph)
        elif ":" in v and v.split(":", 1)[1] in _IMPLICIT_LIMITS:
            speeds.append(_IMPLICIT_LIMITS[v.split(":", 1)[1]])
    return float(np.mean(speeds)) if speeds else None


def class_speed_kph(highway) -> float:
    """Table speed for an OSM ``highway`` value (links take the parent class; lists take the fastest)."""
    classes = highway if isinstance(highway, (list, tuple)) else [highway]
    table = settings.highway_speeds_kph
    speeds = [table.get(str(c).removesuffix("_link"), settings.fallback_speed_kph) for c in classes if c]
    return max(speeds) if speeds else settings.fallback_speed_kph


def edge_speed_kph(data: dict) -> tuple[float, str]:
    """The speed used for one edge and where it came from (``maxspeed`` or ``table``)."""
    table_kph = class_speed_kph(data.get("highway"))
    tagged = parse_maxspeed(data.get("maxspeed"))
    if tagged is None:
        return table_kph, "table"
    return min(tagged, table_kph * settings.maxspeed_cap_factor), "maxspeed"


def prepare_network(graph, *, source_label: str = "") -> RoadNetwork:
    """Validate a networkx road graph and turn it into a :class:`RoadNetwork`.

    Raises :class:`InputError` for an empty or roadless graph, or one without coordinates / lengths.
    """
    import networkx as nx

    problems = _validate_graph(graph)
    if problems:
        raise InputError(f"the road network from {source_label or 'the input'} cannot be used", problems)
    total_nodes = graph.number_of_nodes()
    largest = max(nx.strongly_connected_components(graph), key=len)
    sub = graph.subgraph(largest)

    nodes = np.fromiter(sub.nodes, dtype=np.int64, count=len(largest))
    lon = np.array([sub.nodes[n]["x"] for n in nodes], dtype=np.float64)
    lat = np.array([sub.nodes[n]["y"] for n in nodes], dtype=np.float64)
    order = _spatial_order(lon, lat)
    nodes, lon, lat = nodes[order], lon[order], lat[order]
    position = {int(n): i for i, n in enumerate(nodes)}

    tails, heads, times, lengths, classes, shapes = [], [], [], [], [], []
    from_table = 0
    for u, v, data in sub.edges(data=True):
        length = float(data.get("length", 0.0) or 0.0)
        kph, origin = edge_speed_kph(data)
        from_table += origin == "table"
        tails.append(position[int(u)])
        heads.append(position[int(v)])
        # At least 1 ms, so no zero-weight edge (which scipy's sparse graphs would read as "no edge").
        times.append(max(1, int(round(length / (kph / 3.6) * 1000.0))))
        lengths.append(length)
        hw = data.get("highway")
        classes.append(hw[0] if isinstance(hw, list) else str(hw))
        geom = data.get("geometry")
        shapes.append(
            np.asarray(geom.coords, dtype=np.float64) if geom is not None
            else np.array([[sub.nodes[u]["x"], sub.nodes[u]["y"]], [sub.nodes[v]["x"], sub.nodes[v]["y"]]])
        )
    tail = np.asarray(tails, dtype=np.int32)
    head = np.asarray(heads, dtype=np.int32)
    time_ms = np.asarray(times, dtype=np.int64)
    length_m = np.asarray(lengths, dtype=np.float32)
    highway = np.asarray(classes, dtype=object)

    # Parallel edges: keep the fastest (a sum would be wrong, as networkx.to_scipy_sparse_array does by default).
    key = tail.astype(np.int64) * len(nodes) + head
    order = np.lexsort((time_ms, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    keep = order[first]
    kept_shapes = [shapes[i] for i in keep]
    edge_offsets = np.zeros(len(keep) + 1, dtype=np.int64)
    edge_offsets[1:] = np.cumsum([len(c) for c in kept_shapes])
    net = RoadNetwork(
        node_osmid=nodes, lon=lon, lat=lat, tail=tail[keep], head=head[keep],
        time_ms=time_ms[keep].astype(np.uint32), length_m=length_m[keep], highway=highway[keep],
        edge_offsets=edge_offsets, edge_coords=np.concatenate(kept_shapes) if kept_shapes else np.zeros((0, 2)),
        meta={
            "source": source_label,
            "nodes_in_source": int(total_nodes),
            "nodes": int(len(nodes)),
            "edges": int(len(keep)),
            "parallel_edges_dropped": int(len(order) - len(keep)),
            "largest_scc_share": round(len(nodes) / max(total_nodes, 1), 4),
            "edges_speed_from_table": int(from_table),
            "edges_speed_from_maxspeed": int(len(tails) - from_table),
            "highway_speeds_kph": dict(settings.highway_speeds_kph),
        },
    )
    return net


def _validate_graph(graph) -> list[Problem]:
    problems: list[Problem] = []
    if graph is None or graph.number_of_nodes() == 0:
        return [Problem("the network has no nodes: is the area right, and does the file hold roads?")]
    if graph.number_of_edges() == 0:
        return [Problem("the network has nodes but no roads between them")]
    if not graph.is_directed():
        problems.append(Problem("the graph is undirected; one-way streets would be lost (use an OSMnx MultiDiGraph)"))
    sample = next(iter(graph.nodes(data=True)))[1]
    if "x" not in sample or "y" not in sample:
        problems.append(Problem("nodes carry no x/y coordinates"))
    else:
        crs = str(graph.graph.get("crs", "epsg:4326")).lower()
        if crs not in ("epsg:4326", "wgs84", "+init=epsg:4326", "ogc:crs84"):
            problems.append(Problem(f"the graph is projected ({crs}); give it in WGS84 (EPSG:4326)", code="crs"))
        elif not (-180 <= float(sample["x"]) <= 180 and -90 <= float(sample["y"]) <= 90):
            problems.append(Problem("node coordinates are not longitude/latitude", value=(sample["x"], sample["y"])))
    edge = next(iter(graph.edges(data=True)))[2]
    if "length" not in edge:
        problems.append(Problem("edges carry no length (metres)"))
    return problems


def _spatial_order(lon: np.ndarray, lat: np.ndarray, *, cells: int = 256) -> np.ndarray:
    """Node order along a Z-order (Morton) curve of a grid, so graph neighbours sit near each other in memory."""
    def scale(v):
        lo, hi = float(v.min()), float(v.max())
        return np.clip(((v - lo) / max(hi - lo, 1e-12) * (cells - 1)).astype(np.uint32), 0, cells - 1)

    gx, gy = scale(lon), scale(lat)
    code = np.zeros(len(lon), dtype=np.uint64)
    for bit in range(16):
        code |= ((gx >> bit) & 1).astype(np.uint64) << np.uint64(2 * bit)
        code |= ((gy >> bit) & 1).astype(np.uint64) << np.uint64(2 * bit + 1)
    return np.argsort(code, kind="stable")


def edge_geometries(network: RoadNetwork, edges: np.ndarray | None = None) -> np.ndarray:
    """Shapely LineStrings (WGS84) of the given edge positions (all edges by default), following the road."""
    import shapely

    edges = np.arange(network.edge_count) if edges is None else np.asarray(edges, dtype=np.int64)
    if network.edge_offsets is None:
        coords = np.stack([np.column_stack([network.lon[network.tail[edges]], network.lat[network.tail[edges]]]),
                           np.column_stack([network.lon[network.head[edges]], network.lat[network.head[edges]]])], axis=1)
        return shapely.linestrings(coords)
    starts, ends = network.edge_offsets[edges], network.edge_offsets[edges + 1]
    index = np.repeat(np.arange(len(edges)), ends - starts)
    flat = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]) if len(edges) else np.zeros(0, np.int64)
    return shapely.linestrings(network.edge_coords[flat], indices=index)


def edges_frame(network: RoadNetwork, *, min_class: str | None = None):
    """The network's edges as a GeoDataFrame (WGS84), for drawing routes and the offline vector basemap.

    ``min_class="tertiary"`` keeps only tertiary-and-above roads (a lighter basemap).
    """
    import geopandas as gpd

    keep = np.arange(network.edge_count)
    if min_class is not None:
        ranks = ["motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential"]
        allowed = {c for c in ranks[: ranks.index(min_class) + 1]} | {c + "_link" for c in ranks}
        keep = np.flatnonzero(np.isin(network.highway.astype(str), list(allowed)))
    return gpd.GeoDataFrame(
        {"highway": network.highway[keep].astype(str), "minutes": network.time_ms[keep] / 60000.0,
         "length_m": network.length_m[keep]},
        geometry=edge_geometries(network, keep),
        crs="EPSG:4326",
    )
