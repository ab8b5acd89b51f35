"""Agency registry: import of every supported format, every validation check, lossless export."""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from shapely.ops import nearest_points

from geo import schema, settings
from geo.coords import from_wgs84
from geo.errors import InputError
from geo.registry import FORMATS, agencies_to_bytes, read_agencies, write_agencies

FIXTURES = Path(__file__).parent / "fixtures" / "registry"
ROOT = Path(__file__).resolve().parents[1]
ANDORRA_PARISHES = ROOT / "data" / "andorra" / "raw" / "andorra_admin_boundaries.geojson"
# Yuyao's outline is AMap-derived: it lives with the tests and never ships in the app.
YUYAO_BOUNDARY = ROOT / "tests" / "fixtures" / "yuyao" / "yuyao_boundary_wgs84.geojson"


@pytest.fixture(scope="module")
def andorra() -> shapely.Geometry:
    if not ANDORRA_PARISHES.exists():
        pytest.skip("shared Andorra data not available")
    return gpd.read_file(ANDORRA_PARISHES).union_all()


@pytest.fixture(scope="module")
def yuyao() -> shapely.Geometry:
    if not YUYAO_BOUNDARY.exists():
        pytest.skip("shared Yuyao data not available")
    return gpd.read_file(YUYAO_BOUNDARY).union_all()


@pytest.fixture(scope="module")
def good(andorra) -> gpd.GeoDataFrame:
    agencies, report = read_agencies(FIXTURES / "andorra_good.csv", region=andorra)
    assert report.problems == []
    return agencies


def _metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


def _codes(report) -> list[tuple[int | None, str, str]]:
    return [(p.row, p.code, p.severity) for p in report.problems]


# ---------------------------------------------------------------------------------------------- good input

def test_good_registry_follows_schema(good):
    assert list(good.columns) == [*schema.AGENCY_COLUMNS, "geometry"]
    assert good.crs == schema.CRS
    assert len(good) == 6
    row = good.iloc[0]
    assert row.agency_id == "AD-001" and row.care_type == "hospital" and row.leading
    assert row.service_modes == "home_visit;hospital_ward"  # schema order
    assert (row.certified_caregivers, row.capacity, row.clients_served) == (40, 120, 95)
    assert good.loc[2, "status"] == "suspended" and good.loc[5, "status"] == "planned"
    assert np.isnan(good.loc[2, "quality_score"]) and good.loc[3, "quality_score"] == 77.25
    assert good.geometry.x.iloc[0] == 1.5339379 and good.geometry.y.iloc[0] == 42.5115092
    assert good["certified_caregivers"].dtype == np.int64 and good["leading"].dtype == bool


def test_chinese_headers_title_row_and_values(yuyao):
    agencies, report = read_agencies(FIXTURES / "yuyao_zh.csv", region=yuyao)
    assert report.errors == []
    assert [p.code for p in report.warnings] == ["title_rows_skipped"]
    assert len(agencies) == 6
    assert agencies.agency_id.tolist()[:2] == ["330281001001", "000281001008"]  # text, leading zeros kept
    assert agencies.name.iloc[0] == "梨洲街道花园社区居家养老服务中心"
    assert agencies.care_type.tolist() == ["home", "institution", "hospital", "home", "institution", "hospital"]
    assert agencies.status.tolist() == ["designated", "designated", "suspended", "terminated", "designated",
                                        "planned"]
    assert agencies.leading.tolist() == [True] + [False] * 5
    assert agencies.capacity.iloc[0] == 141  # "141张"
    assert agencies.service_modes.iloc[0] == "home_visit;day_care"
    assert agencies.service_modes.iloc[1] == "residential"
    assert agencies.township.iloc[0] == "梨洲街道"
    assert agencies.phone.iloc[0] == "0574-62676087"


def test_gbk_encoded_csv_is_read(tmp_path):
    text = (FIXTURES / "yuyao_zh.csv").read_text(encoding="utf-8")
    path = tmp_path / "gbk.csv"
    path.write_bytes(text.encode("gb18030"))
    agencies, _ = read_agencies(path)
    assert agencies.name.iloc[2] == "凤山街道双河村委会卫生院"


