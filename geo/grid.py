"""Regular planning grids: H3 hexagons or metric squares covering a boundary, with population and road-side points.

A grid is the second kind of planning unit beside administrative villages: every cell becomes one row of the
``units`` contract (:mod:`geo.schema`), so coverage, accessibility and allocation treat both the same way.

The pipeline is

1. :func:`count_grid_cells` — how many cells a request would make, computed *before* any polygon is built so
   that an over-fine resolution is refused with the count (``geo.settings.max_grid_cells``);
2. :func:`build_grid` — the cells, covering the whole boundary (a cell that touches the boundary is kept);
3. :func:`interpolate_population` — population moved from a source layer (e.g. parishes with census totals)
   onto the cells by area or by building footprint, the total conserved;
4. :func:`place_representative_points` — one point per cell on land near the road network.

:func:`build_grid_units` runs the four steps and returns a frame that follows the ``units`` contract.
"""

from __future__ import annotations

import math
from typing import Literal

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geo import settings
from geo.errors import InputError, Problem
from geo.schema import CRS, UNIT_COLUMNS

GridKind = Literal["h3", "square"]

#: H3 resolutions accepted (the library's full range).
H3_RESOLUTIONS = range(0, 16)


# ----------------------------------------------------------------------------------------------- helpers
def _boundary_geometry(boundary) -> BaseGeometry:
    """One (multi)polygon in EPSG:4326 from a GeoDataFrame, GeoSeries or shapely geometry."""
    if isinstance(boundary, (gpd.GeoDataFrame, gpd.GeoSeries)):
        frame = boundary if boundary.crs is not None else boundary.set_crs(CRS)
        geom = shapely.union_all(np.asarray(frame.to_crs(CRS).geometry.values))
    elif isinstance(boundary, BaseGeometry):
        geom = boundary
    else:
        raise InputError("boundary must be a GeoDataFrame, GeoSeries or shapely polygon",
                         [Problem(f"got {type(boundary).__name__}", code="boundary_type")])
    geom = shapely.make_valid(geom)
    polys = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polys or geom.is_empty:
        raise InputError("boundary has no polygon area", [Problem("empty or non-polygon boundary", code="boundary_empty")])
    return shapely.union_all(polys)


def local_equal_area_crs(geometry) -> str:
    """A Lambert azimuthal equal-area CRS centred on ``geometry`` (areas and metres stay true locally).

    ``geometry`` may be a shapely geometry, a GeoDataFrame/GeoSeries (in any CRS) or EPSG:4326 bounds.
    """
    if isinstance(geometry, (gpd.GeoDataFrame, gpd.GeoSeries)):
        minx, miny, maxx, maxy = geometry.to_crs(CRS).total_bounds
    elif isinstance(geometry, BaseGeometry):
        minx, miny, maxx, maxy = geometry.bounds
    else:
        minx, miny, maxx, maxy = geometry
    lon0, lat0 = (minx + maxx) / 2.0, (miny + maxy) / 2.0
    return f"+proj=laea +lat_0={lat0:.6f} +lon_0={lon0:.6f} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"


def _project(geometry: BaseGeometry, crs: str) -> BaseGeometry:
    return gpd.GeoSeries([geometry], crs=CRS).to_crs(crs).iloc[0]


def _validate_grid_request(kind: str, resolution: int | None, cell_size_m: float | None) -> None:
    problems: list[Problem] = []
    if kind not in ("h3", "square"):
        problems.append(Problem(f"grid kind must be 'h3' or 'square', got {kind!r}", column="kind", value=kind))
    if kind == "h3":
        if resolution is None or int(resolution) != resolution or int(resolution) not in H3_RESOLUTIONS:
            problems.append(Problem(f"H3 resolution must be an integer 0–15, got {resolution!r}",
                                    column="resolution", value=resolution))
    if kind == "square":
        if cell_size_m is None or not np.isfinite(cell_size_m) or cell_size_m <= 0:
            problems.append(Problem(f"square cell size must be a positive number of metres, got {cell_size_m!r}",
                                    column="cell_size_m", value=cell_size_m))
    if problems:
        raise InputError("invalid grid request", problems)


def _h3_shape(geometry: BaseGeometry):
    return h3.geo_to_h3shape(shapely.geometry.mapping(geometry))


