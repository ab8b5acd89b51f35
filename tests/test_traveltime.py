"""Travel times on the demo network, checked against networkx on the same integer-millisecond weights.

networkx is the independent reference here (single-source Dijkstra per agency, the way a tester can trust), never
the engine. Snapping is checked against a brute-force nearest node, so the matrix is rebuilt from scratch.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from geo import settings
from geo.errors import InputError
from geo.network import RoadNetwork, project_lonlat
from geo.traveltime import (
    TravelMatrix,
    isochrones,
    nearest_agencies,
    nearest_agency_per_node,
    node_times_s,
    route_line,
    routes_to_point,
    snap_points,
    travel_time_matrix,
)

#: 1 ms in minutes: the tolerance the issue sets (1e-3 s), plus float32 rounding of minutes below 2 h.
TOL_MIN = 1e-3 / 60.0 + 1e-5


@pytest.fixture(scope="module")
def network() -> RoadNetwork:
    return RoadNetwork.load(settings.demo_region_dir / "roads.npz")


@pytest.fixture(scope="module")
def graph(network) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_weighted_edges_from(zip(network.tail.tolist(), network.head.tolist(), network.time_ms.tolist()))
    return g


@pytest.fixture(scope="module")
def agencies() -> gpd.GeoDataFrame:
    frame = gpd.read_file(settings.demo_region_dir / "agencies.geojson")
    frame["agency_id"] = frame["agency_id"].astype(str)
    return frame


@pytest.fixture(scope="module")
def units() -> gpd.GeoDataFrame:
    frame = gpd.read_file(settings.demo_region_dir / "units.geojson")
    frame["unit_id"] = frame["unit_id"].astype(str)
    return frame


@pytest.fixture(scope="module")
def matrix(network, agencies, units) -> TravelMatrix:
    return travel_time_matrix(network, agencies, units, engine="scipy")


@pytest.fixture(autouse=True)
def _cch_cache_in_tmp(tmp_path_factory, monkeypatch):
    # CCH topologies are cached on disk; keep test builds out of the project's cache folder.
    monkeypatch.setattr(settings, "cache_dir", tmp_path_factory.getbasetemp() / "cache")


def _brute_snap(network, lon, lat):
    """Nearest node and its distance in metres by scanning every node (no KD-tree)."""
    x, y = project_lonlat(np.atleast_1d(lon), np.atleast_1d(lat), network.projection)
    d = np.hypot(network.xy[:, 0][None, :] - x[:, None], network.xy[:, 1][None, :] - y[:, None])
    return d.argmin(axis=1), d.min(axis=1)


def _points(lonlat, ids, *, key="agency_id", crs="EPSG:4326"):
    lon, lat = np.asarray(lonlat, dtype=float).T
    return gpd.GeoDataFrame({key: ids}, geometry=gpd.points_from_xy(lon, lat), crs=crs)


# ----------------------------------------------------------------------------------------------------------------
# The matrix against networkx
# ----------------------------------------------------------------------------------------------------------------
def test_matrix_equals_networkx_single_source_dijkstra(network, graph, agencies, units, matrix):
    assert matrix.minutes.shape == (len(agencies), len(units)) == (18, 70)
    assert matrix.minutes.dtype == np.float32
    assert list(matrix.agency_ids) == list(agencies["agency_id"])
    assert list(matrix.unit_ids) == list(units["unit_id"])

    a_node, a_m = _brute_snap(network, agencies.geometry.x.to_numpy(), agencies.geometry.y.to_numpy())
    u_node, u_m = _brute_snap(network, units["rep_lon"].to_numpy(), units["rep_lat"].to_numpy())
    to_min = 1.0 / (settings.access_speed_kph / 3.6) / 60.0
    expected = np.empty((len(agencies), len(units)))
    for i, source in enumerate(a_node):
        ms = nx.single_source_dijkstra_path_length(graph, int(source), weight="weight")
        expected[i] = [ms[int(t)] / 60_000.0 for t in u_node]
    expected += a_m[:, None] * to_min + u_m[None, :] * to_min
    assert np.isfinite(matrix.minutes).all()  # every demo agency and unit is near a road
    np.testing.assert_allclose(matrix.minutes, expected, rtol=0, atol=TOL_MIN)
    assert 0 < matrix.minutes.min() and matrix.minutes.max() < 120


def test_node_times_equal_networkx_on_random_nodes(network, graph):
    rng = np.random.default_rng(3)
    sources, targets = rng.choice(network.node_count, 6), rng.choice(network.node_count, 400)
    got = node_times_s(network, sources, targets, engine="scipy")
    for i, s in enumerate(sources):
        ms = nx.single_source_dijkstra_path_length(graph, int(s), weight="weight")
        np.testing.assert_allclose(got[i], [ms[int(t)] / 1000.0 for t in targets], rtol=0, atol=1e-3)


def test_scipy_and_cch_engines_agree(network):
    rng = np.random.default_rng(4)
    sources = np.concatenate([rng.choice(network.node_count, 30), [5, 5]])  # repeated sources keep their rows
    targets = rng.choice(network.node_count, 500)
    scipy_s = node_times_s(network, sources, targets, engine="scipy")
    cch_s = node_times_s(network, sources, targets, engine="cch")
    np.testing.assert_allclose(cch_s, scipy_s, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(scipy_s[-1], scipy_s[-2])
    assert np.isfinite(scipy_s).all()  # one strongly connected component
    with pytest.raises(ValueError, match="unknown engine"):
        node_times_s(network, sources, targets, engine="networkx")


def test_limit_masks_longer_times_only(network):
    rng = np.random.default_rng(5)
    sources, targets = rng.choice(network.node_count, 8), rng.choice(network.node_count, 300)
    full = node_times_s(network, sources, targets, engine="scipy")
    limit = float(np.median(full))
    for engine in ("scipy", "cch"):
        limited = node_times_s(network, sources, targets, engine=engine, limit_s=limit)
        inside = full <= limit
        assert 0.2 < inside.mean() < 0.8
        np.testing.assert_allclose(limited[inside], full[inside], rtol=0, atol=1e-6)
        assert np.isinf(limited[~inside]).all()


def test_matrix_with_limit_marks_far_pairs_unreachable(network, agencies, units, matrix):
    limited = travel_time_matrix(network, agencies, units, limit_min=20.0)
    near = matrix.minutes <= 20.0
    np.testing.assert_allclose(limited.minutes[near], matrix.minutes[near], atol=TOL_MIN)
    assert np.isinf(limited.minutes[~near]).all() and (~near).any()


def test_snapping_matches_brute_force(network, units):
    snap = snap_points(network, units["rep_lon"], units["rep_lat"])
    node, metres = _brute_snap(network, units["rep_lon"].to_numpy(), units["rep_lat"].to_numpy())
    np.testing.assert_array_equal(snap.node, node)
    np.testing.assert_allclose(snap.access_m, metres, rtol=1e-9)
    np.testing.assert_allclose(snap.access_min, metres / (settings.access_speed_kph / 3.6) / 60.0)
    assert snap.reachable.all()


def test_travel_matrix_subset_and_shape_checks(matrix):
    sub = matrix.subset(agency_ids=matrix.agency_ids[[3, 1]], unit_ids=matrix.unit_ids[[10, 0, 5]])
    np.testing.assert_array_equal(sub.minutes, matrix.minutes[np.ix_([3, 1], [10, 0, 5])])
    with pytest.raises(KeyError, match="not in the matrix"):
        matrix.subset(unit_ids=["no-such-unit"])
    with pytest.raises(ValueError, match="does not match"):
        TravelMatrix(np.zeros((2, 3)), ["a", "b"], ["u1", "u2"])


# ----------------------------------------------------------------------------------------------------------------
# Nearest agencies
# ----------------------------------------------------------------------------------------------------------------
def test_nearest_k_are_the_k_smallest_in_order(matrix):
    table = nearest_agencies(matrix, k=3)
    assert len(table) == 3 * len(matrix.unit_ids)
    for j, unit in enumerate(matrix.unit_ids):
        rows = table[table["unit_id"] == unit]
        assert rows["rank"].tolist() == [1, 2, 3]
        np.testing.assert_allclose(rows["minutes"], np.sort(matrix.minutes[:, j].astype(float))[:3])
        first = matrix.agency_ids.tolist().index(rows["agency_id"].iloc[0])
        assert matrix.minutes[first, j] == matrix.minutes[:, j].min()


def test_nearest_k_respects_active_agencies_and_unreachable_pairs(matrix):
    active = np.zeros(len(matrix.agency_ids), dtype=bool)
    active[[0, 4, 7]] = True
    table = nearest_agencies(matrix, k=5, active=active)
    assert set(table["agency_id"]) <= set(matrix.agency_ids[active])
    assert table.groupby("unit_id").size().max() == 3  # k larger than the active set
    minutes = matrix.minutes.copy()
    minutes[:, 0] = np.inf  # a unit no agency reaches gets no rows, not invented ones
    blocked = TravelMatrix(minutes, matrix.agency_ids, matrix.unit_ids)
    table = nearest_agencies(blocked, k=2)
    assert matrix.unit_ids[0] not in set(table["unit_id"])
    assert len(table) == 2 * (len(matrix.unit_ids) - 1)


def test_nearest_agency_per_node_agrees_with_brute_force(network, agencies):
    minutes, owner = nearest_agency_per_node(network, agencies)
    assert minutes.shape == owner.shape == (network.node_count,)
    snap = snap_points(network, agencies.geometry.x, agencies.geometry.y)
    everything = node_times_s(network, snap.node, np.arange(network.node_count)) / 60.0 + snap.access_min[:, None]
    np.testing.assert_allclose(minutes, everything.min(axis=0), rtol=0, atol=TOL_MIN)
    # The owner's own time is the minimum (ties between agencies may resolve either way).
    np.testing.assert_allclose(everything[owner, np.arange(network.node_count)], minutes, rtol=0, atol=TOL_MIN)
    unique = np.sort(everything, axis=0)[1] - np.sort(everything, axis=0)[0] > 1e-3
    np.testing.assert_array_equal(owner[unique], everything.argmin(axis=0)[unique])


def test_nearest_agency_per_node_honours_active_and_unreachable(network, agencies):
    active = np.zeros(len(agencies), dtype=bool)
    active[[2, 9]] = True
    minutes, owner = nearest_agency_per_node(network, agencies, active=active)
    assert set(np.unique(owner)) == {2, 9}
    snap = snap_points(network, agencies.geometry.x, agencies.geometry.y)
    two = node_times_s(network, snap.node[[2, 9]], np.arange(network.node_count)) / 60.0 + snap.access_min[[2, 9], None]
    np.testing.assert_allclose(minutes, two.min(axis=0), atol=TOL_MIN)
    far = _points([(2.35, 48.85)], ["paris"])  # farther than the access limit from any road: owns nothing
    minutes, owner = nearest_agency_per_node(network, far)
    assert np.isinf(minutes).all() and (owner == -1).all()


# ----------------------------------------------------------------------------------------------------------------
# Routes and isochrones
# ----------------------------------------------------------------------------------------------------------------
def test_route_time_equals_matrix_time(network, agencies, units, matrix):
    a_nodes, u_nodes = matrix.meta["agency_nodes"], matrix.meta["unit_nodes"]
    for j in (0, 17, 42):
        unit = units.iloc[j]
        routes = routes_to_point(network, unit["rep_lon"], unit["rep_lat"], a_nodes)
        road_min = np.array([r["seconds"] for r in routes]) / 60.0
        access = matrix.minutes[:, j] - road_min
        expected_access = snap_points(network, agencies.geometry.x, agencies.geometry.y).access_min + \
            snap_points(network, [unit["rep_lon"]], [unit["rep_lat"]]).access_min[0]
        np.testing.assert_allclose(access, expected_access, atol=TOL_MIN)
        for i, route in enumerate(routes):
            edges = route["edges"]
            if a_nodes[i] == u_nodes[j]:
                assert len(edges) == 0 and route["seconds"] == 0
                continue
            # The edges chain from the agency's node to the unit's node and their times add up to the route's.
            assert network.tail[edges[0]] == a_nodes[i] and network.head[edges[-1]] == u_nodes[j]
            np.testing.assert_array_equal(network.head[edges[:-1]], network.tail[edges[1:]])
            assert network.time_ms[edges].sum() / 1000.0 == pytest.approx(route["seconds"], abs=1e-3)
            assert route["km"] == pytest.approx(network.length_m[edges].sum() / 1000.0, rel=1e-5)
    line = route_line(network, routes[0]["edges"])
    start = shapely.Point(network.lon[a_nodes[0]], network.lat[a_nodes[0]])
    assert line.geom_type == "LineString" and shapely.Point(line.coords[0]).distance(start) < 1e-6


def test_isochrones_are_nested(network, agencies):
    chosen = agencies.iloc[[0, 5]]
    areas = isochrones(network, chosen)
    assert list(areas.columns) == ["agency_id", "minutes", "area_km2", "geometry"]
    assert areas.crs.to_epsg() == 4326
    for agency_id, group in areas.groupby("agency_id"):
        group = group.sort_values("minutes")
        assert group["minutes"].tolist() == [15.0, 30.0, 45.0, 60.0]
        shapes = group.geometry.tolist()
        for inner, outer in zip(shapes, shapes[1:]):
            # H3 cells: the smaller area is a union of cells of the larger one.
            assert inner.difference(outer).area < 1e-12
        assert (np.diff(group["area_km2"]) >= 0).all() and group["area_km2"].iloc[0] > 0.5
        # The 15-minute area holds the road nodes the Dijkstra says are within 15 minutes of the agency.
        snap = snap_points(network, chosen.loc[chosen["agency_id"] == agency_id].geometry.x,
                           chosen.loc[chosen["agency_id"] == agency_id].geometry.y)
        seconds = node_times_s(network, snap.node, np.arange(network.node_count))[0]
        near = np.flatnonzero(seconds / 60.0 + snap.access_min[0] <= 14.0)
        inside = shapely.contains_xy(shapes[0].buffer(1e-9), network.lon[near], network.lat[near])
        assert inside.mean() > 0.98
        far = np.flatnonzero(seconds / 60.0 > 70.0)
        if len(far):
            assert not shapely.contains_xy(shapes[-1], network.lon[far], network.lat[far]).any()


# ----------------------------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------------------------
def test_points_outside_the_network_are_unreachable_not_invented(network, agencies, units):
    extra = units.iloc[:2].copy()
    extra["unit_id"] = ["far-east", "toulouse"]
    extra["rep_lon"], extra["rep_lat"] = [1.95, 1.444], [42.52, 43.604]  # 30 km east of Andorra; Toulouse
    m = travel_time_matrix(network, agencies, pd.concat([units.iloc[:5], extra], ignore_index=True))
    assert np.isfinite(m.minutes[:, :5]).all()
    assert np.isinf(m.minutes[:, 5:]).all()
    assert m.meta["unit_reachable"].tolist() == [True] * 5 + [False, False]
    assert (m.meta["unit_access_m"][5:] > settings.max_access_distance_m).all()
    snap = snap_points(network, [1.95], [42.52], max_access_m=50_000)
    assert snap.reachable[0]  # a wider limit is the user's choice, never the default
    # A point a quarter of the globe away does not even project into the network's UTM zone.
    snap = snap_points(network, [91.0, 1.52], [0.0, 42.5])
    assert snap.reachable.tolist() == [False, True] and np.isinf(snap.access_m[0])
    far = _points([(91.0, 0.0), (1.52, 42.5)], ["far", "near"])
    m = travel_time_matrix(network, far, units.iloc[:3])
    assert np.isinf(m.minutes[0]).all() and np.isfinite(m.minutes[1]).all()


def test_agency_with_swapped_lat_lon_is_unreachable_and_reported(network, agencies, units):
    bad = agencies.iloc[:3].copy()
    lon, lat = bad.geometry.x.to_numpy(), bad.geometry.y.to_numpy()
    bad = bad.set_geometry(gpd.points_from_xy(np.r_[lon[:2], lat[2]], np.r_[lat[:2], lon[2]]), crs="EPSG:4326")
    m = travel_time_matrix(network, bad, units)
    assert np.isfinite(m.minutes[:2]).all()
    assert np.isinf(m.minutes[2]).all()
    assert m.meta["agency_reachable"].tolist() == [True, True, False]
    assert m.meta["agency_access_m"][2] > 1_000_000  # reported: the point lies in the Indian Ocean
    listed = nearest_agencies(m, k=3)
    assert m.agency_ids[2] not in set(listed["agency_id"])
    with pytest.raises(InputError, match="longitude/latitude") as info:
        snap_points(network, [1.52, 42.5], [42.5, 142.0])  # latitude 142 cannot be
    assert [p.row for p in info.value.problems] == [2]


def test_missing_coordinates_are_refused_with_their_rows(network, units):
    frame = _points([(1.52, 42.50), (1.53, 42.51), (1.54, 42.52)], ["a", "b", "c"])
    frame.loc[1, "geometry"] = None
    with pytest.raises(InputError, match="WGS84") as info:
        travel_time_matrix(network, frame, units)
    assert [p.row for p in info.value.problems] == [2]
    with pytest.raises(InputError) as info:
        snap_points(network, [1.52, np.nan, 1.5], [42.5, 42.5, np.nan])
    assert [p.row for p in info.value.problems] == [2, 3]


def test_projected_points_are_refused(network, agencies, units):
    projected = agencies.to_crs("EPSG:32631")
    with pytest.raises(InputError, match="EPSG:32631") as info:
        travel_time_matrix(network, projected, units)
    assert info.value.problems[0].code == "crs"
    polygons = units.drop(columns=["rep_lon", "rep_lat"]).to_crs("EPSG:3857")
    with pytest.raises(InputError, match="expected WGS84"):
        travel_time_matrix(network, agencies, polygons)
    with pytest.raises(InputError, match="expected WGS84"):
        nearest_agency_per_node(network, projected)
    with pytest.raises(InputError, match="expected WGS84"):
        isochrones(network, projected)
    # Metres with no CRS at all (a CSV of x/y read without one) cannot pass as degrees either.
    unlabelled = projected.set_crs(None, allow_override=True)
    with pytest.raises(InputError, match="longitude/latitude"):
        travel_time_matrix(network, unlabelled, units)
