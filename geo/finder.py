"""The residents' agency finder: the nearest agencies taking new clients from one place, by road time.

One reverse Dijkstra from the resident's road node gives the time, road distance and route from every agency at
once (:func:`geo.traveltime.routes_to_point`), so a query costs one shortest-path pass whatever the registry size.
Times are door to door and composed exactly as in :func:`geo.traveltime.travel_time_matrix`: agency access leg +
road time + resident access leg, so the finder and the planning matrices agree to the second.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo import schema
from geo.errors import InputError, Problem

#: Statuses whose agencies a resident can sign up with today. ``planned`` sites exist only in plans.
OPEN_STATUSES: tuple[str, ...] = ("designated",)

#: Why an agency that matches the resident's filters is not offered.
NOT_OFFERED_REASONS: dict[str, str] = {
    "suspended": "suspended (暂停): keeps its current clients but takes no new ones",
    "planned": "planned (规划): a proposed site, not yet open",
    "unreachable": "no road route between the agency and this place",
    "no_road_at_agency": "the agency lies farther than the maximum access distance from any road",
}

RESULT_COLUMNS: tuple[str, ...] = (
    "rank", "agency_id", "name", "care_type", "status", "minutes", "road_km", "agency_access_m", "place_access_m",
    "phone", "address", "service_modes", "township", "offered", "reason", "reason_code", "agency_lon", "agency_lat",
)


def _validate(agencies, lon, lat, k, care_types, service_modes) -> list[Problem]:
    problems: list[Problem] = []
    missing = [c for c in ("agency_id", "name", "care_type", "status") if c not in agencies.columns]
    if missing:
        problems.append(Problem(f"the agency table lacks columns {missing}", code="columns"))
    if "geometry" not in agencies.columns and not isinstance(agencies, gpd.GeoDataFrame):
        problems.append(Problem("agencies need point geometry (WGS84)", code="geometry"))
    try:
        lon_f, lat_f = float(lon), float(lat)
        if not (np.isfinite(lon_f) and np.isfinite(lat_f) and abs(lon_f) <= 180 and abs(lat_f) <= 90):
            raise ValueError
    except (TypeError, ValueError):
        problems.append(Problem("the place needs WGS84 longitude/latitude in degrees", column="lon/lat",
                                value=(lon, lat), code="coordinates"))
    if not isinstance(k, (int, np.integer)) or k < 1:
        problems.append(Problem("k must be a whole number ≥ 1", column="k", value=k, code="k"))
    unknown = sorted(set(care_types or ()) - set(schema.CARE_TYPES))
    if unknown:
        problems.append(Problem(f"unknown care types {unknown}; use {list(schema.CARE_TYPES)}", column="care_types",
                                code="care_type"))
    unknown = sorted(set(service_modes or ()) - set(schema.SERVICE_MODES))
    if unknown:
        problems.append(Problem(f"unknown service modes {unknown}; use {list(schema.SERVICE_MODES)}",
                                column="service_modes", code="service_mode"))
    return problems


def _mode_mask(modes: pd.Series, wanted) -> np.ndarray:
    wanted = set(wanted)
    return np.array([bool(wanted & set(str(m or "").split(";"))) for m in modes], dtype=bool)


def find_agencies(
    region=None,
    *,
    lon: float,
    lat: float,
    network=None,
    agencies: gpd.GeoDataFrame | None = None,
    k: int = 5,
    care_types=None,
    service_modes=None,
    max_access_m: float | None = None,
) -> gpd.GeoDataFrame:
    """The ``k`` fastest agencies open to new clients from one place, plus the closer ones that are not, with why.

    Parameters
    ----------
    region : geo.region.Region, optional
        Supplies ``network`` and ``agencies`` unless those are given.
    lon, lat : float
        The resident's place in WGS84 degrees.
    network : geo.network.RoadNetwork, optional
    agencies : geopandas.GeoDataFrame, optional
        Registry following :mod:`geo.schema` (WGS84 points).
    k : int
        How many open agencies to list.
    care_types, service_modes : iterable of str, optional
        Keep only agencies of these care types / offering any of these service modes.
    max_access_m : float, optional
        Farthest a place or an agency may lie from a road node; default :data:`geo.settings.max_access_distance_m`.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`RESULT_COLUMNS`; geometry is the road route (WGS84 LineString, agency → place) or None.
        Open agencies come first, ranked 1..k by door-to-door ``minutes``; then, with ``offered`` False, rank NA
        and a ``reason`` (:data:`NOT_OFFERED_REASONS`), every matching agency that is suspended, planned or
        unreachable and would otherwise have made the list (its time is within the k-th open agency's time, or
        fewer than k agencies are open). Terminated agencies are never listed. ``attrs`` holds the place, its
        snapped node, its access distance and how many agencies matched the filters.

    Raises
    ------
    InputError
        Bad coordinates or filters, or (code ``no_road``) no road node within ``max_access_m`` of the place:
        its time would be a guess, so none is given.
    """
    from geo import settings
    from geo.traveltime import route_line, routes_to_point, snap_points

    if region is not None:
        network = region.network if network is None else network
        agencies = region.agencies if agencies is None else agencies
    if network is None or agencies is None:
        raise InputError("find_agencies needs a region, or both network and agencies",
                         [Problem("pass region= or network= and agencies=", code="arguments")])
    problems = _validate(agencies, lon, lat, k, care_types, service_modes)
    if problems:
        raise InputError("cannot search for agencies", problems)
    lon, lat = float(lon), float(lat)
    max_access_m = settings.max_access_distance_m if max_access_m is None else float(max_access_m)

    place = snap_points(network, [lon], [lat], max_access_m=max_access_m)
    if not place.reachable[0]:
        raise InputError(
            f"no road within {max_access_m:,.0f} m of this place (the nearest road node is "
            f"{place.access_m[0]:,.0f} m away), so no travel time can be given",
            [Problem("pick a place nearer a road, or raise the maximum access distance", column="lon/lat",
                     value=(lon, lat), code="no_road")],
        )

    keep = agencies["status"].astype(str) != "terminated"
    if care_types is not None:
        keep &= agencies["care_type"].astype(str).isin(list(care_types)).to_numpy()
    if service_modes is not None and "service_modes" in agencies:
        keep &= _mode_mask(agencies["service_modes"], service_modes)
    pool = agencies[np.asarray(keep, dtype=bool)]
    attrs = {"lon": lon, "lat": lat, "place_node": int(place.node[0]), "place_access_m": float(place.access_m[0]),
             "max_access_m": max_access_m, "matched": int(len(pool))}
    if len(pool) == 0:
        empty = gpd.GeoDataFrame({c: [] for c in RESULT_COLUMNS}, geometry=[], crs=schema.CRS)
        empty.attrs.update(attrs)
        return empty

    a_lon, a_lat = pool.geometry.x.to_numpy(float), pool.geometry.y.to_numpy(float)
    a_snap = snap_points(network, a_lon, a_lat, max_access_m=max_access_m)
    routes = routes_to_point(network, lon, lat, a_snap.node)
    road_s = np.array([r["seconds"] for r in routes], dtype=float)
    minutes = a_snap.access_min + road_s / 60.0 + place.access_min[0]
    minutes[~a_snap.reachable] = np.inf

    status = pool["status"].astype(str).to_numpy()
    is_open = np.isin(status, OPEN_STATUSES) & np.isfinite(minutes)
    reason = np.where(~a_snap.reachable, "no_road_at_agency",
                      np.where(~np.isfinite(minutes), "unreachable",
                               np.where(np.isin(status, OPEN_STATUSES), "", status)))

    open_idx = np.flatnonzero(is_open)
    open_idx = open_idx[np.argsort(minutes[open_idx], kind="stable")][:k]
    cutoff = minutes[open_idx[-1]] if len(open_idx) == k else np.inf
    closed_idx = np.flatnonzero(~is_open & ((minutes <= cutoff) | ~np.isfinite(minutes)))
    closed_idx = closed_idx[np.lexsort((pool["name"].astype(str).to_numpy()[closed_idx], minutes[closed_idx]))]

    def column(name, default=""):
        return pool[name].to_numpy() if name in pool else np.full(len(pool), default, dtype=object)

    order = np.concatenate([open_idx, closed_idx]).astype(np.int64)
    table = pd.DataFrame({
        "rank": pd.array(list(range(1, len(open_idx) + 1)) + [None] * len(closed_idx), dtype="Int64"),
        "agency_id": pool["agency_id"].astype(str).to_numpy()[order],
        "name": pool["name"].astype(str).to_numpy()[order],
        "care_type": pool["care_type"].astype(str).to_numpy()[order],
        "status": status[order],
        "minutes": minutes[order],
        "road_km": np.array([routes[i]["km"] for i in order], dtype=float),
        "agency_access_m": a_snap.access_m[order],
        "place_access_m": np.full(len(order), place.access_m[0]),
        "phone": column("phone")[order],
        "address": column("address")[order],
        "service_modes": column("service_modes")[order],
        "township": column("township")[order],
        "offered": np.r_[np.ones(len(open_idx), bool), np.zeros(len(closed_idx), bool)],
        "reason": [NOT_OFFERED_REASONS.get(r, "") for r in reason[order]],
        "reason_code": reason[order],
        "agency_lon": a_lon[order],
        "agency_lat": a_lat[order],
    })
    geometry = [route_line(network, routes[i]["edges"]) if np.isfinite(minutes[i]) else None for i in order]
    result = gpd.GeoDataFrame(table, geometry=geometry, crs=schema.CRS)
    result.attrs.update(attrs)
    return result


def filter_agencies(
    agencies: gpd.GeoDataFrame,
    *,
    care_types=None,
    statuses=None,
    townships=None,
    service_modes=None,
) -> gpd.GeoDataFrame:
    """The registry rows matching every given filter (``None`` or empty = no filter on that field).

    ``service_modes`` keeps agencies offering any of the given modes.
    """
    keep = np.ones(len(agencies), dtype=bool)
    if care_types:
        keep &= agencies["care_type"].astype(str).isin(list(care_types)).to_numpy()
    if statuses:
        keep &= agencies["status"].astype(str).isin(list(statuses)).to_numpy()
    if townships and "township" in agencies:
        keep &= agencies["township"].astype(str).isin(list(townships)).to_numpy()
    if service_modes and "service_modes" in agencies:
        keep &= _mode_mask(agencies["service_modes"], service_modes)
    return agencies[keep]