def test_xlsx_with_12_digit_codes_as_numbers_and_text(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["余姚市定点机构"])  # title row
    sheet.append(["机构编号", "名称", "类型", "状态", "经度", "纬度", "联系电话", "护理员数", "容量"])
    sheet.append([330281001001, "花园社区居家养老服务中心", "居家护理", "定点", 121.16, 30.05, 13857412345, 12, 48])
    sheet.append(["330281001003", "东朝街社区颐养院", "机构护理", "暂停", 121.17, 30.06, "0574-62000000", 8.0, None])
    sheet.append([330281001004.0, "三江口社区卫生服务中心", "医院", "定点", 121.18, 30.04, None, 5, 20])
    sheet.append([42, "学弄社区照护站", "居家", "定点", 121.15, 30.03, None, 3, 12])
    sheet.cell(row=6, column=1).number_format = "000000"  # shows 000042 in Excel
    path = tmp_path / "registry.xlsx"
    book.save(path)
    agencies, report = read_agencies(path)
    assert agencies.agency_id.tolist() == ["330281001001", "330281001003", "330281001004", "000042"]
    assert agencies.phone.iloc[0] == "13857412345"
    assert agencies.capacity.tolist() == [48, 32, 20, 12]  # 8 caregivers × 4
    assert ("capacity_derived", 2) in [(p.code, p.row) for p in report.warnings]


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_chinese_coordinate_systems_land_within_1m(tmp_path, yuyao, system):
    truth, _ = read_agencies(FIXTURES / "yuyao_zh.csv")
    table = pd.read_csv(FIXTURES / "yuyao_zh.csv", skiprows=1, dtype=str)
    lon, lat = from_wgs84(truth.geometry.x.to_numpy(), truth.geometry.y.to_numpy(), target=system)
    table["经度"], table["纬度"] = lon, lat
    path = tmp_path / f"{system}.csv"
    table.to_csv(path, index=False)
    shifted, _ = read_agencies(path, coord_system="wgs84")
    assert _metres(shifted.geometry.x, shifted.geometry.y, truth.geometry.x, truth.geometry.y).min() > 100
    agencies, report = read_agencies(path, coord_system=system, region=yuyao)
    assert report.errors == []
    error = _metres(agencies.geometry.x, agencies.geometry.y, truth.geometry.x, truth.geometry.y)
    assert error.max() < 1.0


def test_ragged_title_line_semicolons_and_blank_lines(tmp_path):
    path = tmp_path / "excel_fr.csv"
    path.write_text("Registre des agences\n\nname;type;lon;lat;service_modes;remarque\n"
                    "A;home;1.52;42.50;\"home_visit,day_care\";ok\n\nB;clinic;1.53;42.51;day_care;\n", encoding="utf-8")
    agencies, report = read_agencies(path)
    assert agencies.name.tolist() == ["A"] and agencies.service_modes.iloc[0] == "home_visit;day_care"
    # Row numbers count data rows after the header, blank ones included, so the user can find the row.
    assert [(p.row, p.code) for p in report.errors] == [(3, "unknown_care_type")]
    assert ("unknown_columns", "remarque") in [(p.code, p.value) for p in report.warnings]


def test_combined_lonlat_column(tmp_path):
    path = tmp_path / "amap.csv"
    path.write_text("名称,类型,坐标\n花园社区居家养老服务中心,居家,\"121.16,30.05\"\n", encoding="utf-8")
    agencies, _ = read_agencies(path)
    assert (agencies.geometry.x.iloc[0], agencies.geometry.y.iloc[0]) == (121.16, 30.05)


# ------------------------------------------------------------------------------------------ row problems

@pytest.mark.parametrize("fixture, row, code", [
    ("missing_name.csv", 2, "missing_name"),
    ("missing_coordinates.csv", 2, "missing_coordinates"),
    ("non_numeric_coordinates.csv", 2, "non_numeric_coordinates"),
    ("outside_region.csv", 2, "outside_region"),
    ("swapped_in_region.csv", 2, "swapped_coordinates"),
    ("duplicate_id.csv", 2, "duplicate_id"),
    ("duplicate_name_place.csv", 2, "duplicate_name_place"),
    ("unknown_care_type.csv", 2, "unknown_care_type"),
    ("unknown_care_type.csv", 3, "missing_care_type"),
    ("unknown_status.csv", 2, "unknown_status"),
])
def test_each_broken_row_is_rejected_and_reported(andorra, fixture, row, code):
    agencies, report = read_agencies(FIXTURES / fixture, region=andorra)
    errors = [(p.row, p.code) for p in report.errors]
    assert (row, code) in errors, _codes(report)
    # Rejected rows are not in the frame, every other row is; nothing disappears unreported.
    total = len(pd.read_csv(FIXTURES / fixture, dtype=str))
    rejected = {p.row for p in report.errors}
    assert len(agencies) == total - len(rejected)
    assert agencies.agency_id.iloc[0] == "AD-001"
    with pytest.raises(InputError) as info:
        read_agencies(FIXTURES / fixture, region=andorra, strict=True)
    assert code in {p.code for p in info.value.problems}


