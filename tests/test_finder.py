"""The residents' finder against an independent networkx shortest-path computation on the demo region."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from geo import settings
from geo.errors import InputError
from geo.finder import find_agencies
from geo.region import load_demo_region


@pytest.fixture(scope="module")
def region():
    return load_demo_region()


@pytest.fixture(scope="module")
def reverse_graph(region):
    net = region.network
    graph = nx.DiGraph()
    # Edges reversed, so one Dijkstra from the place gives every node's time *to* the place.
    for t, h, ms, length in zip(net.tail, net.head, net.time_ms, net.length_m):
        graph.add_edge(int(h), int(t), seconds=float(ms) / 1000.0, length=float(length))
    return graph


def _haversine_m(lon1, lat1, lon2, lat2):
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


def _snap(net, lon, lat):
    """Nearest node by brute-force great-circle distance (independent of the engine's projected KD-tree)."""
    d = _haversine_m(net.lon, net.lat, lon, lat)
    i = int(np.argmin(d))
    return i, float(d[i])


def _expected(region, graph, lon, lat):
    net = region.network
    speed = settings.access_speed_kph / 3.6
    node, access_m = _snap(net, lon, lat)
    seconds = nx.single_source_dijkstra_path_length(graph, node, weight="seconds")
    out = {}
    for row in region.agencies.itertuples():
        a_node, a_access = _snap(net, row.geometry.x, row.geometry.y)
        if a_node in seconds:
            out[row.agency_id] = (a_access / speed + seconds[a_node] + access_m / speed) / 60.0
    return out, node


@pytest.mark.parametrize("unit_index", [0, 4, 17, 33, 51, 69])
def test_ranking_matches_networkx(region, reverse_graph, unit_index):
    unit = region.units.iloc[unit_index]
    result = find_agencies(region, lon=unit.rep_lon, lat=unit.rep_lat, k=5)
    expected, _ = _expected(region, reverse_graph, unit.rep_lon, unit.rep_lat)
    designated = set(region.agencies.loc[region.agencies["status"] == "designated", "agency_id"])
    ranked = sorted((m, a) for a, m in expected.items() if a in designated)[:5]

    offered = result[result["offered"]]
    assert list(offered["rank"]) == [1, 2, 3, 4, 5]
    assert np.all(np.diff(offered["minutes"].to_numpy()) >= 0)
    # Same agencies in the same order (no near-ties on these units), same minutes to well under a second.
    assert list(offered["agency_id"]) == [a for _, a in ranked]
    np.testing.assert_allclose(offered["minutes"].to_numpy(), [m for m, _ in ranked], atol=2e-3)


def test_route_geometry_and_km_follow_the_fastest_path(region, reverse_graph):
    net = region.network
    unit = region.units.iloc[4]
    result = find_agencies(region, lon=unit.rep_lon, lat=unit.rep_lat, k=3)
    place_node, _ = _snap(net, unit.rep_lon, unit.rep_lat)
    for row in result[result["offered"]].itertuples():
        a_node, _ = _snap(net, row.agency_lon, row.agency_lat)
        path = nx.dijkstra_path(reverse_graph, place_node, a_node, weight="seconds")
        km = sum(reverse_graph[u][v]["length"] for u, v in zip(path[:-1], path[1:])) / 1000.0
        assert row.road_km == pytest.approx(km, rel=1e-6)
        coords = np.asarray(row.geometry.coords)
        assert coords[0] == pytest.approx([net.lon[a_node], net.lat[a_node]], abs=1e-7)
        assert coords[-1] == pytest.approx([net.lon[place_node], net.lat[place_node]], abs=1e-7)


def test_suspended_agency_is_not_offered_and_says_why(region):
    # From Canillo the suspended Encamp primary-care centre is by far the closest (about 6 minutes).
    unit = region.units[region.units["name"] == "Canillo"].iloc[0]
    result = find_agencies(region, lon=unit.rep_lon, lat=unit.rep_lat, k=5)
    suspended = result[result["status"] == "suspended"]
    assert len(suspended) == 1
    row = suspended.iloc[0]
    assert not row["offered"] and row["reason_code"] == "suspended" and "no new" in row["reason"]
    assert row["minutes"] < result.loc[result["offered"], "minutes"].min()
    assert result.loc[result["offered"], "status"].eq("designated").all()
    assert result["rank"].isna().sum() == 1


def test_filters_by_care_type_and_service_mode(region):
    unit = region.units.iloc[0]
    hospitals = find_agencies(region, lon=unit.rep_lon, lat=unit.rep_lat, k=10, care_types=["hospital"])
    assert set(hospitals["care_type"]) == {"hospital"}
    # 8 hospital agencies in the demo, all designated.
    assert len(hospitals) == 8 and hospitals["offered"].all()
    residential = find_agencies(region, lon=unit.rep_lon, lat=unit.rep_lat, service_modes=["residential"])
    assert set(residential["care_type"]) == {"institution"} and len(residential) == 3


def test_place_far_from_any_road_gets_a_message_not_a_time(region):
    unit = region.units.iloc[0]
    with pytest.raises(InputError) as info:
        find_agencies(region, lon=unit.rep_lon + 0.05, lat=unit.rep_lat + 0.2, k=5)
    assert info.value.problems[0].code == "no_road"
    assert "no road within 1,500 m" in str(info.value)
    with pytest.raises(InputError, match="no road within 1 m"):
        find_agencies(region, lon=unit.rep_lon + 0.001, lat=unit.rep_lat, max_access_m=1)


def test_bad_arguments_are_all_reported(region):
    with pytest.raises(InputError) as info:
        find_agencies(region, lon=500, lat=42.5, k=0, care_types=["clinic"], service_modes=["spa"])
    codes = {p.code for p in info.value.problems}
    assert codes == {"coordinates", "k", "care_type", "service_mode"}


def test_terminated_agencies_are_never_listed(region):
    agencies = region.agencies.copy()
    agencies.loc[agencies.index[0], "status"] = "terminated"
    unit = region.units.iloc[0]
    result = find_agencies(network=region.network, agencies=agencies, lon=unit.rep_lon, lat=unit.rep_lat, k=20)
    assert agencies["agency_id"].iloc[0] not in set(result["agency_id"])
    assert len(result) == len(agencies) - 1