def _h3_cells(geometry: BaseGeometry, resolution: int) -> list[str]:
    # "overlap" keeps every cell touching the boundary: centre containment would leave border slivers of the
    # county, and their residents, outside every unit.
    return list(h3.h3shape_to_cells_experimental(_h3_shape(geometry), int(resolution), contain="overlap"))


def _h3_polygons(ids: list[str]) -> np.ndarray:
    """Cell polygons built in one vectorised call (a Python Polygon per cell is 10× slower)."""
    rings = [h3.cell_to_boundary(c) for c in ids]
    sizes = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
    # cell_to_boundary gives (lat, lng) pairs; shapely wants (x=lng, y=lat)
    latlng = np.array([p for r in rings for p in r], dtype=float).reshape(-1, 2)
    ring_index = np.repeat(np.arange(len(rings)), sizes)
    return shapely.polygons(shapely.linearrings(latlng[:, ::-1], indices=ring_index))


def _square_origin(projected: BaseGeometry, cell_size_m: float) -> tuple[float, float, int, int]:
    minx, miny, maxx, maxy = projected.bounds
    x0 = math.floor(minx / cell_size_m) * cell_size_m
    y0 = math.floor(miny / cell_size_m) * cell_size_m
    ncols = max(1, math.ceil((maxx - x0) / cell_size_m))
    nrows = max(1, math.ceil((maxy - y0) / cell_size_m))
    return x0, y0, ncols, nrows


