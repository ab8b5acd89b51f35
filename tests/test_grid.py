"""Regular grids: covering, the cell limit, population conservation and road-side representative points."""

from __future__ import annotations


import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import MultiPoint, Point, box

from geo import grid, settings
from geo.errors import InputError
from geo.schema import UNIT_COLUMNS

ANDORRA = settings.demo_region_dir / "raw"  # the repo's copy of the raw extract


@pytest.fixture(scope="module")
def parishes() -> gpd.GeoDataFrame:
    frame = gpd.read_file(ANDORRA / "andorra_admin_boundaries.geojson")
    census = pd.read_csv(ANDORRA / "parish_population_2023.csv")
    return frame.merge(census, left_on="name", right_on="parish", validate="1:1")


def _laea_frame(geoms, crs_of):
    return gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs(grid.local_equal_area_crs(crs_of))


def test_h3_grid_covers_the_boundary_completely(parishes):
    boundary = parishes[parishes["name"] == "Ordino"]
    cells = grid.build_grid(boundary, resolution=9, townships=parishes)
    assert set(h3.get_resolution(c) for c in cells["unit_id"]) == {9}
    assert all(h3.is_valid_cell(c) for c in cells["unit_id"])
    outline = shapely.union_all(boundary.geometry.values)
    union = shapely.union_all(cells.geometry.values)
    uncovered = _laea_frame([outline.difference(union)], outline).area.iloc[0]
    assert uncovered < 1.0  # m², i.e. nothing of the parish is left out
    # mostly Ordino; border cells may sit in a neighbour parish but every cell gets a township
    assert (cells["township"] == "Ordino").mean() > 0.9
    assert cells["township"].ne("").all()
    assert cells["area_km2"].between(0.09, 0.12).all()  # res-9 hexagons are ~0.105 km²


def test_square_grid_cells_have_the_requested_size(parishes):
    cells = grid.build_grid(parishes, kind="square", cell_size_m=1000)
    assert np.allclose(cells["area_km2"], 1.0, atol=1e-4)
    total = _laea_frame([shapely.union_all(parishes.geometry.values)], parishes.geometry.union_all()).area.iloc[0] / 1e6
    assert total == pytest.approx(468.0, rel=0.01)
    assert total < len(cells) < total * 1.4  # covering: interior cells plus one border ring
    assert cells["unit_id"].is_unique
    assert grid.count_grid_cells(parishes, kind="square", cell_size_m=1000) == len(cells)


def test_count_matches_build_for_h3(parishes):
    boundary = parishes[parishes["name"] == "Canillo"]
    assert grid.count_grid_cells(boundary, resolution=8) == len(grid.build_grid(boundary, resolution=8))


def test_too_many_cells_are_refused_with_the_count(parishes, monkeypatch):
    monkeypatch.setattr(settings, "max_grid_cells", 700)
    n = grid.count_grid_cells(parishes, resolution=8)
    assert n == 752
    with pytest.raises(InputError, match=r"make 752 cells.*limit of 700"):
        grid.build_grid(parishes, resolution=8)
    monkeypatch.setattr(settings, "max_grid_cells", 1_000_000)
    # far over the limit: refused from the area estimate, without enumerating 10⁷ cells
    with pytest.raises(InputError, match=r"about 10,[0-9]{3},[0-9]{3} cells") as err:
        grid.build_grid(parishes, resolution=13)
    assert err.value.problems[0].code == "too_many_cells"


def test_invalid_requests_list_every_problem(parishes):
    with pytest.raises(InputError, match="resolution must be an integer"):
        grid.build_grid(parishes, resolution=17)
    with pytest.raises(InputError, match="positive number of metres"):
        grid.build_grid(parishes, kind="square", cell_size_m=-5)


def test_area_weighted_population_conserves_the_census_total(parishes):
    cells = grid.build_grid(parishes, resolution=8, townships=parishes)
    pop = grid.interpolate_population(cells, parishes, column="residents_2023")
    assert pop.sum() == pytest.approx(85_101, rel=1e-3)
    assert pop.min() >= 0
    # each parish's people stay (mostly) inside it: cells assigned to Andorra la Vella carry about its total
    by_parish = pop.groupby(cells["township"]).sum()
    assert by_parish["Andorra la Vella"] == pytest.approx(24_042, rel=0.15)


def test_area_weighting_splits_by_shared_area():
    source = gpd.GeoDataFrame({"population": [1000.0]}, geometry=[box(0, 0, 0.02, 0.01)], crs="EPSG:4326")
    # left cell covers 3/4 of the source, right cell the remaining 1/4 and sticks out beyond it
    units = gpd.GeoDataFrame(geometry=[box(0, 0, 0.015, 0.01), box(0.015, 0, 0.03, 0.01)], crs="EPSG:4326")
    pop = grid.interpolate_population(units, source)
    assert pop.to_list() == pytest.approx([750.0, 250.0], rel=1e-3)


