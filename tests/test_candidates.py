"""Candidate sources, exclusion rules and the Heilongjiang presets."""

from __future__ import annotations


import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from geo import settings
from geo.errors import InputError, PlanningError
from geo.traveltime import TravelMatrix
from planning import candidates as cand

RAW = settings.demo_region_dir / "raw"  # the repo's copy of the raw extract
HEALTH = RAW / "andorra_health.geojson"

# a 2 km × 2 km square near Andorra la Vella
SQUARE = gpd.GeoDataFrame({"name": ["T"]}, geometry=[box(1.50, 42.49, 1.5245, 42.508)], crs="EPSG:4326")


@pytest.mark.skipif(not HEALTH.exists(), reason="raw health facilities not available")
def test_health_facilities_keep_care_sites_only():
    raw = gpd.read_file(HEALTH)
    out = cand.candidates_from_health_facilities(HEALTH)
    care = raw["amenity"].isin(["hospital", "clinic", "doctors"]) | raw["healthcare"].isin(["hospital", "clinic"])
    # pharmacies, dentists and audiologists never become candidates; nearby duplicates merge
    assert 0 < len(out) <= care.sum()
    assert not out["name"].str.contains("Farm", case=False).any()
    assert out["near_health_centre"].all()
    assert out["candidate_id"].is_unique
    assert "Hospital de Nostra Senyora de Meritxell" in set(out["name"])


def test_health_facilities_merge_duplicates_keep_name():
    frame = gpd.GeoDataFrame(
        {"amenity": ["hospital", "hospital", "clinic", "pharmacy"], "name": [None, "Big Hospital", "CAP", "Ph"],
         "osm_id": [1, 2, 3, 4]},
        geometry=[Point(1.5, 42.5), Point(1.5002, 42.5), Point(1.52, 42.5), Point(1.53, 42.5)], crs="EPSG:4326")
    out = cand.candidates_from_health_facilities(frame, merge_within_m=50)
    assert sorted(out["name"]) == ["Big Hospital", "CAP"]


def test_points_validated_and_region_checked():
    out = cand.candidates_from_points([(1.51, 42.50), (1.52, 42.505)], region=SQUARE)
    assert out["candidate_id"].tolist() == ["click-1", "click-2"]
    with pytest.raises(InputError) as err:
        cand.candidates_from_points([(1.51, 42.50), (42.50, 1.51), (1.9, 42.5)], region=SQUARE)
    assert [p.row for p in err.value.problems] == [2, 3]
    with pytest.raises(InputError, match="longitude/latitude"):
        cand.candidates_from_points([(1.51, 95.0)])


def test_underserved_units_become_candidates():
    units = gpd.GeoDataFrame({"unit_id": ["a", "b", "c"], "name": ["A", "B", "C"], "township": ["x", "y", "y"],
                              "rep_lon": [1.50, 1.51, 1.52], "rep_lat": [42.5, 42.5, 42.5]},
                             geometry=[Point(1.5, 42.5).buffer(0.001)] * 3, crs="EPSG:4326")
    out = cand.candidates_from_underserved_units(units, pd.Series([40.0, 10.0, np.inf], index=["a", "b", "c"]),
                                                 threshold_min=30)
    assert out["candidate_id"].tolist() == ["unit-a", "unit-c"]
    assert out.geometry.x.round(2).tolist() == [1.50, 1.52]
    with pytest.raises(PlanningError, match="already within"):
        cand.candidates_from_underserved_units(units, [1.0, 2.0, 3.0], threshold_min=30)


def test_grid_centroids_inside_region():
    out = cand.candidates_from_grid(SQUARE, cell_size_m=500)
    assert 12 <= len(out) <= 20  # a 2 km square holds 16 cells of 500 m
    assert SQUARE.geometry.iloc[0].buffer(1e-9).contains(out.union_all())
    assert (out["source"] == "grid").all()


def test_read_candidates_csv_reports_every_bad_row():
    text = "名称,经度,纬度,成本\nA,1.51,42.50,2\nB,,42.50,1\nC,1.52,abc,1\nD,1.515,42.501,-3\n"
    with pytest.raises(InputError) as err:
        cand.read_candidates(text.encode("gb18030"), filename="sites.csv")
    assert sorted({p.row for p in err.value.problems}) == [2, 3, 4]
    good = cand.read_candidates("name,lon,lat,setup_cost\nA,1.51,42.50,2\nB,1.52,42.50,\n".encode(),
                                filename="ok.csv")
    assert good["setup_cost"].tolist() == [2.0, 1.0]
    assert good["name"].tolist() == ["A", "B"]