def _square_cells(projected: BaseGeometry, cell_size_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and box of every square touching ``projected``, scanned row by row to bound memory."""
    x0, y0, ncols, nrows = _square_origin(projected, cell_size_m)
    shapely.prepare(projected)
    rows, cols, boxes = [], [], []
    xs = x0 + np.arange(ncols) * cell_size_m
    for r in range(nrows):
        y = y0 + r * cell_size_m
        band = shapely.box(xs, y, xs + cell_size_m, y + cell_size_m)
        hit = shapely.intersects(band, projected)
        if hit.any():
            idx = np.flatnonzero(hit)
            rows.append(np.full(idx.size, r))
            cols.append(idx)
            boxes.append(band[idx])
    if not rows:
        return np.empty(0, int), np.empty(0, int), np.empty(0, object)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(boxes)


# ----------------------------------------------------------------------------------------------- counting
def count_grid_cells(
    boundary,
    *,
    kind: GridKind = "h3",
    resolution: int | None = None,
    cell_size_m: float | None = None,
) -> int:
    """Number of cells a grid request would produce, without building any cell polygon.

    The exact count of cells touching the boundary (H3 ids, or squares scanned row by row) is returned when
    the area estimate is within 1.25 × ``geo.settings.max_grid_cells``; beyond that the estimate itself
    (boundary area / mean cell area, plus one ring of border cells; within a few percent of the exact count)
    is returned, which is enough to refuse.

    Parameters
    ----------
    boundary : GeoDataFrame, GeoSeries or shapely geometry
        The region to cover, in EPSG:4326 (or with a CRS set).
    kind : {"h3", "square"}
    resolution : int, optional
        H3 resolution 0–15 (for ``kind="h3"``).
    cell_size_m : float, optional
        Square side in metres (for ``kind="square"``).

    Returns
    -------
    int
    """
    return _plan_cells(boundary, kind=kind, resolution=resolution, cell_size_m=cell_size_m)[0]


def _plan_cells(boundary, *, kind, resolution, cell_size_m):
    """``(count, cells)``: ``cells`` holds the exact cell ids/boxes, or is ``None`` when the area estimate alone
    is far enough over the limit to refuse (enumerating 10⁷ ids just to refuse them takes minutes)."""
    _validate_grid_request(kind, resolution, cell_size_m)
    geometry = _boundary_geometry(boundary)
    projected = _project(geometry, local_equal_area_crs(geometry))
    refuse_above = 1.25 * settings.max_grid_cells
    if kind == "h3":
        cell_area = h3.average_hexagon_area(int(resolution), unit="m^2")
        edge = h3.average_hexagon_edge_length(int(resolution), unit="m")
        estimate = projected.area / cell_area + projected.length / (1.5 * edge)
        if estimate > refuse_above:
            return int(math.ceil(estimate)), None
        ids = _h3_cells(geometry, int(resolution))
        return len(ids), ids
    x0, y0, ncols, nrows = _square_origin(projected, float(cell_size_m))
    estimate = projected.area / cell_size_m**2 + projected.length / cell_size_m
    if ncols * nrows > settings.max_grid_cells and estimate > refuse_above:
        return int(math.ceil(estimate)), None
    squares = _square_cells(projected, float(cell_size_m))
    return len(squares[0]), squares


def _refuse_if_too_many(count: int, kind: str, resolution, cell_size_m, *, exact: bool) -> None:
    if count > settings.max_grid_cells:
        what = f"H3 resolution {resolution}" if kind == "h3" else f"{cell_size_m:g} m squares"
        about = "" if exact else "about "
        raise InputError(
            f"grid refused: {what} would make {about}{count:,} cells, over the limit of {settings.max_grid_cells:,} "
            f"(geo.settings.max_grid_cells); choose a coarser resolution or larger cells",
            [Problem(f"{count:,} cells requested", column="resolution" if kind == "h3" else "cell_size_m",
                     value=resolution if kind == "h3" else cell_size_m, code="too_many_cells")],
        )


# ----------------------------------------------------------------------------------------------- building
def build_grid(
    boundary,
    *,
    kind: GridKind = "h3",
    resolution: int | None = None,
    cell_size_m: float | None = None,
    townships: gpd.GeoDataFrame | None = None,
    township_column: str = "name",
) -> gpd.GeoDataFrame:
    """Cells covering ``boundary``: H3 hexagons at ``resolution`` or squares of ``cell_size_m`` metres.

    Every cell touching the boundary is kept whole (not clipped), so the grid covers all of the region.
    The count is checked against ``geo.settings.max_grid_cells`` before any polygon is built.

    Parameters
    ----------
    boundary : GeoDataFrame, GeoSeries or shapely geometry
        The region to cover.
    kind : {"h3", "square"}
    resolution : int, optional
        H3 resolution (required for ``kind="h3"``).
    cell_size_m : float, optional
        Square side in metres (required for ``kind="square"``).
    townships : GeoDataFrame, optional
        Township (乡镇/街道) polygons; each cell takes the township containing its centre, or the nearest one
        for border cells whose centre falls outside every township.
    township_column : str
        Column of ``townships`` holding the township name.

    Returns
    -------
    GeoDataFrame
        ``unit_id`` (H3 index, or ``sq<size>_<row>_<col>``), ``name``, ``township``, ``area_km2`` and cell
        polygons in EPSG:4326.

    Raises
    ------
    InputError
        For an invalid request, or a grid over the cell limit (the message gives the count).
    """
    count, planned = _plan_cells(boundary, kind=kind, resolution=resolution, cell_size_m=cell_size_m)
    _refuse_if_too_many(count, kind, resolution, cell_size_m, exact=planned is not None)
    geometry = _boundary_geometry(boundary)
    laea = local_equal_area_crs(geometry)
    if kind == "h3":
        ids = sorted(planned)
        cells = gpd.GeoDataFrame({"unit_id": ids}, geometry=_h3_polygons(ids), crs=CRS)
    else:
        size = float(cell_size_m)
        rows, cols, boxes = planned
        ids = [f"sq{size:g}_{r}_{c}" for r, c in zip(rows, cols)]
        cells = gpd.GeoDataFrame({"unit_id": ids}, geometry=boxes, crs=laea).to_crs(CRS)
    cells["name"] = cells["unit_id"]
    cells["area_km2"] = cells.to_crs(laea).area.to_numpy() / 1e6
    cells["township"] = assign_townships(cells, townships, column=township_column) if townships is not None else ""
    return cells[["unit_id", "name", "township", "area_km2", "geometry"]]


def assign_townships(units: gpd.GeoDataFrame, townships: gpd.GeoDataFrame, *, column: str = "name") -> pd.Series:
    """Township of each unit: the polygon containing the unit's centre, else the nearest polygon.

    Parameters
    ----------
    units : GeoDataFrame
    townships : GeoDataFrame
        Polygons with a name ``column``.
    column : str

    Returns
    -------
    pandas.Series
        Township names aligned on ``units.index``.
    """
    if column not in townships.columns:
        raise InputError("township layer has no name column",
                         [Problem(f"column {column!r} not found; have {list(townships.columns)}", column=column)])
    laea = local_equal_area_crs(units)
    centres = gpd.GeoDataFrame(geometry=units.to_crs(laea).geometry.centroid, crs=laea)
    centres["_pos"] = np.arange(len(centres))
    town = townships[[column, "geometry"]].to_crs(laea).rename(columns={column: "_township"})
    inside = gpd.sjoin(centres, town, how="left", predicate="within").drop_duplicates("_pos")
    names = inside.set_index("_pos")["_township"].reindex(np.arange(len(centres)))
    missing = names.isna().to_numpy()
    if missing.any():
        nearest = gpd.sjoin_nearest(centres[missing], town, how="left").drop_duplicates("_pos")
        names.loc[nearest["_pos"].to_numpy()] = nearest["_township"].to_numpy()
    return pd.Series(names.astype(str).to_numpy(), index=units.index, name="township")


# ----------------------------------------------------------------------------------------------- population
def _validate_population_source(source: gpd.GeoDataFrame, column: str) -> None:
    problems: list[Problem] = []
    if column not in source.columns:
        problems.append(Problem(f"population column {column!r} not in the source layer "
                                f"(columns: {list(source.columns)})", column=column, code="missing_population"))
    else:
        values = pd.to_numeric(source[column], errors="coerce")
        for i in np.flatnonzero(values.isna().to_numpy() | (values.to_numpy(dtype=float, na_value=np.nan) < 0)):
            problems.append(Problem("population must be a number ≥ 0", row=int(i) + 1, column=column,
                                    value=source[column].iloc[i], code="bad_population"))
    if source.crs is None:
        problems.append(Problem("source layer has no CRS", code="no_crs"))
    if problems:
        raise InputError("population source cannot be used", problems)


def interpolate_population(
    units: gpd.GeoDataFrame,
    source: gpd.GeoDataFrame,
    *,
    column: str = "population",
    method: Literal["area", "building"] = "area",
    buildings: gpd.GeoDataFrame | None = None,
    building_weight: str | None = None,
) -> pd.Series:
    """Move population from ``source`` polygons onto ``units`` so that the total is conserved.

    ``"area"``: each source polygon's population is split over the units in proportion to the area they share
    with it, normalised by the part of the polygon the units cover (so a grid that does not reach a corner of a
    parish still receives all of that parish's people).

    A source of *points* (e.g. the demo region's residential buildings, each carrying its population
    estimate) is aggregated directly: each point's population goes to the unit containing it, or the nearest
    unit if it lies outside all of them; ``method`` is then irrelevant.

    ``"building"`` (dasymetric): each source polygon's population is split over the buildings inside it in
    proportion to footprint area (points count as one each, or ``building_weight`` if given), and each
    building's share goes to the unit containing its centroid. A source polygon without any building falls back
    to area weighting, so no one is lost.

    Parameters
    ----------
    units : GeoDataFrame
        Target polygons.
    source : GeoDataFrame
        Polygons with a population ``column`` (e.g. parishes or townships with census totals).
    column : str
    method : {"area", "building"}
    buildings : GeoDataFrame, optional
        Building footprints or points (required for ``method="building"``).
    building_weight : str, optional
        Column of ``buildings`` to weight by (e.g. floors × area) instead of footprint area.

    Returns
    -------
    pandas.Series
        Population per unit, aligned on ``units.index``; its sum equals the source total within float rounding.

    Raises
    ------
    InputError
        If the source has no usable population, ``method="building"`` has no buildings, or some source polygon
        with people touches no unit (its people would be lost).
    """
    _validate_population_source(source, column)
    if method not in ("area", "building"):
        raise InputError("unknown interpolation method", [Problem(f"method must be 'area' or 'building', got {method!r}")])
    if method == "building" and (buildings is None or len(buildings) == 0):
        raise InputError("building-weighted interpolation needs a buildings layer",
                         [Problem("buildings is empty or missing; pass buildings= or use method='area'")])
    laea = local_equal_area_crs(source)
    target = np.asarray(units.to_crs(laea).geometry.values)
    src_geom = np.asarray(source.to_crs(laea).geometry.values)
    src_pop = pd.to_numeric(source[column]).to_numpy(dtype=float)
    result = np.zeros(len(target))
    if len(src_geom) and (shapely.get_type_id(src_geom) == 0).all():
        return _aggregate_points(target, src_geom, src_pop, units.index)

    area_weighted = np.ones(len(src_geom), dtype=bool)
    if method == "building":
        b = buildings.to_crs(laea)
        geoms = np.asarray(b.geometry.values)
        weight = (pd.to_numeric(b[building_weight]).to_numpy(dtype=float) if building_weight
                  else np.where(shapely.area(geoms) > 0, shapely.area(geoms), 1.0))
        points = shapely.centroid(geoms)
        src_hit = shapely.STRtree(src_geom).query(points, predicate="within")
        # a building on a shared border counts once, in the first polygon found
        b_idx, s_idx = src_hit
        first = np.unique(b_idx, return_index=True)[1]
        b_idx, s_idx = b_idx[first], s_idx[first]
        unit_hit = shapely.STRtree(target).query(points[b_idx], predicate="intersects")
        keep = np.unique(unit_hit[0], return_index=True)[1]
        k_b, k_u = unit_hit[0][keep], unit_hit[1][keep]
        b_src = s_idx[k_b]
        b_w = weight[b_idx][k_b]
        per_source = np.bincount(b_src, weights=b_w, minlength=len(src_geom))
        has_buildings = per_source > 0
        share = np.divide(b_w, per_source[b_src], out=np.zeros_like(b_w), where=per_source[b_src] > 0)
        np.add.at(result, k_u, share * src_pop[b_src])
        area_weighted = ~has_buildings

    lost: list[Problem] = []
    if area_weighted.any():
        src_idx = np.flatnonzero(area_weighted)
        pairs = shapely.STRtree(target).query(src_geom[src_idx], predicate="intersects")
        s_local, u_idx = pairs
        s_idx = src_idx[s_local]
        inter = shapely.area(shapely.intersection(src_geom[s_idx], target[u_idx]))
        covered = np.bincount(s_idx, weights=inter, minlength=len(src_geom))
        ok = covered[s_idx] > 0
        np.add.at(result, u_idx[ok], inter[ok] / covered[s_idx[ok]] * src_pop[s_idx[ok]])
        for s in src_idx[(covered[src_idx] <= 0) & (src_pop[src_idx] > 0)]:
            lost.append(Problem(f"source polygon with population {src_pop[s]:,.0f} touches no unit",
                                row=int(s) + 1, column=column, code="population_lost"))
    if lost:
        raise InputError("population would be lost: extend the units to cover every populated source polygon", lost)
    return pd.Series(result, index=units.index, name="population")


def _aggregate_points(target: np.ndarray, points: np.ndarray, population: np.ndarray, index) -> pd.Series:
    """Point sources (e.g. buildings carrying a population estimate) go whole to the unit that holds them; a
    point outside every unit goes to the nearest one, so the total is kept."""
    pt_i, unit_j = shapely.STRtree(target).query(points, predicate="intersects")
    first = np.unique(pt_i, return_index=True)[1]
    owner = np.full(len(points), -1, dtype=np.int64)
    owner[pt_i[first]] = unit_j[first]
    stray = np.flatnonzero(owner < 0)
    if stray.size:
        owner[stray] = shapely.STRtree(target).query_nearest(points[stray], all_matches=False)[1]
    result = np.bincount(owner, weights=population, minlength=len(target))
    return pd.Series(result, index=index, name="population")


# ----------------------------------------------------------------------------------------------- rep. points
def place_representative_points(units: gpd.GeoDataFrame, *, road_nodes_xy: np.ndarray) -> gpd.GeoDataFrame:
    """Put each unit's representative point on land near the road network.

    The point is the road node inside the unit's polygon that lies closest to the polygon's own representative
    point (the cell "centre" moved onto a road, so the access leg is short and the point is never in the middle
    of an unroaded slope); a unit with no road node inside keeps the polygon's ``representative_point``, which
    is always inside the polygon. The foundation engine adds the off-network access leg from there.

    Parameters
    ----------
    units : GeoDataFrame
        Unit polygons (points are kept as they are).
    road_nodes_xy : numpy.ndarray
        ``(n, 2)`` longitude/latitude of the road graph's nodes (EPSG:4326).

    Returns
    -------
    GeoDataFrame
        A copy of ``units`` with ``rep_lon``, ``rep_lat`` and ``rep_source`` (``"road_node"``, or
        ``"polygon_edge_near_road"`` for a unit with no road node inside: its point nearest to a road).
    """
    nodes = np.asarray(road_nodes_xy, dtype=float).reshape(-1, 2)
    out = units.copy()
    geoms = np.asarray(units.to_crs(CRS).geometry.values)
    fallback = shapely.point_on_surface(geoms)
    rep_x = shapely.get_x(fallback)
    rep_y = shapely.get_y(fallback)
    source = np.full(len(geoms), "polygon", dtype=object)
    if len(nodes) and len(geoms):
        laea = local_equal_area_crs(shapely.total_bounds(geoms))
        node_pts = np.asarray(gpd.GeoSeries(shapely.points(nodes), crs=CRS).to_crs(laea).values)
        polys = np.asarray(gpd.GeoSeries(geoms, crs=CRS).to_crs(laea).values)
        centres = np.asarray(gpd.GeoSeries(fallback, crs=CRS).to_crs(laea).values)
        unit_i, node_j = shapely.STRtree(node_pts).query(polys, predicate="contains")
        if unit_i.size:
            dist = shapely.distance(node_pts[node_j], centres[unit_i])
            order = np.lexsort((dist, unit_i))
            first = order[np.unique(unit_i[order], return_index=True)[1]]
            best_unit, best_node = unit_i[first], node_j[first]
            rep_x[best_unit] = nodes[best_node, 0]
            rep_y[best_unit] = nodes[best_node, 1]
            source[best_unit] = "road_node"
        # No road node inside: the point of the polygon nearest to the nearest road point, so the access leg is
        # as short as the polygon allows instead of starting from an interior point up a roadless slope.
        rest = np.flatnonzero(source == "polygon")
        if rest.size:
            poly_i, node_k = shapely.STRtree(node_pts).query_nearest(polys[rest], all_matches=False)
            # 1 m inside the border, so the point is strictly within the unit.
            inner = shapely.buffer(polys[rest][poly_i], -1.0)
            inner = np.where(shapely.is_empty(inner), polys[rest][poly_i], inner)
            edge_pts = shapely.get_coordinates(shapely.shortest_line(inner, node_pts[node_k]))[0::2]
            back = gpd.GeoSeries(shapely.points(edge_pts), crs=laea).to_crs(CRS)
            rep_x[rest[poly_i]] = back.x.to_numpy()
            rep_y[rest[poly_i]] = back.y.to_numpy()
            source[rest[poly_i]] = "polygon_edge_near_road"
    out["rep_lon"] = rep_x
    out["rep_lat"] = rep_y
    out["rep_source"] = source
    return out


# ----------------------------------------------------------------------------------------------- all steps
def build_grid_units(
    boundary,
    *,
    kind: GridKind = "h3",
    resolution: int | None = None,
    cell_size_m: float | None = None,
    townships: gpd.GeoDataFrame | None = None,
    township_column: str = "name",
    population_source: gpd.GeoDataFrame | None = None,
    population_column: str = "population",
    method: Literal["area", "building"] = "area",
    buildings: gpd.GeoDataFrame | None = None,
    road_nodes_xy: np.ndarray | None = None,
    urban_min_per_km2: float = 1500.0,
) -> gpd.GeoDataFrame:
    """A grid following the ``units`` contract: cells, township, population, demand and representative point.

    ``setting`` is ``"urban"`` where the interpolated density reaches ``urban_min_per_km2`` (the usual
    1,500/km² threshold of the degree-of-urbanisation method), ``"rural"`` elsewhere; ``demand`` is population ×
    ``geo.settings.eligible_rate``. Without a population source every cell gets population 0 and demand 0.

    Parameters
    ----------
    boundary, kind, resolution, cell_size_m, townships, township_column
        As in :func:`build_grid`.
    population_source, population_column, method, buildings
        As in :func:`interpolate_population`.
    road_nodes_xy : numpy.ndarray, optional
        Road node coordinates for :func:`place_representative_points`; without them the polygon's
        representative point is used.
    urban_min_per_km2 : float

    Returns
    -------
    GeoDataFrame
    """
    cells = build_grid(boundary, kind=kind, resolution=resolution, cell_size_m=cell_size_m,
                       townships=townships, township_column=township_column)
    if population_source is not None:
        cells["population"] = interpolate_population(cells, population_source, column=population_column,
                                                     method=method, buildings=buildings).to_numpy()
    else:
        cells["population"] = 0.0
    cells["demand"] = cells["population"] * settings.eligible_rate
    density = cells["population"] / cells["area_km2"].where(cells["area_km2"] > 0)
    cells["setting"] = np.where(density.fillna(0).to_numpy() >= urban_min_per_km2, "urban", "rural")
    cells = place_representative_points(cells, road_nodes_xy=np.empty((0, 2)) if road_nodes_xy is None else road_nodes_xy)
    extra = [c for c in cells.columns if c not in UNIT_COLUMNS and c != "geometry"]
    return cells[list(UNIT_COLUMNS) + extra + ["geometry"]]
