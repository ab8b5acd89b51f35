"""Reading planners' own unit files: villages/communities as polygons or points, with Chinese or English headers.

Accepted: GeoJSON, GeoPackage, Shapefile (anything pyogrio reads) with polygons or points, and CSV/TXT with
longitude/latitude columns. Headers are matched by meaning, e.g. ``名称``/``村名`` → ``name``,
``统计用区划代码``/``行政区划代码`` → ``unit_id``, ``乡镇``/``街道`` → ``township``, ``常住人口``/``人口`` →
``population``, ``经度``/``纬度`` → ``rep_lon``/``rep_lat``. Statistical codes are read as text so a 12-digit
code such as ``330281001001`` keeps every digit (never ``3.30281e+11``).

A points-only file gets Thiessen (Voronoi) polygons clipped to a boundary, so each village owns the land
nearest to it. A file without population is refused with a clear message unless the caller chooses
``missing_population="uniform"`` (every unit weighs 1). Units outside a given extent (e.g. the road network's)
are kept and flagged in the report.

:func:`read_unit_file` returns ``(units, report)``: a frame that follows the ``units`` contract of
:mod:`geo.schema` and a :class:`geo.errors.Report` of every warning. Problems that make rows unusable raise
:class:`geo.errors.InputError` listing all of them at once.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import BinaryIO, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo import settings
from geo.errors import InputError, Problem, Report
from geo.schema import CRS, SETTINGS, UNIT_COLUMNS

#: Header aliases per contract column, compared after lower-casing and removing spaces, brackets and
#: punctuation. The first match in the file wins, in this order (statistical code before admin code).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "unit_id": ("unit_id", "统计用区划代码", "统计用区划代码和城乡分类代码", "行政区划代码", "区划代码", "村级代码",
                "代码", "编码", "编号", "code", "id", "adcode", "gb"),
    "name": ("name", "名称", "村名", "村居名称", "村社区名称", "村委会", "村居委会", "村名称", "社区名称", "单位名称",
             "村", "社区", "村社区"),
    "township": ("township", "township_name", "乡镇", "乡镇街道", "街道", "所属乡镇", "所属街道", "所属乡镇街道",
                 "镇街", "town", "乡镇名称", "街道名称"),
    "population": ("population", "常住人口", "人口", "总人口", "户籍人口", "人口数", "常住人口数", "pop", "人数"),
    "demand": ("demand", "需求", "失能人数", "失能人员", "需求人数", "ltci_demand"),
    "setting": ("setting", "类型", "城乡类型", "城乡分类", "kind"),
    "rep_lon": ("rep_lon", "经度", "lon", "lng", "long", "longitude", "x"),
    "rep_lat": ("rep_lat", "纬度", "lat", "latitude", "y"),
}

#: Values of a ``setting``/``类型`` column and what they mean.
SETTING_VALUES: dict[str, str] = {
    "urban": "urban", "rural": "rural", "mountain": "mountain", "community": "urban", "village": "rural",
    "城镇": "urban", "城市": "urban", "社区": "urban", "居委会": "urban", "农村": "rural", "村": "rural",
    "乡村": "rural", "山区": "mountain", "山村": "mountain",
}

MissingPopulation = Literal["raise", "uniform"]


def _normalise_header(text: str) -> str:
    return re.sub(r"[\s_\-（）()【】\[\]/、,.:：]", "", str(text).strip().lower())


def match_columns(columns) -> dict[str, str]:
    """Map contract columns to the file's headers, e.g. ``{"unit_id": "统计用区划代码", "name": "村名"}``."""
    normalised = {_normalise_header(c): c for c in columns}
    found: dict[str, str] = {}
    used: set[str] = set()
    for target, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            original = normalised.get(_normalise_header(alias))
            if original is not None and original not in used:
                found[target] = original
                used.add(original)
                break
    return found


