"""Candidate sites for new agencies: where they come from, which are ruled out, and Heilongjiang's presets.

Sources (each returns a GeoDataFrame with :data:`CANDIDATE_COLUMNS`, EPSG:4326 points):

* existing health facilities – clinics, primary-care centres and hospitals stand in for township health centres
  (乡镇卫生院) – :func:`candidates_from_health_facilities`;
* representative points of under-served units – :func:`candidates_from_underserved_units`;
* points the user clicks on the map – :func:`candidates_from_points`;
* an uploaded CSV / GeoJSON list – :func:`read_candidates`;
* centroids of a regular grid – :func:`candidates_from_grid`.

Rules: :func:`exclude_near_agencies` removes candidates within a minimum distance of an existing active agency and
returns them beside the kept ones with the reason (nothing is dropped silently). Each candidate carries a
``setup_cost`` weight (default 1), which :class:`planning.siting.LSCP` minimises and the other models can bound with a
``budget``.

Heilongjiang's 2025 layout rules as presets:

* *urban* – :func:`sites_needed_by_township`: a target of residents per agency or care station derives how many new
  sites each township needs; pass its ``min_new_by_group`` to any model with ``candidate_group=township``;
* *rural* – :func:`prefer_near_health_centres`: candidates at or near a township health centre get a preference
  weight that lowers their setup cost, so the models pick them when they serve as well as the others.
"""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from geo.errors import InputError, PlanningError, Problem
from geo.schema import ACTIVE_STATUSES, CRS

__all__ = [
    "CANDIDATE_COLUMNS", "HEALTH_CENTRE_KINDS", "candidates_from_health_facilities", "candidates_from_points",
    "candidates_from_underserved_units", "candidates_from_grid", "read_candidates", "combine_candidates",
    "exclude_near_agencies", "exclude_off_network", "sites_needed_by_township", "prefer_near_health_centres", "candidate_travel_matrix",
]

#: Columns of every candidate table (plus ``geometry``).
CANDIDATE_COLUMNS: tuple[str, ...] = (
    "candidate_id", "name", "source", "setup_cost", "preference", "near_health_centre", "township",
)

#: OSM ``amenity`` / ``healthcare`` values that count as a health centre able to host an LTCI agency. Pharmacies,
#: dentists and the like are not: they have neither beds nor nursing staff.
HEALTH_CENTRE_KINDS: tuple[str, ...] = ("hospital", "clinic", "doctors", "doctor", "centre")


def _frame(ids, names, source: str, lon, lat, *, setup_cost=None, township=None) -> gpd.GeoDataFrame:
    n = len(ids)
    return gpd.GeoDataFrame(
        {
            "candidate_id": pd.Series(ids, dtype=object).astype(str).to_numpy(),
            "name": pd.Series(names, dtype=object).fillna("").astype(str).to_numpy(),
            "source": np.full(n, source, dtype=object),
            "setup_cost": np.ones(n) if setup_cost is None else np.asarray(setup_cost, dtype=float),
            "preference": np.zeros(n),
            "near_health_centre": np.zeros(n, dtype=bool),
            "township": np.full(n, "", dtype=object) if township is None else np.asarray(township, dtype=object),
        },
        geometry=gpd.points_from_xy(np.asarray(lon, float), np.asarray(lat, float)),
        crs=CRS,
    )


def _local_xy(lon, lat, reference_lon, reference_lat) -> np.ndarray:
    """Metres in an azimuthal equidistant projection centred on the reference points (true near the region)."""
    from pyproj import Transformer

    lon0 = float(np.mean(reference_lon))
    lat0 = float(np.mean(reference_lat))
    to_local = Transformer.from_crs(CRS, f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +units=m +ellps=WGS84",
                                    always_xy=True)
    x, y = to_local.transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.column_stack([x, y])