def test_read_candidates_geojson():
    frame = gpd.GeoDataFrame({"name": ["x", "y"]}, geometry=[Point(1.51, 42.5), Point(1.52, 42.5)], crs="EPSG:4326")
    out = cand.read_candidates(frame.to_json().encode(), filename="c.geojson", region=SQUARE)
    assert len(out) == 2 and (out["source"] == "upload").all()


def test_exclusion_near_agencies():
    sites = cand.candidates_from_points([(1.500, 42.5), (1.510, 42.5), (1.530, 42.5)])
    agencies = gpd.GeoDataFrame({"agency_id": ["A1", "A2"], "status": ["designated", "terminated"]},
                                geometry=[Point(1.5005, 42.5), Point(1.5101, 42.5)], crs="EPSG:4326")
    kept, excluded = cand.exclude_near_agencies(sites, agencies, min_distance_m=200)
    # 1.500 is 41 m from A1; the terminated A2 does not count
    assert kept["candidate_id"].tolist() == ["click-2", "click-3"]
    assert excluded["nearest_agency_id"].tolist() == ["A1"]
    assert excluded["distance_m"].iloc[0] == pytest.approx(41, abs=2)
    with pytest.raises(PlanningError, match="no candidates left after exclusions"):
        cand.exclude_near_agencies(sites.iloc[:1], agencies, min_distance_m=200)


def test_exclusion_off_network():
    sites = cand.candidates_from_points([(1.50, 42.5), (1.51, 42.5)])
    matrix = TravelMatrix(np.array([[5.0, np.inf], [np.inf, np.inf]]), ["click-1", "click-2"], ["u0", "u1"])
    kept, excluded, sub = cand.exclude_off_network(sites, matrix)
    assert kept["candidate_id"].tolist() == ["click-1"]
    assert "outside the road network" in excluded["reason"].iloc[0]
    assert sub.minutes.shape == (1, 2)


def test_rural_preset_lowers_setup_cost_near_health_centres():
    sites = cand.candidates_from_points([(1.500, 42.5), (1.530, 42.5)])
    centres = gpd.GeoDataFrame(geometry=[Point(1.505, 42.5)], crs="EPSG:4326")
    out = cand.prefer_near_health_centres(sites, centres, within_m=1000, preference=0.4)
    assert out["near_health_centre"].tolist() == [True, False]
    assert out["setup_cost"].tolist() == pytest.approx([0.6, 1.0])


def test_rural_preset_decides_an_lscp_tie():
    from planning.siting import LSCP

    sites = cand.candidates_from_points([(1.500, 42.5), (1.530, 42.5)])
    centres = gpd.GeoDataFrame(geometry=[Point(1.5301, 42.5)], crs="EPSG:4326")
    preferred = cand.prefer_near_health_centres(sites, centres, within_m=500, preference=0.3)
    both_cover = np.array([[5.0, 6.0], [6.0, 5.0]])
    model = LSCP(both_cover, threshold_min=10, setup_cost=preferred["setup_cost"],
                 candidate_ids=preferred["candidate_id"]).solve()
    assert model.selected_ids == ["click-2"]


def test_urban_preset_derives_sites_per_township():
    units = pd.DataFrame({"township": ["A", "A", "B", "C"], "setting": ["urban", "urban", "urban", "rural"],
                          "population": [12000.0, 9000.0, 4000.0, 50000.0]})
    agencies = pd.DataFrame({"township": ["A", "B", "B"], "status": ["designated", "designated", "suspended"]})
    table = cand.sites_needed_by_township(units, agencies, residents_per_site=10000)
    row = table.set_index("township")
    assert row.loc["A", "target_sites"] == 3 and row.loc["A", "shortfall"] == 2
    assert row.loc["B", "existing_sites"] == 1 and row.loc["B", "shortfall"] == 0
    assert "C" not in row.index  # rural units follow the rural preset
    with pytest.raises(InputError):
        cand.sites_needed_by_township(units, agencies, residents_per_site=0)


def test_combine_rejects_repeated_ids():
    a = cand.candidates_from_points([(1.50, 42.5)])
    with pytest.raises(InputError, match="repeat"):
        cand.combine_candidates(a, a)
    both = cand.combine_candidates(a, cand.candidates_from_points([(1.51, 42.5)], source="upload"))
    assert both["candidate_id"].tolist() == ["click-1", "upload-1"]
