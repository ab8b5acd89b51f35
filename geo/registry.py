"""The agency registry: import from CSV / XLSX / GeoJSON / GeoPackage, validate, and export without loss.

A registry arrives as whatever a county office keeps: an Excel sheet with Chinese headers and a title row, a
GBK-encoded CSV, coordinates copied from AMap (GCJ-02) or Baidu (BD-09), codes that Excel would love to turn
into ``3.30281E+11``. :func:`read_agencies` accepts all of that and returns a GeoDataFrame following
:mod:`geo.schema` (WGS84 points) together with a :class:`geo.errors.Report` naming every rejected or
suspicious row, its column, its value and the reason. Rows are never dropped without a report entry.

Every cell is read as text first and parsed in one place (:func:`_validate`), so CSV, XLSX, GeoJSON and GPKG
go through the same checks and produce identical dtypes; that is what makes :func:`write_agencies` /
:func:`read_agencies` round trips exact.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import tempfile
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import geopandas as gpd
import shapely

from geo import schema, settings
from geo.coords import COORD_SYSTEMS, is_out_of_china, to_wgs84
from geo.errors import InputError, Problem, Report

#: File formats read and written.
FORMATS: tuple[str, ...] = ("csv", "xlsx", "geojson", "gpkg")

_TEXT_COLUMNS = ("agency_id", "name", "address", "phone", "photo", "service_modes", "township")
_COUNT_COLUMNS = ("certified_caregivers", "capacity", "clients_served")
_BOOL_COLUMNS = ("leading", "demo")


@dataclass(frozen=True)
class _Column:
    """One registry column: its schema name, its Chinese header on export, and every header read as it."""

    name: str
    zh: str
    synonyms: tuple[str, ...]


# The one column-mapping table. Headers are compared after _header_key (NFKC, lower case, no spaces, no
# bracketed units), so "Agency ID", "agency_id" and "机构编号（必填）" all match.
_COLUMNS: tuple[_Column, ...] = (
    _Column("agency_id", "机构编号", ("机构编号", "编号", "机构代码", "定点编号", "agency_id", "id", "code")),
    _Column("name", "机构名称", ("机构名称", "名称", "定点机构名称", "name", "agency_name")),
    _Column("care_type", "护理类型", ("类型", "护理类型", "服务类型", "机构类型", "care_type", "type")),
    _Column("status", "状态", ("状态", "定点状态", "status")),
    _Column("address", "地址", ("地址", "机构地址", "address")),
    _Column("lon", "经度", ("经度", "lon", "lng", "long", "longitude", "x")),
    _Column("lat", "纬度", ("纬度", "lat", "latitude", "y")),
    _Column("lonlat", "经纬度", ("经纬度", "坐标", "lonlat", "lnglat", "coordinates")),
    _Column("phone", "联系电话", ("联系电话", "电话", "联系方式", "phone", "telephone", "tel")),
    _Column("photo", "图片", ("图片", "照片", "photo", "picture", "image")),
    _Column("certified_caregivers", "持证护理员数",
            ("持证护理员数", "护理员数", "持证护理员", "护理人员数", "certified_caregivers", "caregivers")),
    _Column("clients_served", "服务人数", ("服务人数", "服务对象数", "clients_served", "clients")),
    _Column("capacity", "床位数", ("床位数", "容量", "服务能力", "capacity", "beds")),
    _Column("quality_score", "质量评分", ("质量评分", "评分", "quality_score", "score")),
    _Column("leading", "龙头", ("龙头", "龙头机构", "是否龙头", "leading")),
    _Column("service_modes", "服务方式", ("服务方式", "服务模式", "service_modes", "service_mode")),
    _Column("township", "乡镇", ("乡镇", "街道", "乡镇街道", "乡镇(街道)", "乡镇/街道", "township")),
    _Column("demo", "示例数据", ("示例数据", "演示数据", "demo")),
)


def _norm_value(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", unicodedata.normalize("NFKC", str(text)).strip().lower())


def _header_key(text: str) -> str:
    key = unicodedata.normalize("NFKC", str(text)).strip().lower()
    key = re.sub(r"[(\[【].*?[)\]】]", "", key)  # drop bracketed units / notes: 床位数（张）
    return re.sub(r"[\s_\-.:：*]+", "", key)


_HEADER_LOOKUP: dict[str, str] = {_header_key(s): c.name for c in _COLUMNS for s in (c.synonyms + (c.name, c.zh))}

# Value vocabularies: schema value -> accepted spellings (compared after _norm_value).
_CARE_TYPE_VALUES: dict[str, tuple[str, ...]] = {
    "hospital": ("hospital", "hospital care", "医院护理", "医疗机构", "医院", "医疗护理", "医疗机构护理", "医护"),
    "institution": ("institution", "institutional", "institutional care", "机构护理", "养老机构", "机构",
                    "养老机构护理", "机构照护"),
    "home": ("home", "home care", "居家护理", "居家", "居家上门", "居家照护", "上门护理"),
}
_STATUS_VALUES: dict[str, tuple[str, ...]] = {
    "designated": ("designated", "active", "定点", "定点机构", "正常", "已定点"),
    "suspended": ("suspended", "暂停", "暂停定点", "暂停服务"),
    "terminated": ("terminated", "解除", "终止", "解除定点", "终止定点", "已解除"),
    "planned": ("planned", "规划", "拟设", "规划中"),
}
_SERVICE_MODE_VALUES: dict[str, tuple[str, ...]] = {
    "home_visit": ("home_visit", "home visit", "上门", "上门服务", "居家上门", "上门护理"),
    "day_care": ("day_care", "day care", "日间照料", "日托", "日间", "日间照护"),
    "residential": ("residential", "入住", "机构入住", "住养", "长住", "全托"),
    "hospital_ward": ("hospital_ward", "hospital ward", "ward", "住院", "病房", "医疗专护", "专护"),
}
_BOOL_VALUES: dict[bool, tuple[str, ...]] = {
    True: ("是", "yes", "y", "true", "t", "1", "✓", "√", "龙头"),
    False: ("否", "no", "n", "false", "f", "0", "×", "非"),
}
# Chinese labels used when exporting with language="zh" (the first Chinese spelling of each value).
_ZH_LABELS: dict[str, dict] = {
    "care_type": {"hospital": "医院护理", "institution": "机构护理", "home": "居家护理"},
    "status": {"designated": "定点", "suspended": "暂停", "terminated": "解除", "planned": "规划"},
    "service_modes": {"home_visit": "上门服务", "day_care": "日间照料", "residential": "机构入住",
                      "hospital_ward": "医疗专护"},
    "bool": {True: "是", False: "否"},
}


def _vocabulary(table: dict) -> dict[str, object]:
    return {_norm_value(s): key for key, spellings in table.items() for s in spellings}


_CARE_TYPE_LOOKUP = _vocabulary(_CARE_TYPE_VALUES)
_STATUS_LOOKUP = _vocabulary(_STATUS_VALUES)
_SERVICE_MODE_LOOKUP = _vocabulary(_SERVICE_MODE_VALUES)
_BOOL_LOOKUP = _vocabulary(_BOOL_VALUES)

#: Coordinates are kept to 1e-9° (0.1 mm) and scores to 1e-6, far below any survey or rating precision, so that
#: every format, including XLSX (which openpyxl writes with 16 significant digits), round-trips them exactly.
_COORD_DECIMALS = 9
_SCORE_DECIMALS = 6

#: Rows with the same name closer than this are taken for one agency entered twice.
_DUPLICATE_DISTANCE_M = 50.0
_EARTH_RADIUS_M = 6_371_008.8


# --------------------------------------------------------------------------------------------------------
# Reading raw files into a table of text cells
# --------------------------------------------------------------------------------------------------------

@dataclass
class _RawTable:
    """Cells as text (``None`` = empty) under the user's own headers, before any interpretation."""

    headers: list[str]
    rows: list[list[str | None]]
    row_numbers: list[int]
    lon: np.ndarray | None = None  # coordinates from a geometry column, NaN where a feature has none
    lat: np.ndarray | None = None