def test_problem_carries_row_column_value_and_reason(andorra):
    _, report = read_agencies(FIXTURES / "non_numeric_coordinates.csv", region=andorra)
    (problem,) = report.errors
    assert (problem.row, problem.column, problem.value) == (2, "lat", "42°29 N")
    assert "not a number" in problem.reason
    frame = report.to_frame()
    assert frame.loc[0, "code"] == "non_numeric_coordinates" and frame.loc[0, "row"] == 2


def test_duplicate_name_far_apart_is_allowed(andorra):
    agencies, report = read_agencies(FIXTURES / "duplicate_name_place.csv", region=andorra)
    assert [p.row for p in report.errors] == [2]
    assert agencies.agency_id.tolist() == ["AD-001", "AD-003"]  # same name 5 km away, a separate site
    assert "repeats row 1" in report.errors[0].reason


def test_duplicate_id_keeps_the_first_row(andorra):
    agencies, report = read_agencies(FIXTURES / "duplicate_id.csv", region=andorra)
    assert agencies.name.tolist() == ["Hospital de Nostra Senyora de Meritxell"]
    assert "repeats row 1" in report.errors[0].reason


def test_swapped_without_region_by_latitude_range(tmp_path):
    path = tmp_path / "swapped.csv"
    path.write_text("名称,类型,经度,纬度\n花园社区,居家,30.05,121.16\n东朝街社区,居家,121.17,30.06\n", encoding="utf-8")
    agencies, report = read_agencies(path)
    assert [(p.row, p.code) for p in report.errors] == [(1, "swapped_coordinates")]
    assert agencies.name.tolist() == ["东朝街社区"]


def test_projected_metres_in_a_table_are_out_of_range(tmp_path):
    path = tmp_path / "metres.csv"
    path.write_text("name,type,x,y\nA,home,375000,4707000\n", encoding="utf-8")
    _, report = read_agencies(path)
    assert [p.code for p in report.errors] == ["coordinates_out_of_range"]


def test_unknown_status_and_missing_status_default(andorra):
    agencies, report = read_agencies(FIXTURES / "unknown_status.csv", region=andorra)
    assert ("missing_status", 3) in [(p.code, p.row) for p in report.warnings]
    assert agencies.set_index("agency_id").loc["AD-003", "status"] == "designated"


def test_bad_counts_each_reported(andorra):
    agencies, report = read_agencies(FIXTURES / "bad_counts.csv", region=andorra)
    got = {(p.row, p.column, p.code) for p in report.errors}
    assert got == {
        (2, "certified_caregivers", "non_numeric_count"),
        (3, "capacity", "negative_count"),
        (4, "clients_served", "non_numeric_count"),
        (5, "quality_score", "quality_score_out_of_range"),
    }
    assert agencies.agency_id.tolist() == ["AD-001"]


def test_missing_capacity_is_derived_from_caregivers(andorra):
    agencies, report = read_agencies(FIXTURES / "missing_capacity.csv", region=andorra)
    assert agencies.capacity.iloc[1] == round(10 * settings.clients_per_caregiver)
    (warning,) = report.warnings
    assert (warning.code, warning.row, warning.column) == ("capacity_derived", 2, "capacity")


def test_capacity_follows_the_current_setting(andorra, monkeypatch):
    monkeypatch.setattr(settings, "clients_per_caregiver", 2.5)
    agencies, _ = read_agencies(FIXTURES / "missing_capacity.csv", region=andorra)
    assert agencies.capacity.iloc[1] == 25


def test_missing_id_is_generated_stably(andorra):
    first, report = read_agencies(FIXTURES / "missing_id.csv", region=andorra)
    second, _ = read_agencies(FIXTURES / "missing_id.csv", region=andorra)
    generated = first.agency_id.iloc[1]
    assert generated.startswith("gen-") and generated == second.agency_id.iloc[1]
    assert [(p.row, p.code) for p in report.warnings] == [(2, "generated_id")]