# ----------------------------------------------------------------------------------------------- reading
def _read_table(source, name: str) -> pd.DataFrame:
    raw = source.read() if hasattr(source, "read") else Path(source).read_bytes()
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    last_error: Exception | None = None
    # Chinese offices still save CSV as GBK from Excel; UTF-8 with a BOM is the other common case
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        sep = "\t" if text.split("\n", 1)[0].count("\t") > text.split("\n", 1)[0].count(",") else ","
        return pd.read_csv(io.StringIO(text), dtype=str, sep=sep, keep_default_na=False, na_values=[""])
    raise InputError(f"{name} is not a readable text table",
                     [Problem(f"not UTF-8 or GBK/GB18030 text ({last_error})", code="encoding")])


def _read_spatial(source, name: str) -> gpd.GeoDataFrame:
    import pyogrio

    data = source.read() if hasattr(source, "read") else None
    try:
        with warnings.catch_warnings():
            # an upload read from memory has no file extension, which GDAL mentions for GeoPackages
            warnings.filterwarnings("ignore", message=".*non conformant file extension.*")
            frame = pyogrio.read_dataframe(io.BytesIO(data) if data is not None else source)
    except Exception as exc:  # pyogrio raises several driver-specific types
        raise InputError(f"{name} could not be read as a spatial file",
                         [Problem(str(exc), code="unreadable")]) from exc
    if frame.crs is None:
        frame = frame.set_crs(CRS)
    return frame.to_crs(CRS)


