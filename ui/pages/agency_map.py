"""机构地图: the residents' page. The colour-coded agency map with filters, and the nearest-agency finder.

Only agencies and area aggregates appear here: no individual beneficiary data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from geo.errors import InputError
from geo.finder import filter_agencies, find_agencies
from geo.schema import CARE_TYPES, SERVICE_MODES, STATUSES
from ui.common import (
    current_lang, download_buttons, friendly_errors, get_basemap_roads, get_region, lang_widget, set_lang_widget,
    tianditu_key, tr,
)
from ui.maps import BASEMAPS, agency_map, from_display
# Format functions take the language as a value: Streamlit may call them outside the script run.
from ui.strings import label, modes_label, t

P = "agency_map."  # session-state prefix of this page
METHODS = ("village", "click", "coords")
COORD_SYSTEMS = ("wgs84", "gcj02", "bd09")


def _on_map_change() -> None:
    """A click on the map picks the resident's place (converted back from the basemap's coordinates)."""
    value = st.session_state.get(P + "map") or {}
    clicked = value.get("last_clicked")
    if not clicked:
        return
    lon, lat = from_display(clicked["lng"], clicked["lat"], basemap=st.session_state.get(P + "basemap", "none"))
    st.session_state[P + "clicked"] = (float(lon), float(lat))
    set_lang_widget(P + "method", "click")


def _filters(region):
    agencies = region.agencies
    lang = current_lang()
    with st.expander(tr("agency.filters"), expanded=True):
        c1, c2, c3, c4, c5 = st.columns([1.2, 1.2, 1.2, 1.2, 1.0])
        care_types = lang_widget(c1.multiselect, tr("agency.filter.care_type"), CARE_TYPES, key=P + "care_types",
                                 default=list(CARE_TYPES), format_func=lambda v: label("care_type", v, lang=lang))
        present = [s for s in STATUSES if s in set(agencies["status"].astype(str))] or ["designated"]
        statuses = lang_widget(c2.multiselect, tr("agency.filter.status"), STATUSES, key=P + "statuses",
                               default=[s for s in ("designated", "suspended", "planned") if s in present],
                               format_func=lambda v: label("status", v, lang=lang))
        townships = c3.multiselect(tr("agency.filter.township"), sorted(region.townships["name"].astype(str)),
                                   placeholder=tr("agency.filter.township_all"), key=P + "townships")
        modes = lang_widget(c4.multiselect, tr("agency.filter.service_mode"), SERVICE_MODES, key=P + "modes",
                            default=[], placeholder=tr("agency.filter.service_mode_all"),
                            format_func=lambda v: label("service_mode", v, lang=lang))
        basemap = lang_widget(c5.selectbox, tr("agency.basemap"), list(BASEMAPS), key=P + "basemap", default="none",
                              format_func=lambda v: t(f"map.basemap.{v}", lang=lang))
        if basemap != "none":
            st.caption(tr("agency.basemap.online_note"))
    shown = filter_agencies(agencies, care_types=care_types, statuses=statuses, townships=townships,
                            service_modes=modes)
    return shown, care_types, modes, basemap


def _pick_place(region):
    """The resident's place as (lon, lat, label) in WGS84, or None."""
    units = region.units
    lang = current_lang()
    method = lang_widget(st.radio, tr("finder.method"), METHODS, key=P + "method", default="village",
                         horizontal=True, format_func=lambda m: t(f"finder.method.{m}", lang=lang))
    if method == "village":
        names = {str(u): f"{n} · {w}" for u, n, w in zip(units["unit_id"], units["name"], units["township"])}
        uid = st.selectbox(tr("finder.village"), list(names), index=None, format_func=names.get,
                           placeholder=tr("finder.village_placeholder"), key=P + "village")
        if uid is None:
            return None
        row = units[units["unit_id"].astype(str) == uid].iloc[0]
        return float(row["rep_lon"]), float(row["rep_lat"]), str(row["name"])
    if method == "click":
        clicked = st.session_state.get(P + "clicked")
        if clicked is None:
            st.caption(tr("finder.click_hint"))
            return None
        return clicked[0], clicked[1], tr("finder.clicked")
    minx, miny, maxx, maxy = region.network.bounds()
    with st.form(P + "coords_form", border=False):
        system = lang_widget(st.radio, tr("finder.coord_system"), COORD_SYSTEMS, key=P + "coord_system",
                             default="wgs84", horizontal=True, format_func=lambda s: label("coord", s, lang=lang))
        c1, c2 = st.columns(2)
        lon = c1.number_input(tr("finder.lon"), value=round((minx + maxx) / 2, 5), format="%.6f", key=P + "lon")
        lat = c2.number_input(tr("finder.lat"), value=round((miny + maxy) / 2, 5), format="%.6f", key=P + "lat")
        if st.form_submit_button(tr("finder.locate")):
            from geo.coords import to_wgs84

            w_lon, w_lat = to_wgs84(lon, lat, source=system)
            st.session_state[P + "typed"] = (float(w_lon), float(w_lat))
    typed = st.session_state.get(P + "typed")
    return None if typed is None else (typed[0], typed[1], tr("finder.typed"))


def _minutes_text(minutes: float) -> str:
    return f"{minutes:.0f} min" if np.isfinite(minutes) else tr("finder.unreachable_minutes")