def _points_lonlat(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    geom = frame.geometry if frame.crs is None or frame.crs.equals(CRS) else frame.geometry.to_crs(CRS)
    pts = geom if (geom.geom_type == "Point").all() else geom.representative_point()
    return pts.x.to_numpy(float), pts.y.to_numpy(float)


def _check_in_region(lon, lat, region, *, label: str, tolerance_m: float = 100.0) -> None:
    if region is None:
        return
    shape = region.to_crs(CRS).union_all() if isinstance(region, (gpd.GeoDataFrame, gpd.GeoSeries)) else region
    inside = shapely.contains_xy(shape, lon, lat)
    if inside.all():
        return
    # boundaries are generalised: a point a few metres outside is still in the region
    xy = _local_xy(lon, lat, lon, lat)
    local = gpd.GeoSeries([shape], crs=CRS).to_crs(
        f"+proj=aeqd +lat_0={float(np.mean(lat))} +lon_0={float(np.mean(lon))} +units=m +ellps=WGS84").iloc[0]
    dist = shapely.distance(local, shapely.points(xy[:, 0], xy[:, 1]))
    outside = np.flatnonzero(~inside & (dist > tolerance_m))
    if len(outside):
        raise InputError(f"{label}: points lie outside the planning region", [
            Problem(f"({lon[i]:.5f}, {lat[i]:.5f}) is {dist[i]:.0f} m outside the region; move it inside or "
                    "check lon/lat order", row=int(i) + 1, value=(float(lon[i]), float(lat[i])), code="outside")
            for i in outside])


# --------------------------------------------------------------------------------------------------------------------
# Sources


def candidates_from_health_facilities(
    facilities,
    *,
    kinds: tuple[str, ...] = HEALTH_CENTRE_KINDS,
    merge_within_m: float = 50.0,
) -> gpd.GeoDataFrame:
    """Candidates at existing health facilities (clinics, primary-care centres, hospitals).

    Parameters
    ----------
    facilities : GeoDataFrame or path
        Points with OSM-style ``amenity`` and/or ``healthcare`` tags (e.g. ``andorra_health.geojson``).
    kinds : tuple of str
        Tag values that count; pharmacies, dentists and the like are left out.
    merge_within_m : float
        Facilities closer than this are one site (OSM often maps one hospital as several nodes); the named one is
        kept.

    Returns
    -------
    GeoDataFrame
        :data:`CANDIDATE_COLUMNS` with ``source="health_facility"`` and ``near_health_centre=True``.
    """
    frame = gpd.read_file(facilities) if isinstance(facilities, (str, Path)) else facilities.copy()
    tags = [c for c in ("amenity", "healthcare") if c in frame]
    if not tags:
        raise InputError("health facilities need an 'amenity' or 'healthcare' column",
                         [Problem("no amenity/healthcare column", column="amenity")])
    wanted = np.zeros(len(frame), bool)
    for column in tags:
        wanted |= frame[column].astype(str).str.lower().isin(kinds).to_numpy()
    frame = frame[wanted]
    if frame.empty:
        raise PlanningError(f"no facility is tagged as one of {list(kinds)}; no health-facility candidates")
    lon, lat = _points_lonlat(frame)
    names = frame["name"].fillna("").astype(str).to_numpy() if "name" in frame else np.full(len(frame), "")
    # named facilities first, so a merge keeps the name
    order = np.argsort(names == "", kind="stable")
    lon, lat, names = lon[order], lat[order], names[order]
    raw_ids = (frame["osm_id"].astype(str).to_numpy()[order] if "osm_id" in frame
               else np.arange(len(frame)).astype(str)[order])
    xy = _local_xy(lon, lat, lon, lat)
    keep = np.ones(len(xy), bool)
    tree = cKDTree(xy)
    for i in range(len(xy)):  # few hundred points at most: the merge is cheap
        if keep[i]:
            for j in tree.query_ball_point(xy[i], merge_within_m):
                if j > i:
                    keep[j] = False
    kind = np.where(frame[tags[0]].isna(), frame[tags[-1]], frame[tags[0]]).astype(str)[order]
    names = np.where(names == "", np.char.add("unnamed ", kind.astype(str)), names)
    out = _frame([f"hf-{i}" for i in raw_ids[keep]], names[keep], "health_facility", lon[keep], lat[keep])
    out["near_health_centre"] = True
    return out


def candidates_from_points(lonlat, *, source: str = "click", region=None, names=None,
                           coord_system: str = "wgs84") -> gpd.GeoDataFrame:
    """Candidates at given points, e.g. the user's map clicks.

    Parameters
    ----------
    lonlat : sequence of (lon, lat)
    source : str
        Recorded in the ``source`` column.
    region : shapely geometry or GeoDataFrame, optional
        Points outside it (by more than 100 m) are refused with their row.
    names : sequence of str, optional
    coord_system : {"wgs84", "gcj02", "bd09"}
        The clicks' coordinate system (AMap tiles give GCJ-02); converted to WGS84.
    """
    arr = np.asarray(list(lonlat), dtype=float).reshape(-1, 2) if len(lonlat) else np.zeros((0, 2))
    bad = ~np.isfinite(arr).all(axis=1) | (np.abs(arr[:, 0]) > 180) | (np.abs(arr[:, 1]) > 90)
    if bad.any():
        raise InputError("points must be (longitude, latitude) in degrees", [
            Problem(f"({arr[i, 0]}, {arr[i, 1]}) is not a longitude/latitude pair", row=int(i) + 1)
            for i in np.flatnonzero(bad)])
    if len(arr) == 0:
        raise PlanningError("no points given: click on the map to add candidate sites")
    lon, lat = arr[:, 0], arr[:, 1]
    if coord_system != "wgs84":
        from geo.coords import to_wgs84

        lon, lat = to_wgs84(lon, lat, source=coord_system)
    _check_in_region(lon, lat, region, label=source)
    names = names if names is not None else [f"{source} {i + 1}" for i in range(len(arr))]
    ids = [f"{source}-{i + 1}" for i in range(len(arr))]
    return _frame(ids, names, source, lon, lat)


def candidates_from_underserved_units(units: gpd.GeoDataFrame, travel_min, *, threshold_min: float
                                      ) -> gpd.GeoDataFrame:
    """Candidates at the representative points of units whose nearest agency is beyond ``threshold_min``.

    Parameters
    ----------
    units : GeoDataFrame
        With ``unit_id`` and ``rep_lon``/``rep_lat`` (else the polygon's representative point).
    travel_min : pandas.Series or array-like
        Minutes from each unit to its nearest active agency (``inf`` where none), indexed by ``unit_id`` or in
        the units' order.
    threshold_min : float
    """
    if isinstance(travel_min, pd.Series):
        ids = units["unit_id"].astype(str)
        missing = sorted(set(ids) - set(travel_min.index.astype(str)))
        if missing:
            raise InputError("travel_min lacks units", [Problem(f"unit {u} has no travel time", value=u)
                                                        for u in missing])
        minutes = pd.Series(travel_min.to_numpy(float), index=travel_min.index.astype(str)).loc[ids].to_numpy()
    else:
        minutes = np.asarray(travel_min, dtype=float)
        if len(minutes) != len(units):
            raise InputError("travel_min must give one value per unit",
                             [Problem(f"{len(minutes)} values for {len(units)} units", column="travel_min")])
    under = minutes > threshold_min
    if not under.any():
        raise PlanningError(f"every unit is already within {threshold_min:g} min of an agency: no under-served "
                            "unit to site at")
    chosen = units[under]
    if {"rep_lon", "rep_lat"} <= set(chosen.columns):
        lon, lat = chosen["rep_lon"].to_numpy(float), chosen["rep_lat"].to_numpy(float)
    else:
        lon, lat = _points_lonlat(chosen)
    township = chosen["township"].to_numpy(object) if "township" in chosen else None
    names = chosen["name"] if "name" in chosen else chosen["unit_id"]
    return _frame([f"unit-{u}" for u in chosen["unit_id"].astype(str)], names, "underserved_unit", lon, lat,
                  township=township)


def candidates_from_grid(boundary, *, cell_size_m: float = 1000.0, townships: gpd.GeoDataFrame | None = None,
                         township_column: str = "name") -> gpd.GeoDataFrame:
    """Candidates at the centroids of a square grid covering ``boundary`` (centroids outside it are left out).

    The cell count is checked against :data:`geo.settings.max_grid_cells` before any cell is built.
    """
    from geo.grid import build_grid, local_equal_area_crs

    cells = build_grid(boundary, kind="square", cell_size_m=cell_size_m, townships=townships,
                       township_column=township_column)
    laea = local_equal_area_crs(cells)
    centres = cells.to_crs(laea).centroid.to_crs(CRS)
    shape = boundary.to_crs(CRS).union_all() if isinstance(boundary, (gpd.GeoDataFrame, gpd.GeoSeries)) \
        else boundary
    inside = shapely.contains_xy(shape, centres.x.to_numpy(), centres.y.to_numpy())
    if not inside.any():
        raise PlanningError(f"no grid centroid of {cell_size_m:g} m cells falls inside the region; use smaller cells")
    cells, centres = cells[inside], centres[inside]
    return _frame([f"grid-{u}" for u in cells["unit_id"]], cells["unit_id"], "grid", centres.x, centres.y,
                  township=cells["township"].to_numpy(object))


_LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度")
_LAT_NAMES = ("lat", "latitude", "y", "纬度")
_NAME_NAMES = ("name", "名称", "site", "地点")
_COST_NAMES = ("setup_cost", "cost", "成本", "建设成本")
_ID_NAMES = ("candidate_id", "id", "编号")


def _pick(columns, aliases) -> str | None:
    lowered = {str(c).strip().lower(): c for c in columns}
    return next((lowered[a] for a in aliases if a in lowered), None)


def read_candidates(path_or_buffer, *, filename: str | None = None, region=None,
                    coord_system: str = "wgs84") -> gpd.GeoDataFrame:
    """Read an uploaded candidate list: CSV with lon/lat (经度/纬度) columns, or GeoJSON / GeoPackage points.

    Optional columns: ``name`` (名称), ``setup_cost`` (成本), ``candidate_id`` (编号). Every bad row is reported
    with its row number in one :class:`~geo.errors.InputError`; no row is dropped silently.
    """
    if isinstance(path_or_buffer, (str, Path)):
        filename = filename or Path(path_or_buffer).name
        data = Path(path_or_buffer).read_bytes()
    elif isinstance(path_or_buffer, bytes):
        data = path_or_buffer
    else:
        data = path_or_buffer.read()
        filename = filename or getattr(path_or_buffer, "name", None)
    label = filename or "candidate list"
    head = data.lstrip()[:1]
    problems: list[Problem] = []
    if head in (b"{", b"[") or (filename or "").lower().endswith((".geojson", ".json", ".gpkg")):
        frame = gpd.read_file(io.BytesIO(data))
        if frame.crs is not None and not frame.crs.equals(CRS):
            frame = frame.to_crs(CRS)
        non_point = np.flatnonzero(frame.geom_type.to_numpy() != "Point")
        problems += [Problem("geometry is not a point", row=int(i) + 1, column="geometry") for i in non_point]
        lon = np.where(frame.geom_type == "Point", frame.geometry.x, np.nan)
        lat = np.where(frame.geom_type == "Point", frame.geometry.y, np.nan)
        table = pd.DataFrame(frame.drop(columns="geometry"))
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("gb18030")  # Chinese Excel exports
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        lon_col, lat_col = _pick(table.columns, _LON_NAMES), _pick(table.columns, _LAT_NAMES)
        if lon_col is None or lat_col is None:
            raise InputError(f"{label}: no longitude/latitude columns", [Problem(
                f"columns are {list(table.columns)}; name them lon and lat (or 经度 and 纬度)", column="lon")])
        lon = pd.to_numeric(table[lon_col].str.strip(), errors="coerce").to_numpy(float)
        lat = pd.to_numeric(table[lat_col].str.strip(), errors="coerce").to_numpy(float)
        for i in np.flatnonzero(np.isnan(lon) | np.isnan(lat)):
            problems.append(Problem("longitude/latitude missing or not a number", row=int(i) + 1,
                                    column=lon_col if np.isnan(lon[i]) else lat_col,
                                    value=(table[lon_col].iloc[i], table[lat_col].iloc[i])))
    if len(table) == 0:
        raise InputError(f"{label}: the list holds no candidate", [Problem("no data rows")])
    ok = np.isfinite(lon) & np.isfinite(lat)
    out_of_range = np.flatnonzero(ok & ((np.abs(lon) > 180) | (np.abs(lat) > 90)))
    problems += [Problem("not a longitude/latitude pair (out of range)", row=int(i) + 1, value=(lon[i], lat[i]))
                 for i in out_of_range]
    cost_col = _pick(table.columns, _COST_NAMES)
    cost = np.ones(len(table))
    if cost_col is not None:
        raw = table[cost_col].astype(str).str.strip()
        cost = pd.to_numeric(raw.replace("", "1"), errors="coerce").to_numpy(float)
        for i in np.flatnonzero(~(cost > 0)):
            problems.append(Problem("setup_cost must be a positive number", row=int(i) + 1, column=cost_col,
                                    value=table[cost_col].iloc[i]))
    if problems:
        raise InputError(f"{label}: rows cannot be used", problems)
    if coord_system != "wgs84":
        from geo.coords import to_wgs84

        lon, lat = to_wgs84(lon, lat, source=coord_system)
    _check_in_region(lon, lat, region, label=label)
    id_col, name_col = _pick(table.columns, _ID_NAMES), _pick(table.columns, _NAME_NAMES)
    ids = table[id_col].astype(str).to_numpy() if id_col else [f"upload-{i + 1}" for i in range(len(table))]
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids).loc[lambda s: s.duplicated()].unique()[:5].tolist()
        raise InputError(f"{label}: candidate ids repeat", [Problem(f"id {d} appears more than once",
                                                                    column=id_col, value=d) for d in dup])
    names = table[name_col].to_numpy(object) if name_col else ids
    return _frame(ids, names, "upload", lon, lat, setup_cost=cost)