def _file_problem(code: str, message: str) -> InputError:
    """A file-level InputError whose one problem is the message itself (shown once, not "msg: msg")."""
    error = InputError(message, [Problem(message, code=code)])
    error.args = (message,)
    return error


def _load_bytes(path_or_buffer, filename: str | None) -> tuple[bytes, str | None]:
    if isinstance(path_or_buffer, (str, os.PathLike)):
        path = Path(path_or_buffer)
        if not path.is_file():
            raise _file_problem("file_not_found", f"no such file: {path}")
        return path.read_bytes(), filename or path.name
    if isinstance(path_or_buffer, (bytes, bytearray, memoryview)):
        return bytes(path_or_buffer), filename
    if hasattr(path_or_buffer, "getvalue"):  # BytesIO, Streamlit's UploadedFile
        data = path_or_buffer.getvalue()
    elif hasattr(path_or_buffer, "read"):
        data = path_or_buffer.read()
    else:
        raise TypeError(f"read_agencies needs a path, bytes or a file object, not {type(path_or_buffer).__name__}")
    if isinstance(data, str):
        data = data.encode("utf-8")
    return bytes(data), filename or getattr(path_or_buffer, "name", None)


_EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
               ".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg"}
_FOREIGN_MAGIC = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"\xd0\xcf\x11\xe0", "an old Excel 97-2003 (.xls) or Word file; save it as .xlsx"),
    (b"\x1f\x8b", "a gzip archive"), (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"),
)


def _sniff_format(data: bytes, filename: str | None, report: Report) -> str:
    """Decide the format from the content, and check that the file name agrees."""
    label = f"'{filename}'" if filename else "the file"
    if not data.strip():
        raise _file_problem("empty_file", f"{label} is empty; it needs a header row and at least one agency")
    for magic, what in _FOREIGN_MAGIC:
        if data.startswith(magic):
            raise _file_problem("wrong_file_type", f"{label} is {what}, not an agency registry; "
                                                    f"upload CSV, XLSX, GeoJSON or GeoPackage")
    if data.startswith(b"PK\x03\x04"):
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            names = []
        if "xl/workbook.xml" in names:
            found = "xlsx"
        else:
            what = "a Word document" if any(n.startswith("word/") for n in names) else "a ZIP archive"
            raise _file_problem("wrong_file_type", f"{label} is {what}, not an agency registry; "
                                                    f"upload CSV, XLSX, GeoJSON or GeoPackage")
    elif data.startswith(b"SQLite format 3\x00"):
        found = "gpkg"
    else:
        text = _decode_text(data, label)
        head = text.lstrip("\ufeff \t\r\n")
        if head.startswith("{"):
            found = "geojson"
        elif head.startswith(("<", "[")):
            raise _file_problem("wrong_file_type", f"{label} looks like HTML/XML or a JSON list, not an agency "
                                                    f"registry; upload CSV, XLSX, GeoJSON or GeoPackage")
        else:
            found = "csv"
    ext = Path(filename).suffix.lower() if filename else ""
    expected = _EXTENSIONS.get(ext)
    if ext and expected is None:
        raise _file_problem("wrong_file_type", f"{label}: '{ext}' files are not supported; "
                                                f"upload CSV, XLSX, GeoJSON or GeoPackage")
    if expected and expected != found:
        report.add(f"{label} has a {ext} name but contains {found.upper()}; read as {found.upper()}",
                   severity="warning", code="extension_mismatch", value=filename)
    return found