def _finder(region, place, care_types, modes, results_area):
    """Search from the resident's place: controls here, the ranked table in ``results_area``.

    Returns the chosen agency's row (for the route) or None.
    """
    lang = current_lang()
    st.subheader(tr("finder.header"))
    if place is None:
        st.info(tr("finder.pick_place"))
        return None
    lon, lat, place_label = place
    st.caption(tr("finder.place_at", lon=lon, lat=lat))
    k = st.slider(tr("finder.k"), 1, 10, 5, key=P + "k")
    try:
        result = find_agencies(region, lon=lon, lat=lat, k=k, care_types=care_types or None,
                               service_modes=modes or None)
    except InputError as exc:
        if exc.problems and exc.problems[0].code == "no_road":
            from geo import settings
            from geo.traveltime import snap_points

            access = float(snap_points(region.network, [lon], [lat], max_access_m=np.inf).access_m[0])
            st.warning(tr("finder.no_road", max_m=settings.max_access_distance_m, access_m=access))
            return None
        raise
    offered = result[result["offered"]]
    not_offered = result[~result["offered"]]
    chosen = None
    if offered.empty:
        st.warning(tr("finder.none"))
    else:
        ids = list(offered["agency_id"])
        names = dict(zip(offered["agency_id"], offered["name"]))
        chosen_id = st.selectbox(tr("finder.route_to"), ids, format_func=lambda a: f"{ids.index(a) + 1}. {names[a]}",
                                 key=P + f"route.{lon:.6f},{lat:.6f}")
        chosen = offered[offered["agency_id"] == chosen_id].iloc[0]
        st.success(tr("finder.route_summary", name=chosen["name"], minutes=chosen["minutes"],
                      km=chosen["road_km"], phone=chosen["phone"]))
    if len(not_offered):
        lines = [tr("finder.not_offered_item", name=r.name, minutes=_minutes_text(r.minutes),
                    reason=tr(f"finder.reason.{r.reason_code}")) for r in not_offered.itertuples()]
        st.info("**" + tr("finder.not_offered") + "**\n\n" + "\n".join(f"- {x}" for x in lines))
    if offered.empty:
        return None
    with results_area:
        st.subheader(tr("finder.results", place=place_label, n=len(offered)))
        table = pd.DataFrame({
            tr("col.rank"): offered["rank"].astype(int).to_numpy(),
            tr("col.name"): offered["name"].to_numpy(),
            tr("col.minutes"): offered["minutes"].round(1).to_numpy(),
            tr("col.km"): offered["road_km"].round(1).to_numpy(),
            tr("col.care_type"): [label("care_type", c, lang=lang) for c in offered["care_type"]],
            tr("col.phone"): offered["phone"].astype(str).to_numpy(),
            tr("col.address"): offered["address"].astype(str).to_numpy(),
        })
        # A plain HTML table: five rows read better (and reach screen readers) than a canvas grid.
        st.table(table.style.format({tr("col.minutes"): "{:.1f}", tr("col.km"): "{:.1f}"}), hide_index=True,
                 border="horizontal")
        download_buttons(table, basename="nearest_agencies", key=P + "finder_dl")
    return chosen


def _agency_table(shown):
    lang = current_lang()
    table = pd.DataFrame({
        tr("col.agency_id"): shown["agency_id"].astype(str).to_numpy(),
        tr("col.name"): shown["name"].to_numpy(),
        tr("col.care_type"): [label("care_type", c, lang=lang) for c in shown["care_type"]],
        tr("col.status"): [label("status", s, lang=lang) for s in shown["status"]],
        tr("col.township"): shown["township"].astype(str).to_numpy() if "township" in shown else "",
        tr("col.address"): shown["address"].astype(str).to_numpy(),
        tr("col.phone"): shown["phone"].astype(str).to_numpy(),
        tr("col.service_modes"): [modes_label(m, lang=lang) for m in shown["service_modes"]],
        tr("col.clients_served"): shown["clients_served"].to_numpy(),
        tr("col.certified_caregivers"): shown["certified_caregivers"].to_numpy(),
        tr("col.quality_score"): shown["quality_score"].to_numpy(),
        tr("col.lon"): shown.geometry.x.round(6).to_numpy(),
        tr("col.lat"): shown.geometry.y.round(6).to_numpy(),
    })
    st.subheader(tr("agency.table"))
    st.dataframe(table, hide_index=True, width="stretch", key=P + "agency_table")
    download_buttons(table, basename="agencies", key=P + "agencies_dl")


@friendly_errors()
def render() -> None:
    region = get_region()
    st.title(tr("agency.title"))
    st.caption(tr("agency.intro"))
    if region.meta.get("demo"):
        st.caption(":material/info: " + tr("agency.demo_note"))

    shown, care_types, modes, basemap = _filters(region)
    key = tianditu_key()
    if basemap == "tianditu" and not key:
        st.warning(tr("agency.tianditu_missing"))
        basemap = "none"

    map_col, finder_col = st.columns([3, 2], gap="medium")
    results_area = st.container()
    with finder_col:
        place = _pick_place(region)
        chosen = _finder(region, place, care_types, modes, results_area)

    with map_col:
        st.markdown(tr("agency.visible", n=len(shown)) if len(shown) else tr("agency.none_visible"))
        fmap = agency_map(
            shown, townships=region.townships, units=region.units, roads=get_basemap_roads(region),
            basemap=basemap, lang=current_lang(),
            place=None if place is None else place[:2],
            route=None if chosen is None else chosen.geometry,
            route_agency=None if chosen is None else {"lon": chosen["agency_lon"], "lat": chosen["agency_lat"]},
            tianditu_key=key,
        )
        st_folium(fmap, key=P + "map", height=600, use_container_width=True, returned_objects=["last_clicked"],
                  on_change=_on_map_change)

    _agency_table(shown)


render()