def combine_candidates(*frames: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Stack candidate tables from several sources; ids must stay unique across them."""
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        raise PlanningError("no candidate sites given")
    out = gpd.GeoDataFrame(pd.concat([f[list(CANDIDATE_COLUMNS) + ["geometry"]] for f in frames],
                                     ignore_index=True), crs=CRS)
    dup = out["candidate_id"][out["candidate_id"].duplicated()].unique()
    if len(dup):
        raise InputError("candidate ids repeat across sources",
                         [Problem(f"id {d} appears more than once", column="candidate_id", value=d) for d in dup])
    return out


# --------------------------------------------------------------------------------------------------------------------
# Rules


def exclude_near_agencies(candidates: gpd.GeoDataFrame, agencies: gpd.GeoDataFrame, *, min_distance_m: float,
                          active_only: bool = True) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Split candidates into those kept and those within ``min_distance_m`` of an existing agency.

    Returns
    -------
    kept, excluded : GeoDataFrame
        ``excluded`` adds ``nearest_agency_id``, ``distance_m`` and ``reason``.

    Raises
    ------
    PlanningError
        When no candidate is left: the message gives the distance to lower.
    """
    if min_distance_m < 0:
        raise InputError("min_distance_m must be ≥ 0", [Problem(f"got {min_distance_m}", column="min_distance_m")])
    if len(candidates) == 0:
        raise PlanningError("no candidate sites given")
    source = agencies
    if active_only and "status" in agencies:
        source = agencies[agencies["status"].isin(ACTIVE_STATUSES)]
    if len(source) == 0 or min_distance_m == 0:
        return candidates.copy(), candidates.iloc[0:0].assign(nearest_agency_id=[], distance_m=[], reason=[])
    c_lon, c_lat = _points_lonlat(candidates)
    a_lon, a_lat = _points_lonlat(source)
    ref_lon, ref_lat = np.concatenate([c_lon, a_lon]), np.concatenate([c_lat, a_lat])
    dist, idx = cKDTree(_local_xy(a_lon, a_lat, ref_lon, ref_lat)).query(_local_xy(c_lon, c_lat, ref_lon, ref_lat))
    near = dist < min_distance_m
    excluded = candidates[near].copy()
    excluded["nearest_agency_id"] = source["agency_id"].astype(str).to_numpy()[idx[near]]
    excluded["distance_m"] = dist[near]
    excluded["reason"] = [f"{d:.0f} m from agency {a} (< {min_distance_m:g} m)"
                          for d, a in zip(excluded["distance_m"], excluded["nearest_agency_id"])]
    kept = candidates[~near].copy()
    if kept.empty:
        raise PlanningError(
            f"no candidates left after exclusions: all {len(candidates)} lie within {min_distance_m:g} m of an "
            f"existing agency (the farthest is {dist.max():.0f} m away); lower min_distance_m or add candidates")
    return kept, excluded


def exclude_off_network(candidates: gpd.GeoDataFrame, matrix) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, object]:
    """Split candidates into those the road network reaches and those outside its extent.

    A candidate whose row of ``matrix`` is all ``inf`` lies farther than the maximum access distance from any road
    (a grid centroid on a mountainside, a click in a lake). The models refuse such rows; this drops them openly.

    Parameters
    ----------
    candidates : GeoDataFrame
        With ``candidate_id``.
    matrix : geo.traveltime.TravelMatrix
        Candidates × units, rows keyed by ``candidate_id`` (e.g. from :func:`candidate_travel_matrix`).

    Returns
    -------
    kept, excluded : GeoDataFrame
        ``excluded`` adds ``reason``.
    matrix : TravelMatrix
        The matrix restricted to the kept candidates, in their order.
    """
    ids = candidates["candidate_id"].astype(str).to_numpy()
    reach = np.isfinite(matrix.subset(agency_ids=ids).minutes).any(axis=1)
    if not reach.any():
        raise PlanningError(f"no candidates left after exclusions: none of the {len(ids)} candidates reaches the "
                            "road network; place candidates near roads")
    excluded = candidates[~reach].copy()
    excluded["reason"] = "outside the road network extent (no road within the maximum access distance)"
    kept = candidates[reach].copy()
    return kept, excluded, matrix.subset(agency_ids=ids[reach])


