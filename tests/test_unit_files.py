"""Reading planners' unit files: Chinese headers, 12-digit codes as text, Thiessen polygons, missing population."""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo import settings
from geo.errors import InputError
from geo.grid import local_equal_area_crs
from geo.schema import UNIT_COLUMNS
from geo.unit_files import match_columns, read_unit_file

YUYAO = Path(__file__).resolve().parent / "fixtures" / "yuyao"  # NBS 2023 village list (real data)


@pytest.fixture(scope="module")
def yuyao_boundary() -> gpd.GeoDataFrame:
    return gpd.read_file(YUYAO / "yuyao_boundary_wgs84.geojson")


@pytest.fixture(scope="module")
def villages() -> pd.DataFrame:
    return pd.read_csv(YUYAO / "yuyao_villages_nbs2023.csv", dtype=str)


def _points_inside(boundary: gpd.GeoDataFrame, n: int, seed: int = 0) -> np.ndarray:
    poly = boundary.geometry.union_all()
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = poly.bounds
    out = []
    while len(out) < n:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if poly.contains(shapely.Point(x, y)):
            out.append((x, y))
    return np.array(out)


def _chinese_csv(villages: pd.DataFrame, boundary, n: int = 40) -> pd.DataFrame:
    sample = villages.iloc[:: max(1, len(villages) // n)].head(n).reset_index(drop=True)
    xy = _points_inside(boundary, len(sample))
    return pd.DataFrame({
        "统计用区划代码": sample["code"], "村名": sample["name"], "乡镇（街道）": sample["township_name"],
        "常住人口": (np.arange(len(sample)) * 37 % 900 + 300).astype(str), "经度": xy[:, 0].round(6),
        "纬度": xy[:, 1].round(6),
    })


def test_headers_are_matched_by_meaning():
    got = match_columns(["统计用区划代码", "行政区划代码", "名称", "乡镇", "常住人口", "经度", "纬度"])
    assert got == {"unit_id": "统计用区划代码", "name": "名称", "township": "乡镇", "population": "常住人口",
                   "rep_lon": "经度", "rep_lat": "纬度"}
    assert match_columns(["code", "name", "township_name", "kind"])["setting"] == "kind"


def test_points_csv_with_chinese_headers_gets_thiessen_polygons(villages, yuyao_boundary):
    table = _chinese_csv(villages, yuyao_boundary)
    data = table.to_csv(index=False).encode("utf-8-sig")
    units, report = read_unit_file(io.BytesIO(data), filename="villages.csv", boundary=yuyao_boundary)
    assert list(units.columns[: len(UNIT_COLUMNS)]) == list(UNIT_COLUMNS)
    assert units["unit_id"].tolist() == table["统计用区划代码"].tolist()
    assert units["unit_id"].str.fullmatch(r"\d{12}").all()
    assert units["unit_id"].iloc[0] == "330281001001"
    assert units["name"].iloc[0] == "花园社区" and units["setting"].iloc[0] == "urban"
    assert (units.loc[units["name"].str.endswith("村"), "setting"] == "rural").all()
    assert units["population"].sum() == pytest.approx(pd.to_numeric(table["常住人口"]).sum())
    assert units["demand"].to_numpy() == pytest.approx(units["population"].to_numpy() * settings.eligible_rate)
    # each Thiessen polygon holds its own village and the polygons tile the county
    pts = shapely.points(units[["rep_lon", "rep_lat"]].to_numpy())
    assert shapely.contains(units.geometry.values, pts).all()
    laea = local_equal_area_crs(yuyao_boundary)
    tiles = units.to_crs(laea).area.sum()
    county = yuyao_boundary.to_crs(laea).area.sum()
    assert tiles == pytest.approx(county, rel=1e-6)
    assert not report.problems


def test_gbk_csv_reads_the_same(villages, yuyao_boundary):
    table = _chinese_csv(villages, yuyao_boundary, n=10)
    units, _ = read_unit_file(io.BytesIO(table.to_csv(index=False).encode("gb18030")), filename="村.csv",
                              boundary=yuyao_boundary)
    assert units["name"].tolist() == table["村名"].tolist()
    assert units["township"].iloc[0] == "梨洲街道"


def test_the_nbs_list_alone_is_refused_with_both_reasons():
    with pytest.raises(InputError) as err:
        read_unit_file(YUYAO / "yuyao_villages_nbs2023.csv")
    codes = {p.code for p in err.value.problems}
    assert codes == {"missing_population", "missing_coordinates"}
    text = str(err.value)
    assert "missing_population='uniform'" in text and "经度/纬度" in text


def test_missing_population_is_refused_unless_uniform(villages, yuyao_boundary):
    table = _chinese_csv(villages, yuyao_boundary, n=8).drop(columns="常住人口")
    data = table.to_csv(index=False).encode()
    with pytest.raises(InputError, match="no population column.*uniform"):
        read_unit_file(io.BytesIO(data), filename="v.csv", boundary=yuyao_boundary)
    units, report = read_unit_file(io.BytesIO(data), filename="v.csv", boundary=yuyao_boundary,
                                   missing_population="uniform")
    assert units["population"].tolist() == [1.0] * 8
    assert [p.code for p in report.warnings] == ["uniform_population"]


def test_geojson_polygons_with_integer_codes(tmp_path):
    polys = [shapely.box(121.0 + i * 0.01, 30.0, 121.01 + i * 0.01, 30.01) for i in range(3)]
    frame = gpd.GeoDataFrame({"行政区划代码": [330281001001, 330281001002, 330281101201],
                              "名称": ["东社区", "西村", "南村"], "乡镇": ["梨洲街道"] * 2 + ["大岚镇"],
                              "人口": [1200, 800, 300]}, geometry=polys, crs="EPSG:4326")
    path = tmp_path / "units.geojson"
    frame.to_file(path, driver="GeoJSON")
    units, report = read_unit_file(path)
    assert units["unit_id"].tolist() == ["330281001001", "330281001002", "330281101201"]
    assert units["population"].tolist() == [1200, 800, 300]
    assert units["setting"].tolist() == ["urban", "rural", "rural"]
    assert shapely.contains_xy(units.geometry.values, units["rep_lon"], units["rep_lat"]).all()
    # on the road: the node inside the first polygon becomes its representative point
    units2, _ = read_unit_file(path, road_nodes_xy=np.array([[121.002, 30.003]]))
    assert units2.loc[0, ["rep_lon", "rep_lat"]].tolist() == pytest.approx([121.002, 30.003])
    gpkg = tmp_path / "units.gpkg"
    frame.to_file(gpkg, driver="GPKG")
    from_gpkg, _ = read_unit_file(io.BytesIO(gpkg.read_bytes()), filename="upload.gpkg")
    assert from_gpkg["unit_id"].tolist() == units["unit_id"].tolist()


def test_units_outside_the_extent_are_flagged_not_dropped(villages, yuyao_boundary):
    table = _chinese_csv(villages, yuyao_boundary, n=20)
    west = shapely.box(120.0, 29.0, float(np.median(table["经度"])), 31.0)
    units, report = read_unit_file(io.BytesIO(table.to_csv(index=False).encode()), filename="v.csv",
                                   boundary=yuyao_boundary, extent=west)
    assert len(units) == 20
    expected = table["经度"].to_numpy() > float(np.median(table["经度"]))
    assert units["outside_extent"].tolist() == expected.tolist()
    flagged = [p.row for p in report.warnings if p.code == "outside_extent"]
    assert flagged == (np.flatnonzero(expected) + 1).tolist()


def test_bad_rows_are_all_reported(villages, yuyao_boundary):
    table = _chinese_csv(villages, yuyao_boundary, n=6)
    table.loc[1, "统计用区划代码"] = table.loc[0, "统计用区划代码"]
    table.loc[2, "常住人口"] = "-5"
    table.loc[3, "常住人口"] = "很多"
    table.loc[4, ["经度", "纬度"]] = [29.9, 121.2]
    table["经度"] = table["经度"].astype(object)
    table.loc[5, "经度"] = ""
    with pytest.raises(InputError) as err:
        read_unit_file(io.BytesIO(table.to_csv(index=False).encode()), filename="v.csv", boundary=yuyao_boundary)
    got = {(p.row, p.code) for p in err.value.problems}
    assert got == {(2, "duplicate_id"), (3, "bad_population"), (4, "bad_population"), (5, "swapped_coordinates"),
                   (6, "bad_coordinate")}
    assert "also in row 1" in str(err.value)


def test_points_without_boundary_are_clipped_to_their_hull(villages, yuyao_boundary):
    table = _chinese_csv(villages, yuyao_boundary, n=12)
    table.loc[11, ["经度", "纬度"]] = table.loc[10, ["经度", "纬度"]].to_numpy()
    units, report = read_unit_file(io.BytesIO(table.to_csv(index=False).encode()), filename="v.csv")
    assert len(units) == 12 and (units.to_crs(local_equal_area_crs(units)).area > 1e5).all()
    assert {p.code for p in report.warnings} == {"no_boundary", "duplicate_coordinates"}
    assert units.geometry.iloc[10].equals(units.geometry.iloc[11])


def test_unsupported_type_names_the_fix():
    with pytest.raises(InputError, match="unsupported file type .xlsx"):
        read_unit_file(io.BytesIO(b"x"), filename="units.xlsx")