def test_building_weighted_population_follows_the_buildings():
    source = gpd.GeoDataFrame(
        {"population": [800.0, 300.0]},
        geometry=[box(0, 0, 0.02, 0.01), box(0.02, 0, 0.04, 0.01)], crs="EPSG:4326",
    )
    units = gpd.GeoDataFrame(
        {"unit_id": ["a", "b", "c", "d"]},
        geometry=[box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01), box(0.02, 0, 0.03, 0.01), box(0.03, 0, 0.04, 0.01)],
        crs="EPSG:4326",
    )
    # three houses in a, one in b; none in the second source polygon, which falls back to area weighting
    buildings = gpd.GeoDataFrame(
        geometry=[Point(0.002, 0.005), Point(0.004, 0.005), Point(0.006, 0.005), Point(0.015, 0.005)], crs="EPSG:4326"
    )
    pop = grid.interpolate_population(units, source, method="building", buildings=buildings)
    assert pop.to_list() == pytest.approx([600.0, 200.0, 150.0, 150.0], rel=1e-6)
    assert pop.sum() == pytest.approx(1100.0, rel=1e-9)


def test_building_weighted_population_conserves_total_on_the_demo_region(parishes):
    cells = grid.build_grid(parishes, resolution=8)
    rng = np.random.default_rng(7)
    # footprints scattered through the valleys of three parishes only; the others fall back to area
    pts = []
    for name in ("Andorra la Vella", "Escaldes-Engordany", "Encamp"):
        poly = parishes.loc[parishes["name"] == name].geometry.iloc[0]
        minx, miny, maxx, maxy = poly.bounds
        xy = rng.uniform([minx, miny], [maxx, maxy], size=(400, 2))
        pts.extend(p for p in shapely.points(xy) if poly.contains(p))
    footprints = gpd.GeoDataFrame(geometry=[p.buffer(0.0002) for p in pts], crs="EPSG:4326")
    pop = grid.interpolate_population(cells, parishes, column="residents_2023", method="building", buildings=footprints)
    assert abs(pop.sum() - 85_101) / 85_101 < 1e-3
    # cells with no building in a building-weighted parish get no one
    assert (pop == 0).sum() > 0


def test_population_that_would_be_lost_is_refused():
    source = gpd.GeoDataFrame({"population": [10.0, 20.0]}, geometry=[box(0, 0, 1, 1), box(5, 5, 6, 6)], crs="EPSG:4326")
    units = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    with pytest.raises(InputError, match="population would be lost") as err:
        grid.interpolate_population(units, source)
    assert err.value.problems[0].row == 2


def test_population_source_problems_are_collected():
    source = gpd.GeoDataFrame({"population": ["12", "x", -3]}, geometry=[box(0, 0, 1, 1)] * 3, crs="EPSG:4326")
    units = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    with pytest.raises(InputError) as err:
        grid.interpolate_population(units, source)
    assert [p.row for p in err.value.problems] == [2, 3]


def test_representative_point_is_the_road_node_nearest_the_cell_centre():
    cells = gpd.GeoDataFrame(
        {"unit_id": ["roads", "empty"]},
        geometry=[box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01)], crs="EPSG:4326",
    )
    nodes = np.array([[0.001, 0.001], [0.006, 0.0055], [0.0099, 0.009], [0.5, 0.5]])
    placed = grid.place_representative_points(cells, road_nodes_xy=nodes)
    assert placed.loc[0, ["rep_lon", "rep_lat"]].to_list() == pytest.approx([0.006, 0.0055])
    assert placed.loc[0, "rep_source"] == "road_node"
    # No node inside cell 1: its point is the cell's point nearest to a road, still inside the cell and
    # nearer the road than the cell's own interior point.
    assert placed.loc[1, "rep_source"] == "polygon_edge_near_road"
    rep = Point(placed.loc[1, "rep_lon"], placed.loc[1, "rep_lat"])
    assert cells.geometry.iloc[1].contains(rep)
    road = MultiPoint([tuple(xy) for xy in nodes])
    assert rep.distance(road) < cells.geometry.iloc[1].representative_point().distance(road)


def test_grid_units_follow_the_units_contract(parishes):
    nodes = np.array([[1.52, 42.51], [1.60, 42.55]])
    units = grid.build_grid_units(parishes, resolution=8, townships=parishes, population_source=parishes,
                                  population_column="residents_2023", road_nodes_xy=nodes,
                                  urban_min_per_km2=700.0)
    assert list(units.columns[: len(UNIT_COLUMNS)]) == list(UNIT_COLUMNS)
    assert units["demand"].sum() == pytest.approx(85_101 * settings.eligible_rate, rel=1e-3)
    assert set(units["setting"]) <= {"urban", "rural"}
    urban = units.loc[units["setting"] == "urban", "township"]
    assert len(urban) > 0 and set(urban) == {"Andorra la Vella"}  # the only parish above 700 residents/km²
    assert (units["rep_source"] == "road_node").sum() == 2
    inside = shapely.contains_xy(units.geometry.values, units["rep_lon"].to_numpy(), units["rep_lat"].to_numpy())
    assert inside.all()


def test_point_population_layer_is_aggregated_whole():
    units = gpd.GeoDataFrame(geometry=[box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01)], crs="EPSG:4326")
    points = gpd.GeoDataFrame({"population": [5.0, 7.0, 11.0]},
                              geometry=[Point(0.005, 0.005), Point(0.015, 0.002), Point(0.03, 0.005)], crs="EPSG:4326")
    pop = grid.interpolate_population(units, points)
    assert pop.to_list() == pytest.approx([5.0, 18.0])  # the stray point joins the nearest cell