def prefer_near_health_centres(candidates: gpd.GeoDataFrame, health_centres: gpd.GeoDataFrame, *,
                               within_m: float = 1000.0, preference: float = 0.3) -> gpd.GeoDataFrame:
    """Rural preset (Heilongjiang): favour candidates at or near a township health centre (乡镇卫生院).

    Candidates within ``within_m`` of a health centre (or drawn from one) get ``near_health_centre=True`` and
    ``preference``; their ``setup_cost`` is multiplied by ``1 − preference``, because co-locating with a health
    centre shares staff, premises and medical back-up. LSCP then picks them first among equally good covers; with a
    ``budget`` the other models can afford more of them.

    Parameters
    ----------
    preference : float in [0, 1)
        The weight; 0 changes nothing.
    """
    if not 0 <= preference < 1:
        raise InputError("preference must be in [0, 1)", [Problem(f"got {preference}", column="preference")])
    out = candidates.copy()
    near = out["near_health_centre"].to_numpy(bool).copy()
    if len(health_centres):
        c_lon, c_lat = _points_lonlat(out)
        h_lon, h_lat = _points_lonlat(health_centres)
        ref = (np.concatenate([c_lon, h_lon]), np.concatenate([c_lat, h_lat]))
        dist, _ = cKDTree(_local_xy(h_lon, h_lat, *ref)).query(_local_xy(c_lon, c_lat, *ref))
        near |= dist <= within_m
    out["near_health_centre"] = near
    out["preference"] = np.where(near, preference, out["preference"].to_numpy(float))
    out["setup_cost"] = out["setup_cost"].to_numpy(float) * np.where(near, 1.0 - preference, 1.0)
    return out