def _decode_text(data: bytes, label: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" export
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        raise _file_problem("binary_file", f"{label} is a binary file, not text; upload CSV, XLSX, GeoJSON or "
                                            f"GeoPackage")
    for encoding in ("utf-8-sig", "gb18030"):  # GBK/GB18030 is what Chinese Excel writes as "CSV"
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _file_problem("binary_file", f"{label} is neither UTF-8 nor GBK text; save it as CSV UTF-8")


def _cell_text(value, number_format: str | None = None) -> str | None:
    """One cell as text, so that codes and ids never become floats."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        text = str(int(value))
    elif isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        # Whole numbers below 1e15 are exact in a double: a 12-digit code stored as a number comes back whole.
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(float(value))
    elif isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    else:
        text = str(value).strip()
        return text or None
    # A number cell formatted "000000" displays its leading zeros; keep them as the user saw them.
    if number_format and re.fullmatch(r"0+", number_format) and len(text) < len(number_format):
        text = text.zfill(len(number_format))
    return text


def _find_header(rows: list[list[str | None]]) -> int:
    """Index of the header row: the first of the top rows naming at least two known columns."""
    for i, row in enumerate(rows[:15]):
        if sum(_header_key(c) in _HEADER_LOOKUP for c in row if c) >= 2:
            return i
    return next((i for i, row in enumerate(rows) if any(row)), 0)


def _table_from_rows(rows: list[list[str | None]], label: str, report: Report) -> _RawTable:
    if not any(any(r) for r in rows):
        raise _file_problem("empty_file", f"{label} is empty; it needs a header row and at least one agency")
    h = _find_header(rows)
    if h > 0 and any(any(r) for r in rows[:h]):
        report.add(f"skipped {h} title row(s) above the header row", severity="warning", code="title_rows_skipped")
    width = max(len(r) for r in rows)
    headers = [(c or "") for c in rows[h]] + [""] * (width - len(rows[h]))
    data, numbers = [], []
    for offset, row in enumerate(rows[h + 1:], start=1):
        if any(row):
            data.append(list(row) + [None] * (width - len(row)))
            numbers.append(offset)
    if not data:
        raise _file_problem("no_data_rows", f"{label} has a header row but no agency rows")
    return _RawTable(headers, data, numbers)


def _read_csv(data: bytes, label: str, report: Report) -> _RawTable:
    """Every cell as text (the csv module never guesses types, so codes keep their digits and zeros).

    The delimiter is the one under which the top rows name the most known columns: csv.Sniffer is easily
    fooled by ';'-joined service modes, and pandas refuses the ragged rows a title line above the header makes.
    """
    text = _decode_text(data, label).lstrip("\ufeff")
    head = text.splitlines()[:15]

    def known_headers(sep: str) -> int:
        return max((sum(_header_key(c) in _HEADER_LOOKUP for c in row) for row in csv.reader(head, delimiter=sep)),
                   default=0)

    sep = max((",", ";", "\t", "|"), key=known_headers)  # max keeps the first (",") on ties
    try:
        rows = [[(c.strip() or None) for c in row] for row in csv.reader(io.StringIO(text, newline=""), delimiter=sep)]
    except csv.Error as exc:
        raise _file_problem("unreadable_file", f"{label} is not a well-formed CSV: {exc}") from exc
    return _table_from_rows(rows, label, report)


def _read_xlsx(data: bytes, label: str, report: Report) -> _RawTable:
    import openpyxl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about unsupported styles/extensions
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises a zoo of exception types for damaged files
        raise _file_problem("unreadable_file", f"{label} is not a readable XLSX workbook: {exc}") from exc
    sheets = {}
    for sheet in book.worksheets:
        sheets[sheet.title] = [[_cell_text(c.value, getattr(c, "number_format", None)) for c in row]
                               for row in sheet.iter_rows()]
    book.close()
    non_empty = [t for t, rows in sheets.items() if any(any(r) for r in rows)]
    if not non_empty:
        raise _file_problem("empty_file", f"{label} has no filled cells; it needs a header row and at least one agency")
    # The first sheet whose top rows carry a recognisable header, else the first non-empty one.
    chosen = next((t for t in non_empty
                   if sum(_header_key(c) in _HEADER_LOOKUP for c in sheets[t][_find_header(sheets[t])] if c) >= 2),
                  non_empty[0])
    others = [t for t in non_empty if t != chosen]
    if others:
        report.add(f"read sheet '{chosen}'; other sheets ignored: {', '.join(others)}", severity="warning",
                   code="sheets_ignored", value=chosen)
    return _table_from_rows(sheets[chosen], f"{label} (sheet '{chosen}')", report)


def _read_vector(data: bytes, fmt: str, label: str, report: Report) -> _RawTable:
    import pyogrio

    if fmt == "geojson":
        try:
            json.loads(_decode_text(data, label))
        except json.JSONDecodeError as exc:
            raise _file_problem("unreadable_file", f"{label} is not valid GeoJSON: {exc}") from exc
    layer = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # GDAL: "non conformant file extension" on /vsimem
            if fmt == "gpkg":
                layers = [str(name) for name, _ in pyogrio.list_layers(data)]
                if not layers:
                    raise _file_problem("no_data_rows", f"{label} is a GeoPackage with no layers")
                layer = "agencies" if "agencies" in layers else layers[0]
                if len(layers) > 1:
                    report.add(f"read layer '{layer}'; other layers ignored: "
                               f"{', '.join(n for n in layers if n != layer)}",
                               severity="warning", code="layers_ignored", value=layer)
            frame = pyogrio.read_dataframe(data, layer=layer)
    except InputError:
        raise
    except Exception as exc:  # GDAL errors arrive as several pyogrio/DataSourceError types
        raise _file_problem("unreadable_file", f"{label} is not a readable {fmt.upper()} file: {exc}") from exc
    if len(frame) == 0:
        raise _file_problem("no_data_rows", f"{label} contains no features")
    lon = np.full(len(frame), np.nan)
    lat = np.full(len(frame), np.nan)
    if "geometry" in frame and frame.geometry.notna().any():
        frame = _geometry_to_wgs84_crs(frame, data, fmt, label, report)
        for i, geom in enumerate(frame.geometry):
            if geom is None or geom.is_empty:
                continue
            if geom.geom_type == "MultiPoint" and len(geom.geoms) == 1:
                geom = geom.geoms[0]
            elif geom.geom_type != "Point":
                report.add(f"geometry is a {geom.geom_type}, not a point; using a point inside it", row=i + 1,
                           column="geometry", value=geom.geom_type, severity="warning", code="non_point_geometry")
                geom = geom.representative_point()
            lon[i], lat[i] = geom.x, geom.y
    attributes = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
    headers = [str(c) for c in attributes.columns]
    rows = [[_cell_text(v) for v in r] for r in attributes.itertuples(index=False)]
    return _RawTable(headers, rows, list(range(1, len(rows) + 1)), lon, lat)


def _geometry_to_wgs84_crs(frame: gpd.GeoDataFrame, data: bytes, fmt: str, label: str,
                           report: Report) -> gpd.GeoDataFrame:
    crs = frame.crs
    declared = crs is not None
    if fmt == "geojson":
        # GDAL reports EPSG:4326 for a GeoJSON without a "crs" member (the RFC 7946 default); tell them apart.
        try:
            declared = "crs" in json.loads(_decode_text(data, label))
        except (json.JSONDecodeError, InputError):
            declared = False
    if crs is None or crs.is_geographic:
        x, y = frame.geometry.bounds[["minx", "maxx"]].abs().max(), frame.geometry.bounds[["miny", "maxy"]].abs().max()
        if x.max() > 180 or y.max() > 90:
            what = f"says {crs.to_string()}" if declared and crs is not None else "declares no CRS"
            raise _file_problem(
                "projected_without_crs",
                f"{label} {what} but its coordinates look projected (values up to {max(x.max(), y.max()):,.0f}, "
                f"beyond ±180°); save it with its real CRS (e.g. a UTM or CGCS2000 zone) or reprojected to "
                f"EPSG:4326 (WGS84)")
        if crs is None and fmt == "gpkg":
            report.add(f"{label} declares no CRS; its degree coordinates are taken as EPSG:4326 (WGS84)",
                       severity="warning", code="crs_assumed")
        return frame.set_crs(schema.CRS, allow_override=True) if crs is None else frame.to_crs(schema.CRS)
    epsg = crs.to_epsg()
    name = f"EPSG:{epsg}" if epsg else crs.name
    report.add(f"geometry reprojected from {name} ({crs.name}) to EPSG:4326 (WGS84)", severity="warning",
               code="reprojected", value=name)
    return frame.to_crs(schema.CRS)


def _map_columns(table: _RawTable, label: str, report: Report) -> dict[str, list[str | None]]:
    """Rename the user's headers to schema names: every header matched through the one table above."""
    by_column: dict[str, int] = {}
    ambiguous, unknown = [], []
    for i, header in enumerate(table.headers):
        key = _header_key(header)
        if not key:
            if any(row[i] for row in table.rows):
                unknown.append(f"column {i + 1} (no header)")
            continue
        column = _HEADER_LOOKUP.get(key)
        if column is None:
            unknown.append(header)
        elif column in by_column:
            ambiguous.append(f"'{table.headers[by_column[column]]}' and '{header}' both mean {column}")
        else:
            by_column[column] = i
    if ambiguous:
        raise InputError(f"{label} has ambiguous columns",
                         [Problem(f"columns {a}; keep one", code="ambiguous_columns") for a in ambiguous])
    has_geometry = table.lon is not None
    missing = []
    if "name" not in by_column:
        missing.append("name (机构名称/名称)")
    if "care_type" not in by_column:  # the map's colour and every coverage rule depend on it
        missing.append("care_type (类型/护理类型: 医院护理/机构护理/居家护理)")
    if not has_geometry and "lonlat" not in by_column:
        missing += [f"{c} ({zh})" for c, zh in (("lon", "经度/lon/lng"), ("lat", "纬度/lat")) if c not in by_column]
    if missing:
        found = ", ".join(repr(h) for h in table.headers if h) or "none"
        raise InputError(f"{label} lacks required columns",
                         [Problem(f"required column {m} is missing; headers found: {found}",
                                  column=m.split(" ")[0], code="missing_columns") for m in missing])
    if unknown:
        report.add(f"columns not recognised and ignored: {', '.join(unknown)}", severity="warning",
                   code="unknown_columns", value=", ".join(unknown))
    return {c: [row[i] for row in table.rows] for c, i in by_column.items()}


# --------------------------------------------------------------------------------------------------------
# Validation: every check, every row, one pass
# --------------------------------------------------------------------------------------------------------

_NUMBER_UNITS = re.compile(r"(人|名|张|床|个|位|分|%|°)+$")


def _parse_number(text: str) -> float | None:
    """A number from a cell such as ``"1,234"``, ``"30张"`` or ``"121.15°"``; None if it is not one."""
    cleaned = _NUMBER_UNITS.sub("", unicodedata.normalize("NFKC", text).strip()).strip()
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", cleaned):
        cleaned = cleaned.replace(",", "")  # thousands separators
    elif re.fullmatch(r"[+-]?\d+,\d+", cleaned):
        cleaned = cleaned.replace(",", ".")  # a decimal comma (European locales, semicolon CSV)
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def _distance_to_region_m(region, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Metres from each point to ``region``, in an equidistant projection centred on the region."""
    from pyproj import Transformer

    c = region.centroid
    to_local = Transformer.from_crs(schema.CRS, f"+proj=aeqd +lat_0={c.y} +lon_0={c.x} +units=m +ellps=WGS84",
                                    always_xy=True)
    local_region = shapely.transform(region, lambda xy: np.column_stack(to_local.transform(xy[:, 0], xy[:, 1])))
    x, y = to_local.transform(lon, lat)
    return shapely.distance(local_region, shapely.points(x, y))


def _stable_id(name: str, lon: float, lat: float) -> str:
    digest = hashlib.sha1(f"{name}|{lon:.6f}|{lat:.6f}".encode("utf-8")).hexdigest()
    return f"gen-{digest[:10]}"


def _validate(cells: dict[str, list[str | None]], row_numbers: list[int], geometry: tuple | None, *,
              coord_system: str, region, region_tolerance_m: float, report: Report) -> gpd.GeoDataFrame:
    """Parse and check every row; add every problem to ``report``; return the rows without errors."""
    n = len(row_numbers)
    errors = np.zeros(n, dtype=bool)

    def flag(i: int, column: str | None, value, code: str, reason: str, severity: str = "error") -> None:
        report.add(reason, row=row_numbers[i], column=column, value=value, severity=severity, code=code)
        if severity == "error":
            errors[i] = True

    def column(name: str) -> list[str | None]:
        return cells.get(name, [None] * n)

    absent_reported: set[str] = set()

    def flag_missing(i: int, name: str, code: str, reason: str, general: str | None = None) -> None:
        """A warning for an empty cell; for a column the file lacks altogether, one file-level warning."""
        if name in cells:
            flag(i, name, None, code, reason, "warning")
        elif name not in absent_reported:
            absent_reported.add(name)
            report.add(f"the file has no {name} column: {general or reason}, in every row", column=name,
                       severity="warning", code=code)

    # Text fields
    text = {c: [(v or "").strip() for v in column(c)] for c in _TEXT_COLUMNS if c != "service_modes"}
    for i, name in enumerate(text["name"]):
        if not name:
            flag(i, "name", None, "missing_name", "agency name is missing")
    for c, code in (("address", "missing_address"), ("phone", "missing_phone"), ("photo", "missing_photo")):
        if c in cells:  # only nag about fields the registry has at all
            for i, v in enumerate(text[c]):
                if not v:
                    flag(i, c, None, code, f"{c} is missing: every agency should have a name, a picture, an "
                                           f"address, a location and a contact", "warning")
    for i, v in enumerate(text["agency_id"]):
        if re.fullmatch(r"[+-]?\d(\.\d+)?[eE][+-]?\d+", v):
            flag(i, "agency_id", v, "mangled_id", "agency_id looks like a code Excel shortened to scientific "
                 "notation, so its digits are lost; format the column as text and export again", "warning")

    # Vocabularies
    care_type = [_CARE_TYPE_LOOKUP.get(_norm_value(v), "") if v else "" for v in column("care_type")]
    status = [_STATUS_LOOKUP.get(_norm_value(v), "") if v else "designated" for v in column("status")]
    for i, v in enumerate(column("care_type")):
        if not v:
            flag(i, "care_type", None, "missing_care_type", "care type is missing (医院护理/机构护理/居家护理)")
        elif not care_type[i]:
            flag(i, "care_type", v, "unknown_care_type", f"unknown care type '{v}'; use hospital/医院护理, "
                 f"institution/机构护理 or home/居家护理")
    for i, v in enumerate(column("status")):
        if not v:
            flag_missing(i, "status", "missing_status", "status is missing; taken as designated (定点)")
        elif not status[i]:
            flag(i, "status", v, "unknown_status", f"unknown status '{v}'; use designated/定点, suspended/暂停, "
                 f"terminated/解除 or planned/规划")
    flags = {c: [False] * n for c in _BOOL_COLUMNS}
    for c in _BOOL_COLUMNS:
        for i, v in enumerate(column(c)):
            if v:
                parsed = _BOOL_LOOKUP.get(_norm_value(v))
                if parsed is None:
                    flag(i, c, v, "unknown_yes_no", f"'{v}' is not a yes/no value (是/否); read as no", "warning")
                flags[c][i] = bool(parsed)
    modes = [""] * n
    for i, v in enumerate(column("service_modes")):
        found = set()
        for token in filter(None, (t.strip() for t in re.split(r"[;,，、；/|]+", v or ""))):
            mode = _SERVICE_MODE_LOOKUP.get(_norm_value(token))
            if mode is None:
                flag(i, "service_modes", token, "unknown_service_mode", f"unknown service mode '{token}' left out; "
                     f"known: {', '.join(schema.SERVICE_MODES)}", "warning")
            else:
                found.add(mode)
        modes[i] = ";".join(m for m in schema.SERVICE_MODES if m in found)

    # Counts and score
    numbers: dict[str, list[float | None]] = {c: [None] * n for c in _COUNT_COLUMNS + ("quality_score",)}
    for c in numbers:
        for i, v in enumerate(column(c)):
            if not v:
                continue
            value = _parse_number(v)
            if value is None:
                flag(i, c, v, "non_numeric_count", f"{c} '{v}' is not a number")
            elif value < 0:
                flag(i, c, v, "negative_count", f"{c} is negative ({v})")
            elif c in _COUNT_COLUMNS and not value.is_integer():
                flag(i, c, v, "non_numeric_count", f"{c} '{v}' is not a whole number")
            elif c == "quality_score" and value > 100:
                flag(i, c, v, "quality_score_out_of_range", f"quality_score {v} is above 100 (scores are 0–100)")
            else:
                numbers[c][i] = value
    raw_counts = {c: list(column(c)) for c in _COUNT_COLUMNS}
    for i in range(n):
        for c in ("certified_caregivers", "clients_served"):
            if not raw_counts[c][i]:
                numbers[c][i] = 0.0
                flag_missing(i, c, "missing_count", f"{c} is missing; taken as 0")
        if not raw_counts["capacity"][i]:
            caregivers = numbers["certified_caregivers"][i]
            if raw_counts["certified_caregivers"][i] and caregivers is not None:
                numbers["capacity"][i] = float(round(caregivers * settings.clients_per_caregiver))
                flag_missing(i, "capacity", "capacity_derived",
                             f"capacity is missing; derived as {caregivers:g} certified caregivers × "
                             f"{settings.clients_per_caregiver:g} clients each = {numbers['capacity'][i]:g}",
                             f"capacity derived as certified caregivers × {settings.clients_per_caregiver:g}")
            elif not raw_counts["certified_caregivers"][i]:
                numbers["capacity"][i] = 0.0
                flag_missing(i, "capacity", "missing_count", "capacity and certified caregivers are both "
                             "missing; capacity taken as 0, so allocation sends this agency no clients")

    # Coordinates: from the geometry where a feature has one, else from lon/lat (or a combined lon,lat) cells
    lon_cells, lat_cells = list(column("lon")), list(column("lat"))
    for i, v in enumerate(column("lonlat")):
        if v and not (lon_cells[i] or lat_cells[i]):
            parts = [p for p in re.split(r"[,，;\s]+", v.strip()) if p]
            lon_cells[i], lat_cells[i] = (parts + [None, None])[:2] if len(parts) == 2 else (v, None)
    lon_raw, lat_raw = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(n):
        if geometry is not None and np.isfinite(geometry[0][i]):
            lon_raw[i], lat_raw[i] = geometry[0][i], geometry[1][i]
            continue
        if not lon_cells[i] or not lat_cells[i]:
            flag(i, "lon" if not lon_cells[i] else "lat", None, "missing_coordinates",
                 "coordinates are missing (经度/纬度)" if geometry is None else "feature has no geometry and no lon/lat")
            continue
        lon_v, lat_v = _parse_number(lon_cells[i]), _parse_number(lat_cells[i])
        if lon_v is None or lat_v is None:
            bad = ("lon", lon_cells[i]) if lon_v is None else ("lat", lat_cells[i])
            flag(i, bad[0], bad[1], "non_numeric_coordinates", f"{bad[0]} '{bad[1]}' is not a number")
            continue
        lon_raw[i], lat_raw[i] = lon_v, lat_v
    has_xy = np.isfinite(lon_raw) & np.isfinite(lat_raw)
    usable = has_xy.copy()
    for i in np.flatnonzero(has_xy):
        lon_v, lat_v = lon_raw[i], lat_raw[i]
        if lon_v == 0 and lat_v == 0:
            flag(i, "lon", "0, 0", "zero_coordinates", "coordinates are 0, 0: an empty cell filled with zeros?")
        elif abs(lat_v) > 90 and abs(lon_v) <= 90:
            flag(i, "lat", f"{lon_v}, {lat_v}", "swapped_coordinates",
                 f"latitude {lat_v} is beyond ±90 but longitude {lon_v} would be a valid latitude: lon and lat look "
                 f"swapped; fix the columns")
        elif abs(lon_v) > 180 or abs(lat_v) > 90:
            flag(i, "lon", f"{lon_v}, {lat_v}", "coordinates_out_of_range",
                 f"({lon_v}, {lat_v}) is not a longitude/latitude in degrees (projected metres?)")
        else:
            continue
        usable[i] = False
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    lon[usable], lat[usable] = to_wgs84(lon_raw[usable], lat_raw[usable], source=coord_system)
    if coord_system != "wgs84":
        for i in np.flatnonzero(usable & is_out_of_china(lon_raw, lat_raw)):
            flag(i, "lon", f"{lon_raw[i]}, {lat_raw[i]}", "outside_china_not_shifted",
                 f"point lies outside China, where {coord_system.upper()} has no offset; kept as is", "warning")
    if region is not None:
        idx = np.flatnonzero(usable)
        inside = shapely.intersects_xy(region, lon[idx], lat[idx])
        outside_idx = idx[~inside]
        if len(outside_idx):
            distance = _distance_to_region_m(region, lon[outside_idx], lat[outside_idx])
            swapped_lon, swapped_lat = to_wgs84(lat_raw[outside_idx], lon_raw[outside_idx], source=coord_system)
            swapped_inside = shapely.intersects_xy(region, swapped_lon, swapped_lat)
            for i, d, swap_in in zip(outside_idx, distance, swapped_inside):
                value = f"{lon_raw[i]}, {lat_raw[i]}"
                if d <= region_tolerance_m:
                    flag(i, "lon", value, "near_region_edge",
                         f"point is {d:.0f} m outside the region boundary; kept", "warning")
                elif swap_in:
                    flag(i, "lon", value, "swapped_coordinates",
                         "point is outside the region but lies inside it with lon and lat swapped; fix the columns")
                else:
                    flag(i, "lon", value, "outside_region", f"point is {d / 1000:.1f} km outside the region")

    # Duplicates, among rows that survived every other check (a broken row must not shadow a good one)
    ids = list(text["agency_id"])
    first_id: dict[str, int] = {}
    kept_by_name: dict[str, list[int]] = {}
    for i in np.flatnonzero(~errors):
        if ids[i]:
            if ids[i] in first_id:
                flag(i, "agency_id", ids[i], "duplicate_id",
                     f"agency_id '{ids[i]}' repeats row {row_numbers[first_id[ids[i]]]}")
            else:
                first_id[ids[i]] = i
        key = _norm_value(text["name"][i])
        earlier = kept_by_name.setdefault(key, [])
        if earlier:
            d = _haversine_m(lon[earlier], lat[earlier], lon[i], lat[i])
            if d.min() < _DUPLICATE_DISTANCE_M:
                j = earlier[int(d.argmin())]
                flag(i, "name", text["name"][i], "duplicate_name_place",
                     f"'{text['name'][i]}' repeats row {row_numbers[j]} {d.min():.0f} m away: the same agency "
                     f"entered twice?")
                continue
        earlier.append(i)
    for i in np.flatnonzero(~errors):
        if not ids[i]:
            ids[i] = _stable_id(text["name"][i], lon[i], lat[i])
            flag_missing(i, "agency_id", "generated_id", f"agency_id is missing; generated '{ids[i]}' from "
                         f"name and position", "agency_id generated from name and position")

    keep = np.flatnonzero(~errors)
    records = {
        "agency_id": [ids[i] for i in keep],
        "name": [text["name"][i] for i in keep],
        "care_type": [care_type[i] for i in keep],
        "status": [status[i] for i in keep],
        "address": [text["address"][i] for i in keep],
        "phone": [text["phone"][i] for i in keep],
        "photo": [text["photo"][i] for i in keep],
        "certified_caregivers": [numbers["certified_caregivers"][i] for i in keep],
        "capacity": [numbers["capacity"][i] for i in keep],
        "clients_served": [numbers["clients_served"][i] for i in keep],
        "quality_score": [numbers["quality_score"][i] for i in keep],
        "leading": [flags["leading"][i] for i in keep],
        "service_modes": [modes[i] for i in keep],
        "township": [text["township"][i] for i in keep],
        "demo": [flags["demo"][i] for i in keep],
    }
    return _build_frame(records, lon[keep], lat[keep])


def _build_frame(records: dict[str, list], lon: np.ndarray, lat: np.ndarray) -> gpd.GeoDataFrame:
    """The registry frame with the schema's exact column order and dtypes (the same for every source)."""
    columns = {}
    for c in schema.AGENCY_COLUMNS:
        values = records[c]
        if c in _COUNT_COLUMNS:
            columns[c] = pd.Series(values, dtype="float64").astype("int64")
        elif c == "quality_score":
            columns[c] = pd.Series([np.nan if v is None else v for v in values], dtype="float64").round(_SCORE_DECIMALS)
        elif c in _BOOL_COLUMNS:
            columns[c] = pd.Series(values, dtype=bool)
        else:
            columns[c] = pd.Series(values, dtype="str")
    geometry = gpd.points_from_xy(np.round(lon, _COORD_DECIMALS), np.round(lat, _COORD_DECIMALS))
    return gpd.GeoDataFrame(columns, geometry=geometry, crs=schema.CRS)


def read_agencies(path_or_buffer, *, filename: str | None = None, coord_system: str = "wgs84", region=None,
                  region_tolerance_m: float = 100.0, strict: bool = False) -> tuple[gpd.GeoDataFrame, Report]:
    """Read an agency registry from CSV, XLSX, GeoJSON or GeoPackage, checking every row.

    Parameters
    ----------
    path_or_buffer : str, pathlib.Path, bytes or file-like
        The registry. File objects (``io.BytesIO``, Streamlit's ``UploadedFile``) are read whole.
    filename : str, optional
        Name to check the content against and to quote in messages (defaults to the path's / object's name).
    coord_system : str
        The system of the coordinates in the file: ``"wgs84"``, ``"gcj02"`` (AMap/Gaode, Tencent) or
        ``"bd09"`` (Baidu). They are converted to WGS84 with the precise inverse of :mod:`geo.coords`.
    region : shapely geometry, GeoSeries or GeoDataFrame, optional
        The planning region in WGS84; points outside it (beyond ``region_tolerance_m``) are rejected, and
        points that fall inside it once lon/lat are swapped are reported as swapped.
    region_tolerance_m : float
        Points this close outside the region are kept with a warning (boundaries are generalised).
    strict : bool
        Raise :class:`~geo.errors.InputError` if any row has an error, instead of returning the good rows.

    Returns
    -------
    agencies : geopandas.GeoDataFrame
        Columns :data:`geo.schema.AGENCY_COLUMNS` plus WGS84 point geometry, one row per accepted agency.
    report : geo.errors.Report
        Every rejected row (severity ``"error"``) and every suspicious one (``"warning"``) with its 1-based
        data row, column, value, reason and a stable ``code``.

    Raises
    ------
    geo.errors.InputError
        For file-level problems (empty, header only, wrong file type, binary, missing required columns,
        projected coordinates without a CRS), or any row error when ``strict``.
    """
    coord_system = str(coord_system).strip().lower().replace("-", "").replace("_", "")
    if coord_system not in COORD_SYSTEMS:
        raise _file_problem("unknown_coord_system",
                            f"coord_system '{coord_system}' is not one of {', '.join(COORD_SYSTEMS)}")
    if region is not None and hasattr(region, "union_all"):
        region = region.to_crs(schema.CRS).union_all() if getattr(region, "crs", None) else region.union_all()
    report = Report()
    data, name = _load_bytes(path_or_buffer, filename)
    label = f"'{name}'" if name else "the file"
    fmt = _sniff_format(data, name, report)
    if fmt == "csv":
        table = _read_csv(data, label, report)
    elif fmt == "xlsx":
        table = _read_xlsx(data, label, report)
    else:
        table = _read_vector(data, fmt, label, report)
    cells = _map_columns(table, label, report)
    geometry = (table.lon, table.lat) if table.lon is not None else None
    agencies = _validate(cells, table.row_numbers, geometry, coord_system=coord_system, region=region,
                         region_tolerance_m=region_tolerance_m, report=report)
    if strict and report.errors:
        raise InputError(f"{label}: {len(report.errors)} row error(s); fix them and import again", report.errors)
    return agencies, report


# --------------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------------

def _export_table(gdf: gpd.GeoDataFrame, *, language: str, with_lonlat: bool) -> pd.DataFrame:
    missing = [c for c in schema.AGENCY_COLUMNS if c not in gdf.columns]
    if missing:
        raise InputError("agencies cannot be exported",
                         [Problem(f"column {c} is missing", column=c, code="missing_columns") for c in missing])
    if language not in ("en", "zh"):
        raise ValueError(f"language must be 'en' or 'zh', not {language!r}")
    if gdf.crs is not None and not gdf.crs.equals(schema.CRS):
        gdf = gdf.to_crs(schema.CRS)
    table = pd.DataFrame({c: gdf[c].to_numpy() for c in schema.AGENCY_COLUMNS})
    if with_lonlat:
        table["lon"], table["lat"] = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    if language == "zh":
        for c in ("care_type", "status"):
            table[c] = table[c].map(lambda v, c=c: _ZH_LABELS[c].get(v, v))
        table["service_modes"] = table["service_modes"].map(
            lambda v: ";".join(_ZH_LABELS["service_modes"].get(m, m) for m in v.split(";") if m))
        for c in _BOOL_COLUMNS:
            table[c] = table[c].map(_ZH_LABELS["bool"])
        zh = {col.name: col.zh for col in _COLUMNS}
        table = table.rename(columns=zh)
    return table


def _xlsx_bytes(table: pd.DataFrame) -> bytes:
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("agencies")
    text_columns = [table[c].dtype.kind not in "biuf" for c in table.columns]
    for i, is_text in enumerate(text_columns):
        sheet.column_dimensions[get_column_letter(i + 1)].width = 18 if is_text else 12
    sheet.freeze_panes = "A2"
    sheet.append(list(table.columns))
    for row in table.itertuples(index=False):
        cells = []
        for v, is_text in zip(row, text_columns):
            if isinstance(v, (float, np.floating)) and math.isnan(v):
                v = None
            elif isinstance(v, np.generic):
                v = v.item()
            cell = WriteOnlyCell(sheet, value=v)
            if is_text:
                cell.number_format = "@"  # Excel keeps ids and phone numbers as text when the user edits them
            cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def agencies_to_bytes(gdf: gpd.GeoDataFrame, fmt: str, *, language: str = "en") -> bytes:
    """Serialise agencies for a download button or a file.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Agencies with :data:`geo.schema.AGENCY_COLUMNS` and point geometry.
    fmt : str
        ``"csv"`` (UTF-8 with BOM so Excel shows Chinese; lon/lat columns), ``"xlsx"`` (ids and phones as
        text cells; lon/lat columns), ``"geojson"`` or ``"gpkg"`` (layer ``agencies``).
    language : str
        ``"en"``: schema headers and values; ``"zh"``: Chinese headers and values (医院护理, 定点, 是/否).
        :func:`read_agencies` reads both back to the same frame.

    Returns
    -------
    bytes
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, not {fmt!r}")
    if fmt == "csv":
        table = _export_table(gdf, language=language, with_lonlat=True)
        return table.to_csv(index=False).encode("utf-8-sig")
    if fmt == "xlsx":
        return _xlsx_bytes(_export_table(gdf, language=language, with_lonlat=True))
    table = _export_table(gdf, language=language, with_lonlat=False)
    out = gpd.GeoDataFrame(table, geometry=gdf.to_crs(schema.CRS).geometry.to_numpy(), crs=schema.CRS)
    if fmt == "geojson":
        # Python's float repr round-trips exactly; GDAL's writer would trim digits.
        return out.to_json(na="null", drop_id=True, ensure_ascii=False).encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "agencies.gpkg"
        out.to_file(path, layer="agencies", driver="GPKG", engine="pyogrio")
        return path.read_bytes()


def write_agencies(gdf: gpd.GeoDataFrame, path: str | os.PathLike, *, fmt: str | None = None,
                   language: str = "en") -> Path:
    """Write agencies to CSV, XLSX, GeoJSON or GeoPackage; :func:`read_agencies` reads it back unchanged.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
    path : str or pathlib.Path
    fmt : str, optional
        One of :data:`FORMATS`; by default taken from the file extension.
    language : str
        ``"en"`` or ``"zh"`` headers and values, see :func:`agencies_to_bytes`.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    if fmt is None:
        fmt = _EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise ValueError(f"cannot tell the format from '{path.name}'; pass fmt= one of {FORMATS}")
    path.write_bytes(agencies_to_bytes(gdf, fmt, language=language))
    return path