def test_point_just_outside_the_region_is_kept_with_a_warning(tmp_path, andorra):
    # 30 m beyond the border at the Pas de la Casa end; boundaries are generalised, so keep and warn.
    edge = nearest_points(andorra.boundary, shapely.Point(1.80, 42.55))[0]
    lon, lat = edge.x + 0.0004, edge.y  # ~33 m east, outside
    assert not andorra.contains(shapely.Point(lon, lat))
    path = tmp_path / "edge.csv"
    path.write_text(f"name,type,lon,lat\nBorder post,home,{lon},{lat}\n", encoding="utf-8")
    agencies, report = read_agencies(path, region=andorra)
    assert len(agencies) == 1 and [(p.row, p.code) for p in report.problems if p.row] == [(1, "near_region_edge")]
    agencies, report = read_agencies(path, region=andorra, region_tolerance_m=10)
    assert len(agencies) == 0 and [p.code for p in report.errors] == ["outside_region"]


def test_absent_optional_columns_give_one_file_level_warning_each(tmp_path):
    path = tmp_path / "minimal.csv"
    path.write_text("name,type,lon,lat\nA,home,1.52,42.50\nB,home,1.53,42.51\nC,home,1.54,42.52\n", encoding="utf-8")
    agencies, report = read_agencies(path)
    assert len(agencies) == 3 and report.errors == []
    assert all(p.row is None for p in report.warnings)
    assert sorted((p.column, p.code) for p in report.warnings) == [
        ("agency_id", "generated_id"), ("capacity", "missing_count"), ("certified_caregivers", "missing_count"),
        ("clients_served", "missing_count"), ("status", "missing_status")]
    assert agencies.status.tolist() == ["designated"] * 3 and agencies.agency_id.str.startswith("gen-").all()


# ----------------------------------------------------------------------------------------- file problems

@pytest.mark.parametrize("fixture, code", [
    ("empty.csv", "empty_file"),
    ("header_only.csv", "no_data_rows"),
    ("missing_columns.csv", "missing_columns"),
    ("png_renamed.csv", "wrong_file_type"),
    ("binary.csv", "binary_file"),
    ("projected_no_crs.geojson", "projected_without_crs"),
])
def test_file_level_problems_raise(fixture, code):
    with pytest.raises(InputError) as info:
        read_agencies(FIXTURES / fixture)
    assert [p.code for p in info.value.problems][0] == code
    assert fixture in str(info.value)


def test_missing_columns_names_what_to_add():
    with pytest.raises(InputError) as info:
        read_agencies(FIXTURES / "missing_columns.csv")
    assert {p.column for p in info.value.problems} == {"lon", "lat"}
    assert "经度" in str(info.value)
    with pytest.raises(InputError) as info:
        read_agencies(b"name,lon,lat\nA,1.5,42.5\n", filename="no_type.csv")
    assert [p.column for p in info.value.problems] == ["care_type"]


@pytest.mark.parametrize("text, value", [("1,234", 1234), ("30张", 30), ("12 人", 12), ("2,5", 2.5), ("-1", -1),
                                         ("１２", 12), ("1,23,4", None), ("abc", None), ("nan", None)])
def test_number_cells(text, value):
    from geo.registry import _parse_number

    assert _parse_number(text) == value


def test_png_message_says_what_it_is():
    with pytest.raises(InputError, match="PNG image"):
        read_agencies((FIXTURES / "png_renamed.csv").read_bytes(), filename="registry.csv")


def test_unsupported_extension_and_old_xls(tmp_path):
    with pytest.raises(InputError, match="not supported"):
        read_agencies(b"name,lon,lat\nA,1,2\n", filename="registry.kml")
    with pytest.raises(InputError, match="xls"):
        read_agencies(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, filename="registry.xls")


def test_content_wins_over_a_wrong_extension_with_a_warning(good):
    data = agencies_to_bytes(good, "geojson")
    agencies, report = read_agencies(data, filename="registry.csv")
    assert len(agencies) == 6 and [p.code for p in report.warnings] == ["extension_mismatch"]


