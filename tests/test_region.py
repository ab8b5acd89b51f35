"""The embedded demo region and a user region loaded through the same path."""

from __future__ import annotations

import shutil

import geopandas as gpd
import numpy as np
import pytest

from geo import settings
from geo.errors import InputError
from geo.network import RoadNetwork
from geo.region import load_demo_region, load_region
from geo.schema import CARE_TYPES, SETTINGS, UNIT_COLUMNS
from geo.traveltime import snap_points


@pytest.fixture(scope="module")
def region():
    return load_demo_region()


def test_demo_region_units_population_and_demand(region):
    units = region.units
    assert len(units) == 70
    assert units["unit_id"].is_unique and units["unit_id"].map(type).eq(str).all()
    assert set(UNIT_COLUMNS) <= set(units.columns)
    assert units["population"].sum() == pytest.approx(85_101, abs=1)
    assert (units["population"] > 0).all()
    np.testing.assert_allclose(units["demand"], units["population"] * 0.0078, rtol=1e-9)
    assert settings.eligible_rate == 0.0078
    assert set(units["setting"]) == set(SETTINGS)
    assert units.crs.to_epsg() == 4326 and units.geometry.is_valid.all()


def test_demo_population_is_conserved_per_parish(region):
    # The dasymetric estimate spreads each parish's official total; no parish may gain or lose residents.
    assert len(region.townships) == 7
    assert region.townships["residents_2023"].sum() == 85_101
    by_unit = region.units.groupby("township")["population"].sum()
    official = region.townships.set_index("name")["residents_2023"]
    np.testing.assert_allclose(by_unit.reindex(official.index), official, atol=1e-6)
    assert region.population["population"].sum() == pytest.approx(85_101, abs=1)


def test_demo_agencies(region):
    agencies = region.agencies
    assert 15 <= len(agencies) <= 25
    assert agencies["agency_id"].is_unique
    assert set(agencies["care_type"]) == set(CARE_TYPES)
    assert agencies["demo"].dtype == bool and agencies["demo"].all()  # illustrative figures are flagged
    assert len(region.active_agencies()) > 0
    assert "OpenStreetMap" in region.meta["attribution"] and region.meta["demo"] is True


def test_every_demo_unit_reaches_an_agency(region):
    matrix = region.travel_matrix()
    assert matrix.minutes.shape == (len(region.agencies), 70)
    assert np.isfinite(matrix.minutes).any(axis=0).all()
    assert np.isfinite(matrix.minutes).all()  # every agency and unit is within the access distance
    assert region.travel_matrix() is matrix  # cached, so pages do not recompute it
    subset = region.agencies.iloc[:4]
    np.testing.assert_array_equal(region.travel_matrix(agencies=subset).minutes, matrix.minutes[:4])
    assert region.with_agencies(subset).travel_matrix() is region.travel_matrix(agencies=subset)


def test_demo_representative_points_are_within_the_access_distance(region):
    snap = snap_points(region.network, region.units["rep_lon"], region.units["rep_lat"])
    assert snap.reachable.all()
    assert (snap.access_m <= settings.max_access_distance_m).all()
    # Representative points lie on or near roads: the median access leg is short.
    assert np.median(snap.access_m) < 200


def test_demo_network_is_the_committed_one(region):
    committed = RoadNetwork.load(settings.demo_region_dir / "roads.npz")
    assert region.network.node_count == committed.node_count == 2854
    assert region.network.fingerprint() == committed.fingerprint()
    boundary = region.boundary
    assert boundary.contains(gpd.points_from_xy(region.units["rep_lon"], region.units["rep_lat"])).mean() > 0.95


def test_incomplete_demo_folder_names_the_missing_files(tmp_path):
    shutil.copy(settings.demo_region_dir / "units.geojson", tmp_path / "units.geojson")
    with pytest.raises(InputError, match="incomplete") as info:
        load_demo_region(tmp_path)
    missing = " ".join(str(p) for p in info.value.problems)
    assert "roads.npz" in missing and "agencies.geojson" in missing and "units.geojson" not in missing


def _town_osm(path):
    """A 5 × 5 block town of two-way residential streets (150 m blocks) with a primary road through it."""
    nodes, ways = [], []
    step = 0.0018
    for r in range(6):
        for c in range(6):
            nodes.append(f'<node id="{r * 6 + c + 1}" version="1" lat="{42.50 + r * step * 0.74:.6f}" '
                         f'lon="{1.50 + c * step:.6f}"/>')
    wid = 100
    for r in range(6):
        refs = "".join(f'<nd ref="{r * 6 + c + 1}"/>' for c in range(6))
        kind = "primary" if r == 2 else "residential"
        ways.append(f'<way id="{wid}" version="1">{refs}<tag k="highway" v="{kind}"/></way>')
        wid += 1
    for c in range(6):
        refs = "".join(f'<nd ref="{r * 6 + c + 1}"/>' for r in range(6))
        ways.append(f'<way id="{wid}" version="1">{refs}<tag k="highway" v="residential"/></way>')
        wid += 1
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n' + "\n".join(nodes + ways)
                    + "\n</osm>\n", encoding="utf-8")
    return path


def test_user_region_loads_through_the_same_path(tmp_path):
    osm = _town_osm(tmp_path / "town.osm")
    agencies = gpd.GeoDataFrame(
        {"agency_id": ["home-1", "far-1"], "name": ["Home care", "Too far"], "care_type": ["home", "home"],
         "status": ["designated", "designated"]},
        geometry=gpd.points_from_xy([1.5045, 1.70], [42.5033, 42.60]), crs="EPSG:4326",
    )
    region = load_region(osm=osm, agencies=agencies, name="test town")
    # 36 street corners less the 4 town corners, which are bends (simplified away as OSMnx does).
    assert region.network.node_count == 32 and region.network.meta["source"] == "town.osm"
    assert region.meta["demo"] is False and region.name == "test town"
    units = region.units  # no units given: an H3 grid over the network's extent
    assert len(units) > 5 and {"unit_id", "rep_lon", "rep_lat", "population", "demand"} <= set(units.columns)
    matrix = region.travel_matrix()
    assert matrix.minutes.shape == (2, len(units))
    assert np.isinf(matrix.minutes[1]).all()  # the agency 20 km away is unreachable, not given a time
    snap = snap_points(region.network, units["rep_lon"], units["rep_lat"])
    np.testing.assert_array_equal(np.isfinite(matrix.minutes[0]), snap.reachable)
    assert snap.reachable.any()
    # Across town: at most ~1.5 km of 25–60 km/h streets plus two access legs under 1.5 km at 10 km/h.
    assert np.nanmax(np.where(snap.reachable, matrix.minutes[0], np.nan)) < 25