def sites_needed_by_township(units: pd.DataFrame, agencies: pd.DataFrame, *, residents_per_site: float,
                             settings: tuple[str, ...] | None = ("urban",)) -> pd.DataFrame:
    """Urban preset (Heilongjiang): how many new agencies or care stations each township needs by population.

    Each township needs ``ceil(population / residents_per_site)`` active agencies; the shortfall against those it
    has is what new sites must make up.

    Parameters
    ----------
    units : DataFrame
        With ``township``, ``population`` and (when ``settings`` is given) ``setting``.
    agencies : DataFrame
        With ``township`` and ``status``; only active statuses count.
    residents_per_site : float
        The target ratio, e.g. 10,000 residents per community care station.
    settings : tuple of str or None
        Unit settings the ratio applies to (None = all units).

    Returns
    -------
    DataFrame
        Per township: ``population``, ``target_sites``, ``existing_sites``, ``shortfall``. Use
        ``dict(zip(table.township, table.shortfall))`` as ``min_new_by_group``.
    """
    if not residents_per_site > 0:
        raise InputError("residents_per_site must be positive", [Problem(f"got {residents_per_site}",
                                                                          column="residents_per_site")])
    missing = [c for c in ("township", "population") if c not in units]
    if missing:
        raise InputError("units lack columns for the urban preset", [Problem(f"missing {c}", column=c)
                                                                      for c in missing])
    chosen = units if settings is None else units[units["setting"].isin(settings)]
    population = chosen.groupby("township")["population"].sum()
    active = agencies[agencies["status"].isin(ACTIVE_STATUSES)] if "status" in agencies else agencies
    existing = active.groupby("township").size() if "township" in active else pd.Series(dtype=int)
    table = pd.DataFrame({"population": population})
    table["target_sites"] = np.ceil(table["population"] / residents_per_site).astype(int)
    table["existing_sites"] = existing.reindex(table.index).fillna(0).astype(int)
    table["shortfall"] = (table["target_sites"] - table["existing_sites"]).clip(lower=0)
    return table.reset_index().rename(columns={"index": "township"})


def candidate_travel_matrix(network, candidates: gpd.GeoDataFrame, units: gpd.GeoDataFrame, *,
                            engine: str = "auto"):
    """Candidates × units minutes through the shared travel-time engine (rows keyed by ``candidate_id``).

    Candidates farther than :data:`geo.settings.max_access_distance_m` from any road get an all-``inf`` row,
    which the siting models reject as "outside the network extent".
    """
    from geo.traveltime import travel_time_matrix

    as_sites = candidates.assign(agency_id=candidates["candidate_id"].astype(str))
    return travel_time_matrix(network, as_sites, units, engine=engine)