def _as_text_code(value) -> str | None:
    """A code as text without float artefacts: 330281001001.0 → "330281001001"."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or value is pd.NA:
        return None
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    return text or None


# ----------------------------------------------------------------------------------------------- thiessen
def thiessen_polygons(points: gpd.GeoSeries, boundary: BaseGeometry) -> np.ndarray:
    """Voronoi polygons of ``points`` clipped to ``boundary``, in the points' order.

    Computed in a local equal-area projection (Voronoi cells in degrees are skewed by latitude). Points sharing
    the same coordinates share one polygon.
    """
    from geo.grid import local_equal_area_crs

    laea = local_equal_area_crs(boundary.union(shapely.MultiPoint(np.asarray(points.values))).envelope)
    pts = np.asarray(points.to_crs(laea).values)
    clip = gpd.GeoSeries([boundary], crs=CRS).to_crs(laea).iloc[0]
    xy = shapely.get_coordinates(pts)
    unique_xy, inverse = np.unique(xy.round(3), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    if len(unique_xy) == 1:
        cells = np.array([clip])
    else:
        extent = shapely.box(*shapely.MultiPoint(unique_xy).union(clip).bounds).buffer(10_000)
        regions = shapely.voronoi_polygons(shapely.MultiPoint(unique_xy), extend_to=extent, ordered=True)
        cells = shapely.intersection(np.asarray(regions.geoms), clip)
    return np.asarray(gpd.GeoSeries(cells[inverse], crs=laea).to_crs(CRS).values)


# ----------------------------------------------------------------------------------------------- main entry
def read_unit_file(
    source: str | Path | BinaryIO,
    *,
    filename: str | None = None,
    boundary=None,
    extent=None,
    missing_population: MissingPopulation = "raise",
    road_nodes_xy: np.ndarray | None = None,
) -> tuple[gpd.GeoDataFrame, Report]:
    """Read a planner's unit file into the ``units`` contract.

    Parameters
    ----------
    source : path or binary file-like
        GeoJSON / GeoPackage / Shapefile (zip) / CSV. An uploaded file object needs ``filename``.
    filename : str, optional
        Name used to detect the format and in messages (defaults to the path's name).
    boundary : GeoDataFrame, GeoSeries or shapely geometry, optional
        Clips Thiessen polygons of a points-only file. Without it the points' convex hull, widened by the
        median distance between neighbouring points, is used (and the report says so).
    extent : shapely geometry or GeoDataFrame, optional
        E.g. the road network's extent; units whose representative point lies outside are flagged
        (``outside_extent`` column and a warning per unit), never dropped.
    missing_population : {"raise", "uniform"}
        What to do when the file has no population column: raise :class:`InputError` (default), or give every
        unit the weight 1 (the report records the choice).
    road_nodes_xy : numpy.ndarray, optional
        Road node lon/lat; when given, polygon units' representative points are placed on the road as in
        :func:`geo.grid.place_representative_points`.

    Returns
    -------
    (GeoDataFrame, Report)
        Units in EPSG:4326 with :data:`geo.schema.UNIT_COLUMNS`, ``outside_extent`` and polygon geometry; and
        the warnings found.

    Raises
    ------
    InputError
        Listing every problem: unreadable file, missing coordinates, duplicate codes, bad numbers, a missing
        population column (with the ``missing_population="uniform"`` alternative named).
    """
    name = filename or (Path(source).name if isinstance(source, (str, Path)) else "uploaded file")
    suffix = Path(name).suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        table = _read_table(source, name)
        geometry = None
    elif suffix in (".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb", ".kml"):
        spatial = _read_spatial(source, name)
        table = pd.DataFrame(spatial.drop(columns="geometry"))
        geometry = np.asarray(spatial.geometry.values)
    else:
        raise InputError(f"{name}: unsupported file type {suffix or '(none)'}",
                         [Problem("use GeoJSON, GeoPackage, Shapefile (.zip) or CSV with 经度/纬度 columns",
                                  code="file_type")])
    report = Report()
    units = _build_units(table, geometry, name=name, report=report, boundary=boundary,
                         missing_population=missing_population)
    if road_nodes_xy is not None:
        from geo.grid import place_representative_points

        polygon_rows = ~units["_from_point"].to_numpy()
        if polygon_rows.any():
            placed = place_representative_points(units.loc[polygon_rows], road_nodes_xy=road_nodes_xy)
            units.loc[polygon_rows, ["rep_lon", "rep_lat"]] = placed[["rep_lon", "rep_lat"]].to_numpy()
    units = units.drop(columns="_from_point")
    units["outside_extent"] = _flag_outside(units, extent, report)
    extra = [c for c in units.columns if c not in UNIT_COLUMNS and c != "geometry"]
    return units[list(UNIT_COLUMNS) + extra + ["geometry"]], report


def _numeric(values: pd.Series, column: str, label: str, problems: list[Problem]) -> np.ndarray:
    text = values.astype("string").str.replace(",", "", regex=False).str.replace("，", "", regex=False).str.strip()
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    for i in np.flatnonzero(~np.isfinite(numbers) | (numbers < 0)):
        problems.append(Problem(f"{label} must be a number ≥ 0", row=int(i) + 1, column=column, value=values.iloc[i],
                                code=f"bad_{label}"))
    return numbers


def _build_units(table: pd.DataFrame, geometry, *, name: str, report: Report, boundary,
                 missing_population: MissingPopulation) -> gpd.GeoDataFrame:
    problems: list[Problem] = []
    columns = match_columns(table.columns)
    n = len(table)
    if n == 0:
        raise InputError(f"{name} has no rows", [Problem("the file is empty", code="empty")])

    # ids: codes stay text
    if "unit_id" in columns:
        ids = table[columns["unit_id"]].map(_as_text_code)
        for i in np.flatnonzero(ids.isna().to_numpy()):
            problems.append(Problem("missing unit code", row=int(i) + 1, column=columns["unit_id"], code="missing_id"))
        dup = ids.duplicated(keep="first") & ids.notna()
        for i in np.flatnonzero(dup.to_numpy()):
            first = int(np.flatnonzero((ids == ids.iloc[i]).to_numpy())[0]) + 1
            problems.append(Problem(f"duplicate unit code (also in row {first})", row=int(i) + 1,
                                    column=columns["unit_id"], value=ids.iloc[i], code="duplicate_id"))
    else:
        ids = pd.Series([f"U{i + 1:05d}" for i in range(n)])
        report.add("no code column (统计用区划代码/行政区划代码/code): units numbered U00001… in file order",
                   severity="warning", code="generated_ids")

    names = table[columns["name"]].fillna("").astype(str).str.strip() if "name" in columns else ids.fillna("")
    townships = table[columns["township"]].fillna("").astype(str).str.strip() if "township" in columns \
        else pd.Series([""] * n)

    # population and demand
    if "population" in columns:
        population = _numeric(table[columns["population"]], columns["population"], "population", problems)
    elif missing_population == "uniform":
        population = np.ones(n)
        report.add("no population column: every unit weighs 1 (missing_population='uniform'); shares of population "
                   "are shares of units", severity="warning", code="uniform_population")
    else:
        problems.append(Problem(
            "the file has no population column (人口/常住人口/population); add one, or choose a uniform weight "
            "(missing_population='uniform') so every unit counts the same",
            column="population", code="missing_population"))
        population = np.zeros(n)
    if "demand" in columns:
        demand = _numeric(table[columns["demand"]], columns["demand"], "demand", problems)
    else:
        demand = population * settings.eligible_rate

    # setting: an explicit column where its value is known, else 社区/居委会 in the name → urban, 村 → rural
    urban = names.str.contains("社区|居委会|居民委员会", regex=True)
    guessed = pd.Series(np.where(urban, "urban", "rural"))
    if "setting" in columns:
        raw = table[columns["setting"]].fillna("").astype(str).str.strip()
        setting = raw.str.lower().map(SETTING_VALUES)
        unknown = setting.isna().to_numpy()
        for i in np.flatnonzero(unknown):
            report.add(f"setting {raw.iloc[i]!r} is not one of {SETTINGS}; {guessed.iloc[i]} assumed from the name",
                       row=int(i) + 1, column=columns["setting"], value=raw.iloc[i], severity="warning",
                       code="guessed_setting")
        setting = setting.where(~unknown, guessed)
    else:
        setting = guessed

    # geometry: the file's own, else points from the coordinate columns
    from_point = np.zeros(n, dtype=bool)
    if geometry is None:
        if "rep_lon" not in columns or "rep_lat" not in columns:
            problems.append(Problem("no coordinates: add 经度/纬度 (longitude/latitude) columns, or upload GeoJSON/"
                                    "GeoPackage with geometry", column="经度/纬度", code="missing_coordinates"))
            raise InputError(f"{name} cannot be used as planning units", problems)
        lon = _coordinates(table[columns["rep_lon"]], columns["rep_lon"], problems, 180.0)
        lat = _coordinates(table[columns["rep_lat"]], columns["rep_lat"], problems, 90.0)
        swapped = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) > 90) & (np.abs(lon) <= 90)
        for i in np.flatnonzero(swapped):
            problems.append(Problem("latitude out of range: are 经度 and 纬度 swapped?", row=int(i) + 1,
                                    column=columns["rep_lat"], value=lat[i], code="swapped_coordinates"))
        geometry = shapely.points(np.column_stack([lon, lat]))
    else:
        geometry = np.asarray(geometry, dtype=object)
        for i in np.flatnonzero(pd.isna(geometry) | shapely.is_empty(geometry)):
            problems.append(Problem("row has no geometry", row=int(i) + 1, column="geometry", code="missing_geometry"))
    if problems:
        raise InputError(f"{name} cannot be used as planning units", problems)

    kinds = set(shapely.get_type_id(geometry).tolist())
    point_kinds, polygon_kinds = {0, 4}, {3, 6}
    if kinds <= point_kinds:
        geometry = shapely.get_geometry(geometry, 0)  # a MultiPoint village is its first point
        from_point[:] = True
    elif not kinds <= polygon_kinds:
        raise InputError(f"{name} mixes geometry types",
                         [Problem("give either all polygons or all points (lines cannot be planning units)",
                                  code="mixed_geometry")])
    if from_point.all():
        rep = geometry
        clip = _thiessen_boundary(geometry, boundary, report)
        polygons = thiessen_polygons(gpd.GeoSeries(geometry, crs=CRS), clip)
        outside = ~shapely.contains(clip, geometry)
        for i in np.flatnonzero(outside):
            report.add("point lies outside the boundary; its Thiessen polygon is the nearest part of the boundary",
                       row=int(i) + 1, severity="warning", code="point_outside_boundary")
        dup = pd.Series(list(map(tuple, shapely.get_coordinates(geometry).round(6)))).duplicated(keep=False)
        for i in np.flatnonzero(dup.to_numpy()):
            report.add("same coordinates as another unit: both share one Thiessen polygon", row=int(i) + 1,
                       severity="warning", code="duplicate_coordinates")
        geometry = polygons
    else:
        geometry = shapely.make_valid(geometry)
        rep = shapely.point_on_surface(geometry)
        # Polygons that come with their own centre (a village's seat, as the demo region's units do) keep it:
        # it is where people live, which a computed point inside the polygon is not.
        if "rep_lon" in columns and "rep_lat" in columns:
            lon = pd.to_numeric(table[columns["rep_lon"]], errors="coerce").to_numpy(float)
            lat = pd.to_numeric(table[columns["rep_lat"]], errors="coerce").to_numpy(float)
            given = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
            rep = np.where(given, shapely.points(np.where(given, lon, 0.0), np.where(given, lat, 0.0)), rep)
            from_point = from_point | given
    units = gpd.GeoDataFrame({
        "unit_id": ids.astype(str).to_numpy(), "name": names.to_numpy(), "township": townships.to_numpy(),
        "setting": setting.to_numpy(), "population": population, "demand": demand,
        "rep_lon": shapely.get_x(rep), "rep_lat": shapely.get_y(rep), "_from_point": from_point,
    }, geometry=geometry, crs=CRS)
    return units


def _coordinates(values: pd.Series, column: str, problems: list[Problem], limit: float) -> np.ndarray:
    numbers = pd.to_numeric(values.astype("string").str.strip(), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    for i in np.flatnonzero(~np.isfinite(numbers)):
        problems.append(Problem("missing or non-numeric coordinate", row=int(i) + 1, column=column,
                                value=values.iloc[i], code="bad_coordinate"))
    for i in np.flatnonzero(np.isfinite(numbers) & (np.abs(numbers) > max(limit, 180.0))):
        problems.append(Problem(f"coordinate out of range (±{limit:g}); is it projected metres instead of degrees?",
                                row=int(i) + 1, column=column, value=numbers[i], code="bad_coordinate"))
    return numbers


def _thiessen_boundary(points: np.ndarray, boundary, report: Report) -> BaseGeometry:
    if boundary is not None:
        from geo.grid import _boundary_geometry

        return _boundary_geometry(boundary)
    from geo.grid import local_equal_area_crs
    from scipy.spatial import cKDTree

    laea = local_equal_area_crs(shapely.MultiPoint(list(points)).envelope)
    projected = gpd.GeoSeries(points, crs=CRS).to_crs(laea)
    xy = shapely.get_coordinates(np.asarray(projected.values))
    if len(xy) > 1:
        dist, _ = cKDTree(xy).query(xy, k=2)
        spacing = float(np.median(dist[:, 1])) or 1000.0
    else:
        spacing = 1000.0
    hull = shapely.MultiPoint(xy).convex_hull.buffer(spacing)
    report.add(f"no boundary given: Thiessen polygons are clipped to the points' hull widened by "
               f"{spacing:,.0f} m (the median distance between neighbouring units)", severity="warning",
               code="no_boundary")
    return gpd.GeoSeries([hull], crs=laea).to_crs(CRS).iloc[0]


def _flag_outside(units: gpd.GeoDataFrame, extent, report: Report) -> np.ndarray:
    if extent is None:
        return np.zeros(len(units), dtype=bool)
    if isinstance(extent, (gpd.GeoDataFrame, gpd.GeoSeries)):
        extent = shapely.union_all(np.asarray(extent.to_crs(CRS).geometry.values))
    outside = ~shapely.contains_xy(extent, units["rep_lon"].to_numpy(), units["rep_lat"].to_numpy())
    for i in np.flatnonzero(outside):
        report.add("unit lies outside the road network's extent: its travel times will be unreachable (inf)",
                   row=int(i) + 1, column="unit_id", value=units["unit_id"].iloc[i], severity="warning",
                   code="outside_extent")
    return outside