def test_ambiguous_headers_are_refused(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("名称,name,lon,lat\nA,A,1.5,42.5\n", encoding="utf-8")
    with pytest.raises(InputError, match="both mean name"):
        read_agencies(path)


# -------------------------------------------------------------------------------- GeoJSON / GPKG CRS

def test_projected_geojson_is_reprojected_and_reported(andorra, good):
    agencies, report = read_agencies(FIXTURES / "andorra_utm31n.geojson", region=andorra)
    assert [(p.code, p.value) for p in report.problems] == [("reprojected", "EPSG:32631")]
    error = _metres(agencies.geometry.x, agencies.geometry.y, good.geometry.x[:3], good.geometry.y[:3])
    assert error.max() < 0.01


def test_projected_geopackage_is_reprojected(tmp_path, good):
    path = tmp_path / "utm.gpkg"
    good.to_crs(32631).to_file(path, layer="agencies", driver="GPKG")
    agencies, report = read_agencies(path)
    assert "reprojected" in [p.code for p in report.warnings]
    assert _metres(agencies.geometry.x, agencies.geometry.y, good.geometry.x, good.geometry.y).max() < 0.01


def test_geopackage_without_crs(tmp_path, good):
    projected = tmp_path / "metres.gpkg"
    with pytest.warns(UserWarning, match="crs"):
        good.to_crs(32631).set_crs(None, allow_override=True).to_file(projected, driver="GPKG")
    with pytest.raises(InputError, match="look projected") as info:
        read_agencies(projected)
    assert info.value.problems[0].code == "projected_without_crs"
    degrees = tmp_path / "degrees.gpkg"
    with pytest.warns(UserWarning, match="crs"):
        good.set_crs(None, allow_override=True).to_file(degrees, driver="GPKG")
    agencies, report = read_agencies(degrees)
    assert [p.code for p in report.warnings] == ["crs_assumed"]
    pd.testing.assert_frame_equal(agencies, good)


def test_geojson_in_gcj02_is_converted(tmp_path, yuyao):
    truth, _ = read_agencies(FIXTURES / "yuyao_zh.csv")
    lon, lat = from_wgs84(truth.geometry.x.to_numpy(), truth.geometry.y.to_numpy(), target="gcj02")
    shifted = truth.set_geometry(gpd.points_from_xy(lon, lat), crs=schema.CRS)
    data = agencies_to_bytes(shifted, "geojson", language="zh")
    agencies, report = read_agencies(data, filename="amap.geojson", coord_system="gcj02", region=yuyao)
    assert report.errors == []
    assert _metres(agencies.geometry.x, agencies.geometry.y, truth.geometry.x, truth.geometry.y).max() < 1.0


# ------------------------------------------------------------------------------------------------ export

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("language", ["en", "zh"])
def test_round_trip_is_lossless(tmp_path, fmt, language, yuyao):
    agencies, _ = read_agencies(FIXTURES / "yuyao_zh.csv")
    # Exercise what formats tend to lose: bools both ways, a missing score, a generated id, odd precision.
    agencies.loc[2, "quality_score"] = np.nan
    agencies.loc[3, "demo"] = True
    agencies.loc[4, "agency_id"] = "gen-0a1b2c3d4e"
    agencies.loc[5, "photo"] = "workspace/photos/大岚镇 卫生院 (1).jpg"
    agencies.loc[0, "geometry"] = shapely.Point(121.123456789, 30.987654321)  # the import keeps 1e-9°
    path = write_agencies(agencies, tmp_path / f"registry.{fmt}", language=language)
    back, report = read_agencies(path)
    assert report.errors == []
    pd.testing.assert_frame_equal(back, agencies)
    assert back.geometry.x.iloc[0] == 121.123456789


def test_coordinates_are_kept_to_1e9_degrees(tmp_path):
    path = tmp_path / "precise.csv"
    path.write_text("name,type,lon,lat,quality_score\nA,home,121.12345678901234,30.123456789012345,83.33333333333\n")
    agencies, _ = read_agencies(path)
    assert agencies.geometry.x.iloc[0] == 121.123456789 and agencies.geometry.y.iloc[0] == 30.123456789
    assert agencies.quality_score.iloc[0] == 83.333333


def test_bytes_match_the_written_file(tmp_path, good):
    path = write_agencies(good, tmp_path / "a.csv")
    assert path.read_bytes() == agencies_to_bytes(good, "csv")
    assert agencies_to_bytes(good, "csv").startswith(b"\xef\xbb\xbf")  # BOM: Excel shows Chinese correctly
    with pytest.raises(ValueError, match="format"):
        write_agencies(good, tmp_path / "a.shp")


def test_xlsx_export_keeps_ids_as_text_cells(good):
    data = agencies_to_bytes(good.assign(agency_id=["330281001001", "0042", "3", "4", "5", "6"]), "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet["A2"].value == "330281001001" and sheet["A2"].data_type == "s"
    assert sheet["A3"].value == "0042"


def test_export_refuses_frames_missing_columns(good):
    with pytest.raises(InputError, match="cannot be exported"):
        agencies_to_bytes(good.drop(columns=["status"]), "csv")
