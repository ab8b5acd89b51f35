"""Road network loading: every source through one path, edge times, parallel edges, and bad input.

The OSM inputs are the demo's real files: the drive-filtered XML (``data/andorra/raw/andorra_drive.osm.bz2``), a
small bounding box cut from the full PBF extract with pyosmium at test time (written both as PBF and as XML, so the
XML carries footways and other non-drivable ways the loader has to drop), and a GraphML written by OSMnx.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from geo import settings
from geo.errors import InputError
from geo.network import (
    RoadNetwork,
    class_speed_kph,
    edges_frame,
    load_road_network,
    parse_maxspeed,
    prepare_network,
    read_graph,
)

RAW = settings.demo_region_dir / "raw"
DEMO_XML = RAW / "andorra_drive.osm.bz2"
DEMO_PBF = RAW / "andorra-latest.osm.pbf"
FIXTURES = Path(__file__).parent / "fixtures" / "osm"
#: Central Andorra la Vella: a few hundred drivable nodes, a dense town centre with one-way streets.
TOWN_BBOX = (1.515, 42.500, 1.545, 42.515)


def cut_bbox(source: Path, out: Path, bbox=TOWN_BBOX) -> Path:
    """Every ``highway`` way lying wholly inside ``bbox``, with its nodes, written in ``out``'s format."""
    import osmium

    west, south, east, north = bbox
    processor = (
        osmium.FileProcessor(str(source), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    with osmium.BackReferenceWriter(str(out), ref_src=str(source), overwrite=True) as writer:
        for way in processor:
            if all(west <= n.lon <= east and south <= n.lat <= north for n in way.nodes):
                writer.add_way(way)
    return out


@pytest.fixture(scope="module")
def demo_npz() -> RoadNetwork:
    return RoadNetwork.load(settings.demo_region_dir / "roads.npz")


@pytest.fixture(scope="module")
def demo_from_xml() -> RoadNetwork:
    return load_road_network(DEMO_XML)


@pytest.fixture(scope="module")
def town_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("town")
    return {
        "pbf": cut_bbox(DEMO_PBF, folder / "town.osm.pbf"),
        "xml": cut_bbox(DEMO_PBF, folder / "town.osm"),
        "folder": folder,
    }


@pytest.fixture(scope="module")
def town_pbf(town_files) -> RoadNetwork:
    return load_road_network(town_files["pbf"])


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _osm(nodes: list[tuple[int, float, float]], ways: list[tuple[int, list[int], dict]]) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="tests">']
    lines += [f'  <node id="{i}" version="1" lat="{lat}" lon="{lon}"/>' for i, lon, lat in nodes]
    for wid, refs, tags in ways:
        lines.append(f'  <way id="{wid}" version="1">')
        lines += [f'    <nd ref="{r}"/>' for r in refs]
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------------------
# One path for every source
# ----------------------------------------------------------------------------------------------------------------
def test_demo_osm_xml_loads_to_the_committed_network(demo_from_xml, demo_npz):
    net = demo_from_xml
    assert net.node_count == demo_npz.node_count == 2854
    assert net.edge_count == demo_npz.edge_count
    np.testing.assert_array_equal(net.node_osmid, demo_npz.node_osmid)
    np.testing.assert_array_equal(net.tail, demo_npz.tail)
    np.testing.assert_array_equal(net.head, demo_npz.head)
    np.testing.assert_array_equal(net.time_ms, demo_npz.time_ms)
    assert net.meta["nodes_in_source"] == 2929  # osmnx.graph_from_xml on the same file, before the largest SCC
    assert 0.95 < net.meta["largest_scc_share"] < 1.0


def test_pbf_and_xml_cuts_of_the_same_area_load_the_same_network(town_files, town_pbf):
    from_xml = load_road_network(town_files["xml"])
    assert 300 < town_pbf.node_count < 1500
    assert from_xml.node_count == town_pbf.node_count
    np.testing.assert_array_equal(from_xml.node_osmid, town_pbf.node_osmid)
    np.testing.assert_array_equal(from_xml.time_ms, town_pbf.time_ms)
    # The cut carries footways, steps and service lanes; none may reach the car network.
    assert not set(town_pbf.highway) & {"footway", "steps", "path", "pedestrian", "cycleway", "track"}
    assert {"primary", "residential"} <= set(town_pbf.highway)


def test_pbf_cut_is_the_demo_network_restricted_to_the_area(town_pbf, demo_npz):
    # Every town node that is an intersection of the drive network must also be a demo network node.
    shared = np.isin(town_pbf.node_osmid, demo_npz.node_osmid)
    assert shared.mean() > 0.9


def test_graphml_written_by_osmnx_loads_the_same_network(town_files, town_pbf):
    import osmnx as ox

    graph, _ = read_graph(town_files["pbf"])
    path = town_files["folder"] / "town.graphml"
    ox.save_graphml(graph, path)
    from_graphml = load_road_network(path)
    assert from_graphml.node_count == town_pbf.node_count
    np.testing.assert_array_equal(from_graphml.node_osmid, town_pbf.node_osmid)
    np.testing.assert_array_equal(from_graphml.time_ms, town_pbf.time_ms)


def test_saved_network_round_trips(town_pbf, tmp_path):
    path = town_pbf.save(tmp_path / "town.npz")
    again = load_road_network(path)
    for name in ("node_osmid", "lon", "lat", "tail", "head", "time_ms", "length_m", "edge_offsets", "edge_coords"):
        np.testing.assert_array_equal(getattr(again, name), getattr(town_pbf, name))
    assert list(again.highway) == list(town_pbf.highway)
    assert again.fingerprint() == town_pbf.fingerprint()


def test_edge_times_follow_the_speed_table_and_maxspeed(demo_npz):
    # Recompute a few table-speed edges by hand: time = length / table speed.
    frame = edges_frame(demo_npz)
    residential = np.flatnonzero(demo_npz.highway.astype(str) == "residential")
    assert len(residential) > 100
    # The table speed is an upper bound for residential (maxspeed can only lower it or cap it at 1.6×).
    kph = demo_npz.length_m[residential] / (demo_npz.time_ms[residential] / 1000.0) * 3.6
    assert np.median(kph) == pytest.approx(settings.highway_speeds_kph["residential"], rel=0.02)
    assert kph.max() <= settings.highway_speeds_kph["residential"] * settings.maxspeed_cap_factor + 0.5
    assert (demo_npz.time_ms >= 1).all()
    assert len(frame) == demo_npz.edge_count and frame.crs.to_epsg() == 4326


def test_maxspeed_parsing():
    assert parse_maxspeed("50") == 50.0
    assert parse_maxspeed("30 mph") == pytest.approx(48.28, abs=0.01)
    assert parse_maxspeed("ES:urban") == 50.0
    assert parse_maxspeed(["40", "60"]) == 50.0
    assert parse_maxspeed("none") is None
    assert parse_maxspeed("signals") is None
    assert parse_maxspeed(None) is None
    assert class_speed_kph("primary_link") == settings.highway_speeds_kph["primary"]
    assert class_speed_kph(["residential", "tertiary"]) == settings.highway_speeds_kph["tertiary"]
    assert class_speed_kph("no_such_class") == settings.fallback_speed_kph


def _tiny_graph(edges, *, crs="epsg:4326", directed=True):
    """A MultiDiGraph on 4 nodes 100 m apart along a line (WGS84), with (u, v, length, highway[, maxspeed])."""
    graph = nx.MultiDiGraph(crs=crs) if directed else nx.MultiGraph(crs=crs)
    for i in range(4):
        graph.add_node(i + 1, x=1.50 + 0.0012 * i, y=42.50)
    for u, v, length, hw, *rest in edges:
        data = {"length": float(length), "highway": hw}
        if rest:
            data["maxspeed"] = rest[0]
        graph.add_edge(u, v, **data)
    return graph


def test_parallel_edges_take_the_minimum_not_the_sum():
    graph = _tiny_graph([
        (1, 2, 900.0, "residential"), (1, 2, 250.0, "residential"),  # two roads from 1 to 2
        (2, 1, 250.0, "residential"), (2, 3, 100.0, "primary"), (3, 2, 100.0, "primary"),
        (3, 4, 100.0, "residential"), (4, 3, 100.0, "residential"),
    ])
    # networkx's default conversion adds parallel edges together: the trap this module avoids.
    summed = nx.to_scipy_sparse_array(graph, nodelist=[1, 2, 3, 4], weight="length")
    assert summed[0, 1] == 1150.0
    net = prepare_network(graph)
    assert net.meta["parallel_edges_dropped"] == 1
    one, two = (int(np.flatnonzero(net.node_osmid == k)[0]) for k in (1, 2))
    arc = np.flatnonzero((net.tail == one) & (net.head == two))
    assert len(arc) == 1
    assert net.time_ms[arc[0]] == round(250.0 / (settings.highway_speeds_kph["residential"] / 3.6) * 1000)
    assert net.csr[one, two] == pytest.approx(250.0 / (settings.highway_speeds_kph["residential"] / 3.6))


def test_parallel_ways_in_an_osm_file_take_the_faster(tmp_path):
    # Two ways join nodes 1 and 2: a direct residential street and a longer primary road bending through node 5.
    nodes = [(1, 1.5000, 42.5000), (2, 1.5020, 42.5000), (3, 1.5040, 42.5000), (4, 1.4980, 42.5000),
             (5, 1.5010, 42.5005)]
    ways = [
        (10, [1, 2], {"highway": "residential"}),
        (11, [1, 5, 2], {"highway": "primary"}),
        (12, [2, 3], {"highway": "residential"}),
        (13, [4, 1], {"highway": "residential"}),
    ]
    net = load_road_network(_write(tmp_path / "parallel.osm", _osm(nodes, ways)))
    assert sorted(net.node_osmid.tolist()) == [1, 2, 3, 4]  # node 5 is a bend, simplified away
    assert net.meta["parallel_edges_dropped"] == 2  # one per direction
    one, two = (int(np.flatnonzero(net.node_osmid == k)[0]) for k in (1, 2))
    arc = np.flatnonzero((net.tail == one) & (net.head == two))[0]
    direct_ms = net.length_m[arc] / (settings.highway_speeds_kph["residential"] / 3.6) * 1000
    # The primary road (~1.2× longer at 2.4× the speed) is faster than the direct street, so it is the one kept.
    assert net.highway[arc] == "primary"
    assert net.time_ms[arc] < direct_ms


def test_speed_table_is_read_at_call_time(monkeypatch):
    graph = _tiny_graph([(1, 2, 1000.0, "tertiary"), (2, 1, 1000.0, "tertiary")])
    before = prepare_network(graph).time_ms.max()
    monkeypatch.setitem(settings.highway_speeds_kph, "tertiary", 20.0)
    after = prepare_network(graph).time_ms.max()
    assert before == 90_000 and after == 180_000


def test_tagged_maxspeed_is_used_and_capped():
    graph = _tiny_graph([(1, 2, 1000.0, "residential", "50"), (2, 1, 1000.0, "residential", "130")])
    net = prepare_network(graph)
    times = sorted(net.time_ms.tolist())
    cap = settings.highway_speeds_kph["residential"] * settings.maxspeed_cap_factor
    assert times == [round(1000 / (min(130, cap) / 3.6) * 1000), round(1000 / (min(50, cap) / 3.6) * 1000)]
    assert net.meta["edges_speed_from_maxspeed"] == 2


def test_only_the_largest_strongly_connected_component_is_kept():
    # 1 <-> 2 <-> 3 both ways; 3 -> 4 one-way into a dead end: node 4 cannot get back.
    graph = _tiny_graph([(1, 2, 100, "residential"), (2, 1, 100, "residential"), (2, 3, 100, "residential"),
                         (3, 2, 100, "residential"), (3, 4, 100, "residential")])
    net = prepare_network(graph)
    assert sorted(net.node_osmid.tolist()) == [1, 2, 3]
    assert net.meta["nodes_in_source"] == 4 and net.meta["largest_scc_share"] == 0.75


def test_access_tags_follow_the_most_specific_key(tmp_path):
    nodes = [(i, 1.50 + 0.001 * i, 42.5) for i in range(1, 7)]
    ways = [
        (10, [1, 2], {"highway": "residential"}),
        (11, [2, 3], {"highway": "residential", "access": "private", "motor_vehicle": "yes"}),  # drivable
        (12, [3, 4], {"highway": "residential", "access": "private"}),  # not drivable
        (13, [2, 5], {"highway": "residential", "motor_vehicle": "no"}),  # not drivable
        (14, [1, 6], {"highway": "service", "service": "parking_aisle"}),  # not drivable
    ]
    net = load_road_network(_write(tmp_path / "access.osm", _osm(nodes, ways)))
    kept = set(net.node_osmid.tolist())
    assert {1, 3} <= kept and not kept & {4, 5, 6}  # node 2 may be simplified away as a bend


# ----------------------------------------------------------------------------------------------------------------
# Bad input: each a clear InputError
# ----------------------------------------------------------------------------------------------------------------
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("photo.osm", PNG_BYTES, "is not an OSM XML file"),
        ("notes.osm", b"village list\nname,population\n", "is not an OSM XML file"),
        ("photo.osm.pbf", PNG_BYTES, "is not an OSM PBF file"),
        ("notes.pbf", b"<osm>not really</osm>", "is not an OSM PBF file"),
        ("roads.graphml", b"just text", "is not a GraphML file"),
        ("empty.osm", b"", "is empty"),
        ("empty.osm.pbf", b"", "is empty"),
        ("roads.txt", b"<osm></osm>", "unknown road network file type"),
        ("roads.osm.bz2", b"not bzip2 data", "cannot be read as a compressed file"),
        ("cut_short.osm", b'<?xml version="1.0"?>\n<osm version="0.6">\n<node id="1" lat="42.5" lo',
         "cannot be read as OSM XML"),
    ],
)
def test_files_that_are_not_osm_are_refused(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_road_network(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_road_network(tmp_path / "nowhere.osm.pbf")


def test_roadless_extracts_are_refused(tmp_path):
    only_nodes = _osm([(1, 1.5, 42.5), (2, 1.501, 42.5), (3, 1.502, 42.5)], [])
    footways = _osm(
        [(1, 1.5, 42.5), (2, 1.501, 42.5), (3, 1.502, 42.501), (4, 1.5, 42.501)],
        [(10, [1, 2, 3], {"highway": "footway"}), (11, [3, 4], {"highway": "steps"}),
         (12, [1, 2, 3, 4, 1], {"building": "yes"}), (13, [4, 1], {"highway": "track"})],
    )
    for name, text in (("nodes_only.osm", only_nodes), ("footways.osm", footways)):
        with pytest.raises(InputError, match="holds no drivable roads") as info:
            load_road_network(_write(tmp_path / name, text))
        assert "footways" in str(info.value)


def test_roadless_pbf_is_refused(tmp_path):
    import osmium

    path = tmp_path / "paths.osm.pbf"
    with osmium.SimpleWriter(str(path)) as writer:
        for i in range(3):
            writer.add_node(osmium.osm.mutable.Node(id=i + 1, location=(1.5 + 0.001 * i, 42.5)))
        writer.add_way(osmium.osm.mutable.Way(id=10, nodes=[1, 2, 3], tags={"highway": "path"}))
    with pytest.raises(InputError, match="holds no drivable roads"):
        load_road_network(path)


def test_projected_graph_is_refused(town_files):
    import osmnx as ox

    graph, _ = read_graph(town_files["pbf"])
    projected = ox.project_graph(graph, to_crs="EPSG:32631")
    with pytest.raises(InputError, match="projected") as info:
        prepare_network(projected)
    assert any(p.code == "crs" for p in info.value.problems)
    path = town_files["folder"] / "projected.graphml"
    ox.save_graphml(projected, path)
    with pytest.raises(InputError, match="projected"):
        load_road_network(path)


def test_graphs_missing_what_travel_times_need_are_refused():
    with pytest.raises(InputError, match="no nodes"):
        prepare_network(nx.MultiDiGraph(crs="epsg:4326"))
    no_edges = nx.MultiDiGraph(crs="epsg:4326")
    no_edges.add_node(1, x=1.5, y=42.5)
    with pytest.raises(InputError, match="no roads"):
        prepare_network(no_edges)
    undirected = _tiny_graph([(1, 2, 100, "residential")], directed=False)
    with pytest.raises(InputError, match="undirected"):
        prepare_network(undirected)
    no_length = nx.MultiDiGraph(crs="epsg:4326")
    no_length.add_node(1, x=1.5, y=42.5)
    no_length.add_node(2, x=1.501, y=42.5)
    no_length.add_edge(1, 2, highway="residential")
    with pytest.raises(InputError, match="no length"):
        prepare_network(no_length)
    swapped = _tiny_graph([(1, 2, 100, "residential"), (2, 1, 100, "residential")])
    for _, data in swapped.nodes(data=True):
        data["x"], data["y"] = 4_000_000.0, 500_000.0  # metres labelled as WGS84
    with pytest.raises(InputError, match="not longitude/latitude"):
        prepare_network(swapped)
