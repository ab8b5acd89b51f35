"""覆盖分析: who is within reach of the nearest active agency at each travel-time threshold, and E2SFCA access.

Planning units are the region's villages (default) or a regular grid (H3 hexagons or metric squares) whose
population is interpolated from the region's population layer. Shortest paths run once per unit set and agency
registry (``st.cache_resource``); thresholds, the map threshold and the agency on/off toggles only re-run the
cheap numpy parts of :class:`planning.coverage.CoverageModel` (``with_active``, ``table``).
"""

from __future__ import annotations

import html
import logging
from datetime import datetime

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from geo import settings
from geo.grid import build_grid_units, count_grid_cells
from geo.schema import ACTIVE_STATUSES, CARE_TYPE_COLORS, CARE_TYPES
from geo.traveltime import isochrones, travel_time_matrix
from planning.accessibility import LUO_QI_WEIGHTS, AccessibilityModel
from planning.coverage import CoverageModel, coverage_to_gpkg, coverage_to_xlsx
from planning.coverage_maps import (
    CLASS_COLORS, MINUTE_BREAKS, UNCOVERED_COLOR, isochrone_layer, travel_time_layer,
    uncovered_layer,
)
from planning.report import ReportSection, build_pdf, coverage_sections
from ui.common import (
    MIME_TYPES, current_lang, download_buttons, friendly_errors, get_basemap_roads, get_region, get_travel_matrix,
    region_key, table_bytes, tr,
    deferred_download,
)
from ui.maps import ROAD_STYLES, TOWNSHIP_STROKE, Legend, base_map, lighten, marker_style
from ui.strings import label, translator

log = logging.getLogger("ltci.ui.coverage")

P = "coverage."  # session-state prefix of this page
UNIT_KINDS = ("villages", "h3", "square")
H3_CHOICES = tuple(range(5, 14))  # 13 over the demo region is ~10.7 million cells: offered so the refusal is visible
DEFAULT_H3 = 8
DEFAULT_SQUARE_M = 1000
THRESHOLD_CHOICES = (5, 10, 15, 20, 30, 45, 60, 90, 120)
DEFAULT_THRESHOLDS = tuple(int(m) for m in settings.coverage_thresholds_min)
DEFAULT_MAP_THRESHOLD = 30
MEASURES = ("demand", "population", "units")
DECAYS = ("stepped", "gaussian")
CATCHMENTS = (10, 15, 20, 30, 45, 60)
ACCESS_COLORS = {"well_served": "#1a9850", "under_served": "#fc8d59", "no_access": "#d73027", "no_demand": "#d9d9d9"}


# ----------------------------------------------------------------------------------------------------------------
# Cached heavy steps: grid building, shortest paths, isochrones. Everything else reruns on each widget change.
# ----------------------------------------------------------------------------------------------------------------
def _region_id(region) -> str:
    return f"{region_key()}:{region.name}:{region.network.fingerprint()}"


def _agency_key(agencies) -> tuple:
    """What the cached models depend on: ids, care types, statuses and positions of the registry."""
    return (tuple(agencies["agency_id"].astype(str)), tuple(agencies["care_type"].astype(str)),
            tuple(agencies["status"].astype(str)), tuple(np.round(agencies.geometry.x, 7)),
            tuple(np.round(agencies.geometry.y, 7)))


def _road_vertices(network) -> np.ndarray:
    """Every road geometry vertex (not only graph nodes), so a cell crossed by a road without a junction inside
    still gets its representative point on that road."""
    if network.edge_coords is not None and len(network.edge_coords):
        return np.asarray(network.edge_coords, dtype=float)
    return np.column_stack([network.lon, network.lat])


def _population_source(region):
    """The finest population layer the region has: its population points, else the village units."""
    if region.population is not None and "population" in region.population:
        return region.population
    return region.units[["population", "geometry"]]


@st.cache_resource(show_spinner=False, max_entries=6)
def _cached_grid(_region, region_id: str, kind: str, resolution: int | None, cell_size_m: float | None):
    return build_grid_units(_region.townships, kind=kind, resolution=resolution, cell_size_m=cell_size_m,
                            townships=_region.townships, population_source=_population_source(_region),
                            road_nodes_xy=_road_vertices(_region.network))


# Not Region.travel_matrix: that caches every unit set on the shared region forever; here max_entries bounds memory.
@st.cache_resource(show_spinner=False, max_entries=6)
def _cached_grid_matrix(_region, _units, region_id: str, agency_key: tuple, units_key: str):
    return travel_time_matrix(_region.network, _region.agencies, _units)


@st.cache_resource(show_spinner=False, max_entries=12)
def _cached_coverage(_matrix, _units, _agencies, region_id: str, agency_key: tuple, units_key: str):
    return CoverageModel(_matrix, _units, _agencies).solve()


#: Isochrones are unions of H3 resolution-10 cells (~65 m edges); simplifying at ~40 m removes the cell zig-zag
#: that would otherwise make up most of the map page (84k → 29k vertices for the demo's 18 agencies).
ISOCHRONE_SIMPLIFY_DEG = 0.0004


@st.cache_resource(show_spinner=False, max_entries=8)
def _cached_isochrones(_region, region_id: str, agency_key: tuple, minutes: float):
    """Service areas of every agency at one threshold (the map's), drawn per agency; toggles only filter them."""
    layer = isochrone_layer(isochrones(_region.network, _region.agencies, thresholds=[minutes]), _region.agencies)
    return lighten(layer, tolerance_deg=ISOCHRONE_SIMPLIFY_DEG)


# ----------------------------------------------------------------------------------------------------------------
# Controls
# ----------------------------------------------------------------------------------------------------------------
def _keep_valid(key: str, options, default) -> None:
    """Reset a widget's stored value when the options changed under it (another region, other thresholds)."""
    value = st.session_state.get(key)
    allowed = set(options)
    if value is None or (isinstance(value, list) and not set(value) <= allowed) or \
            (not isinstance(value, list) and value not in allowed):
        st.session_state[key] = default


def _unit_controls():
    """(kind, resolution, cell_size_m) of the planning units."""
    st.session_state.setdefault(P + "unit_kind", "villages")
    kind = st.radio(tr("coverage.unit_kind"), UNIT_KINDS, key=P + "unit_kind", horizontal=True,
                    format_func=lambda k: tr(f"coverage.unit_kind.{k}"))
    resolution = cell_size = None
    if kind == "h3":
        _keep_valid(P + "h3_resolution", H3_CHOICES, DEFAULT_H3)
        import h3

        resolution = st.selectbox(
            tr("coverage.h3_resolution"), H3_CHOICES, key=P + "h3_resolution",
            format_func=lambda r: tr("coverage.h3_option", res=r,
                                     area=h3.average_hexagon_area(r, unit="km^2")))
    elif kind == "square":
        st.session_state.setdefault(P + "square_m", DEFAULT_SQUARE_M)
        cell_size = float(st.number_input(tr("coverage.square_m"), min_value=10, max_value=50_000, step=100,
                                          key=P + "square_m"))
    return kind, resolution, cell_size


def _threshold_controls():
    _keep_valid(P + "thresholds", THRESHOLD_CHOICES, list(DEFAULT_THRESHOLDS))
    chosen = st.multiselect(tr("coverage.thresholds"), THRESHOLD_CHOICES, key=P + "thresholds",
                            format_func=lambda m: tr("coverage.minutes", m=m))
    thresholds = sorted(float(m) for m in chosen)
    if not thresholds:
        return [], None
    options = [int(m) for m in thresholds]
    _keep_valid(P + "map_threshold", options, DEFAULT_MAP_THRESHOLD if DEFAULT_MAP_THRESHOLD in options else options[0])
    map_threshold = st.selectbox(tr("coverage.map_threshold"), options, key=P + "map_threshold",
                                 format_func=lambda m: tr("coverage.minutes", m=m))
    return thresholds, float(map_threshold)


def _agency_controls(region, rid: str):
    agencies = region.agencies
    ids = agencies["agency_id"].astype(str).tolist()
    lang = current_lang()
    names = {a: f"{n} · {label('care_type', c, lang=lang)}" + ("" if s == "designated" else f" · {label('status', s, lang=lang)}")
             for a, n, c, s in zip(ids, agencies["name"].astype(str), agencies["care_type"].astype(str),
                                   agencies["status"].astype(str))}
    default = [a for a, s in zip(ids, agencies["status"].astype(str)) if s in ACTIVE_STATUSES]
    key = P + "active"
    if st.session_state.get(P + "active_region") != rid:  # another registry: start again from its active agencies
        st.session_state[P + "active_region"] = rid
        st.session_state[key] = default
    _keep_valid(key, ids, default)
    active = st.multiselect(tr("coverage.active_agencies"), ids, key=key, format_func=names.get,
                            placeholder=tr("coverage.active_none_placeholder"))
    c1, c2 = st.columns(2)
    c1.button(tr("coverage.active_all"), key=P + "all_on", width="stretch",
              on_click=lambda: st.session_state.__setitem__(key, list(ids)))
    c2.button(tr("coverage.active_reset"), key=P + "reset", width="stretch",
              on_click=lambda: st.session_state.__setitem__(key, list(default)))
    return active


# ----------------------------------------------------------------------------------------------------------------
# Units and models
# ----------------------------------------------------------------------------------------------------------------
def _planning_units(region, rid: str, kind: str, resolution, cell_size):
    """(units, units_key, matrix) or ``None`` when the grid is refused (the refusal is shown)."""
    if kind == "villages":
        return region.units, "villages", get_travel_matrix(region)
    count = count_grid_cells(region.townships, kind=kind, resolution=resolution, cell_size_m=cell_size)
    what = tr("coverage.grid_h3", res=resolution) if kind == "h3" else tr("coverage.grid_square", size=cell_size)
    if count > settings.max_grid_cells:
        st.error(tr("coverage.grid_refused", what=what, count=count, limit=settings.max_grid_cells))
        return None
    units_key = f"h3:{resolution}" if kind == "h3" else f"square:{cell_size:g}"
    with st.spinner(tr("coverage.grid_building", what=what, count=count)):
        units = _cached_grid(region, rid, kind, resolution, cell_size)
    with st.spinner(tr("coverage.grid_matrix", count=len(units))):
        matrix = _cached_grid_matrix(region, units, rid, _agency_key(region.agencies), units_key)
    return units, units_key, matrix


def _notes(model: CoverageModel, noun: str) -> list[tuple[str, str]]:
    """(level, text) of what a planner must know about this model, in the session's language."""
    notes = []
    weights = model.units[["population", "demand"]].apply(pd.to_numeric).to_numpy(dtype=float)
    if not model.active.any():
        notes.append(("error", tr("coverage.no_active", noun=noun, units=len(model.unit_ids),
                                  population=weights[:, 0].sum(), demand=weights[:, 1].sum())))
        return notes
    lang = current_lang()
    missing = [label("care_type", c, lang=lang) for c in CARE_TYPES
               if not model.active[model.agencies["care_type"].astype(str).to_numpy() == c].any()]
    if missing:
        notes.append(("warning", tr("coverage.missing_type", types="、".join(missing) if lang == "zh" else ", ".join(missing))))
    unreachable = ~np.isfinite(model.nearest_minutes)
    if unreachable.any():
        notes.append(("warning", tr("coverage.unreachable", n=int(unreachable.sum()), noun=noun,
                                    population=weights[unreachable, 0].sum())))
    return notes


# ----------------------------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------------------------
def _group_label(scope: str, group: str) -> str:
    if scope == "overall":
        return tr("coverage.group.all")
    if scope == "care_type":
        return label("care_type", group, lang=current_lang())
    return group or tr("coverage.group.no_township")


def coverage_wide(long: pd.DataFrame, measure: str) -> pd.DataFrame:
    """The long coverage table as one row per scope/group and one column of percentages per threshold."""
    long = long.assign(_order=np.arange(len(long)))
    first = long.drop_duplicates(["scope", "group"]).sort_values("_order")
    shares = long.pivot_table(index=["scope", "group"], columns="threshold_min", values=f"share_{measure}",
                              aggfunc="first", dropna=False)
    table = pd.DataFrame({
        tr("coverage.col.scope"): [tr(f"coverage.scope.{s}") for s in first["scope"]],
        tr("coverage.col.group"): [_group_label(s, g) for s, g in zip(first["scope"], first["group"])],
        tr(f"coverage.col.total.{measure}"): first[f"{measure}_total"].to_numpy(dtype=float),
    })
    for minutes in sorted(long["threshold_min"].unique()):
        values = shares.loc[list(zip(first["scope"], first["group"])), minutes].to_numpy(dtype=float)
        table[tr("coverage.minutes", m=f"{minutes:g}")] = np.round(100.0 * values, 1)
    return table


def _coverage_section(model: CoverageModel, thresholds, map_threshold, noun: str) -> None:
    long = model.table(thresholds=thresholds)
    overall = long[(long["scope"] == "overall") & (long["threshold_min"] == map_threshold)].iloc[0]
    st.subheader(tr("coverage.summary", m=f"{map_threshold:g}"))
    cols = st.columns(3)
    for col, measure in zip(cols, ("units", "population", "demand")):
        share = overall[f"share_{measure}"]
        col.metric(tr(f"coverage.metric.{measure}", noun=noun),
                   "—" if not np.isfinite(share) else f"{100 * share:.1f}%",
                   help=tr("coverage.metric.help", covered=overall[f"{measure}_covered"],
                           total=overall[f"{measure}_total"]), border=True)

    st.subheader(tr("coverage.table_title"))
    st.session_state.setdefault(P + "measure", "demand")
    measure = st.radio(tr("coverage.measure"), MEASURES, key=P + "measure", horizontal=True,
                       format_func=lambda m: tr(f"coverage.measure.{m}", noun=noun))
    table = coverage_wide(long, measure)
    percent_cols = [c for c in table.columns[3:]]
    total_col = table.columns[2]
    st.table(table.style.format({**{c: "{:.1f}%" for c in percent_cols},
                                 total_col: "{:,.0f}" if measure != "demand" else "{:,.1f}"}, na_rep="—"),
             hide_index=True, border="horizontal")
    st.caption(tr("coverage.table_note"))
    download_buttons(table, basename=f"coverage_{measure}", key=P + "table_dl")


def uncovered_table(model: CoverageModel, threshold: float) -> pd.DataFrame:
    """The uncovered units for display and download: largest demand first, minutes or 'unreachable'."""
    rows = model.uncovered_units(threshold=threshold)
    minutes = rows["nearest_minutes"].to_numpy(dtype=float)
    return pd.DataFrame({
        tr("coverage.col.unit"): rows["name"].astype(str).to_numpy(),
        tr("col.township"): rows["township"].astype(str).to_numpy(),
        tr("coverage.col.population"): rows["population"].round(0).to_numpy(),
        tr("coverage.col.demand"): rows["demand"].round(2).to_numpy(),
        tr("coverage.col.nearest_minutes"): [f"{m:.1f}" if np.isfinite(m) else tr("coverage.unreachable_short")
                                             for m in minutes],
        tr("coverage.col.nearest_agency"): rows["nearest_agency_name"].astype(str).to_numpy(),
        tr("coverage.col.unit_id"): rows["unit_id"].astype(str).to_numpy(),
    })


def _uncovered_section(model: CoverageModel, map_threshold: float, noun: str) -> None:
    table = uncovered_table(model, map_threshold)
    st.subheader(tr("coverage.uncovered_title", m=f"{map_threshold:g}"))
    if table.empty:
        st.success(tr("coverage.all_covered", m=f"{map_threshold:g}", noun=noun))
        return
    st.caption(tr("coverage.uncovered_count", n=len(table), noun=noun,
                  demand=float(table[tr("coverage.col.demand")].sum())))
    st.dataframe(table, hide_index=True, width="stretch", height=min(36 + 35 * len(table), 480),
                 key=P + "uncovered_table")
    download_buttons(table, basename=f"uncovered_{map_threshold:g}min", key=P + "uncovered_dl")


# ----------------------------------------------------------------------------------------------------------------
# Maps
# ----------------------------------------------------------------------------------------------------------------
def _class_labels(breaks) -> list[str]:
    edges = [float(b) for b in breaks]
    lows = [0.0] + edges[:-1]
    return ([tr("coverage.class.band", lo=f"{lo:g}", hi=f"{hi:g}") for lo, hi in zip(lows, edges)]
            + [tr("coverage.class.over", hi=f"{edges[-1]:g}"), tr("coverage.class.unreachable")])


def _square(colour: str, *, outline: str | None = None, fill_opacity: float = 0.75) -> str:
    border = outline or "#666"
    return (f'<span class="sw" style="border-radius:2px;background:{colour};opacity:{fill_opacity};'
            f'border:{2 if outline else 1}px solid {border}"></span>')


def _plain_geojson(frame: gpd.GeoDataFrame, columns: list[str]) -> dict:
    out = frame[[c for c in columns if c in frame] + ["geometry"]].copy()
    for c in out.columns:
        if c != "geometry" and pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(1).astype(object).where(np.isfinite(out[c].to_numpy(dtype=float)), None)
    return out.__geo_interface__


def _add_context_layers(fmap, region) -> None:
    roads = get_basemap_roads(region)
    if roads is not None and len(roads):
        layer = folium.FeatureGroup(name=tr("map.layer.roads"), show=True)

        def road_style(feature):
            colour, weight = ROAD_STYLES.get(str(feature["properties"].get("highway", "")), ROAD_STYLES["tertiary"])
            return {"color": colour, "weight": weight, "opacity": 0.8, "fill": False}

        folium.GeoJson(_plain_geojson(roads, ["highway"]), style_function=road_style, interactive=False).add_to(layer)
        layer.add_to(fmap)
    layer = folium.FeatureGroup(name=tr("map.layer.townships"), show=True)
    folium.GeoJson(_plain_geojson(lighten(region.townships), ["name"]), interactive=False,
                   style_function=lambda f: {"color": TOWNSHIP_STROKE, "weight": 2.2, "fill": False,
                                             "dashArray": "6 4"}).add_to(layer)
    layer.add_to(fmap)


def _add_agencies(fmap, model: CoverageModel) -> None:
    lang = current_lang()
    layer = folium.FeatureGroup(name=tr("map.layer.agencies"), show=True)
    for active, row in zip(model.active, model.agencies.itertuples()):
        care_type, status = str(row.care_type), str(row.status)
        style = marker_style(care_type, status) if active else dict(
            radius=7, color="#777777", weight=2, fill=True, fill_color="#ffffff", fill_opacity=0.9, dash_array="3 3")
        state = tr("coverage.agency_on") if active else tr("coverage.agency_off")
        folium.CircleMarker(location=[row.geometry.y, row.geometry.x],
                            tooltip=html.escape(f"{row.name} · {label('care_type', care_type, lang=lang)} · {state}"),
                            **style).add_to(layer)
    layer.add_to(fmap)


def coverage_map(model: CoverageModel, region, *, map_threshold: float, isochrone_frame: gpd.GeoDataFrame | None,
                 noun: str) -> folium.Map:
    """Offline map: minutes to the nearest active agency in fixed classes, uncovered units, service areas."""
    travel = lighten(travel_time_layer(model, breaks=MINUTE_BREAKS))
    travel["minutes_text"] = [tr("coverage.class.unreachable") if not np.isfinite(m) else f"{m:.1f}"
                              for m in travel["nearest_minutes"].to_numpy(dtype=float)]
    minx, miny, maxx, maxy = travel.total_bounds
    fmap = base_map(bounds=[[miny, minx], [maxy, maxx]], lang=current_lang())
    _add_context_layers(fmap, region)

    layer = folium.FeatureGroup(name=tr("coverage.layer.minutes"), show=True)
    folium.GeoJson(
        _plain_geojson(travel, ["name", "township", "minutes_text", "nearest_agency_name", "color"]),
        style_function=lambda f: {"fillColor": f["properties"]["color"], "color": "#ffffff", "weight": 0.4,
                                  "fillOpacity": 0.7},
        highlight_function=lambda f: {"weight": 2, "color": "#333333"},
        tooltip=folium.GeoJsonTooltip(fields=["name", "township", "minutes_text", "nearest_agency_name"],
                                      aliases=[tr("coverage.col.unit"), tr("col.township"),
                                               tr("coverage.col.nearest_minutes"), tr("coverage.col.nearest_agency")]),
    ).add_to(layer)
    layer.add_to(fmap)

    if isochrone_frame is not None and len(isochrone_frame):
        shown = isochrone_frame[(isochrone_frame["minutes"] == map_threshold)
                                & isochrone_frame["agency_id"].isin(model.active_agency_ids)]
        for row in shown.itertuples():
            group = folium.FeatureGroup(name=tr("coverage.layer.isochrone", name=row.name, m=f"{map_threshold:g}"),
                                        show=False)
            folium.GeoJson({"type": "Feature", "properties": {}, "geometry": row.geometry.__geo_interface__},
                           style_function=lambda f, c=row.color: {"fillColor": c, "color": c, "weight": 1.5,
                                                                  "fillOpacity": 0.18},
                           tooltip=html.escape(tr("coverage.isochrone_tip", name=row.name, m=f"{map_threshold:g}")),
                           ).add_to(group)
            group.add_to(fmap)

    uncovered = uncovered_layer(model, threshold=map_threshold)
    layer = folium.FeatureGroup(name=tr("coverage.layer.uncovered", m=f"{map_threshold:g}"), show=True)
    if len(uncovered):
        folium.GeoJson(_plain_geojson(lighten(uncovered), ["name", "demand"]),
                       style_function=lambda f: {"color": UNCOVERED_COLOR, "weight": 2.5, "fill": False},
                       interactive=False).add_to(layer)
    layer.add_to(fmap)
    _add_agencies(fmap, model)

    items = "".join(f"<div>{_square(c)}{html.escape(lbl)}</div>"
                    for c, lbl in zip(CLASS_COLORS, _class_labels(MINUTE_BREAKS)))
    items += (f'<div>{_square("transparent", outline=UNCOVERED_COLOR)}'
              f'{html.escape(tr("coverage.legend.uncovered", m=f"{map_threshold:g}"))}</div>')
    items += f'<div class="ttl">{html.escape(tr("map.legend.title"))}</div>'
    items += "".join(f'<div><span class="sw" style="background:{CARE_TYPE_COLORS[c]};border:1.5px solid #333"></span>'
                     f'{html.escape(label("care_type", c, lang=current_lang()))}</div>' for c in CARE_TYPES)
    items += (f'<div><span class="sw" style="background:#fff;border:2px dashed #777"></span>'
              f'{html.escape(tr("coverage.agency_off"))}</div>')
    Legend(f'<div class="ttl">{html.escape(tr("coverage.legend.title"))}</div>{items}').add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)
    return fmap


def access_map(scores: gpd.GeoDataFrame, region) -> folium.Map:
    """Offline map of the E2SFCA classes (well served, under-served, no access, no demand)."""
    minx, miny, maxx, maxy = scores.total_bounds
    fmap = base_map(bounds=[[miny, minx], [maxy, maxx]], lang=current_lang())
    _add_context_layers(fmap, region)
    frame = lighten(scores).assign(
        color=scores["class"].map(ACCESS_COLORS).to_numpy(),
        class_text=[tr(f"coverage.access.class.{c}") for c in scores["class"]],
        score_text=[f"{s:.3f}" for s in scores["e2sfca_score"].to_numpy(dtype=float)],
        relative_text=[f"{100 * r:.0f}%" if np.isfinite(r) else "—" for r in scores["relative_access"].to_numpy(dtype=float)],
    )
    layer = folium.FeatureGroup(name=tr("coverage.access.layer"), show=True)
    folium.GeoJson(
        _plain_geojson(frame, ["name", "class_text", "score_text", "relative_text", "color"]),
        style_function=lambda f: {"fillColor": f["properties"]["color"], "color": "#ffffff", "weight": 0.4,
                                  "fillOpacity": 0.7},
        tooltip=folium.GeoJsonTooltip(fields=["name", "class_text", "score_text", "relative_text"],
                                      aliases=[tr("coverage.col.unit"), tr("coverage.access.col.class"),
                                               tr("coverage.access.col.score"), tr("coverage.access.col.relative")]),
    ).add_to(layer)
    layer.add_to(fmap)
    items = "".join(f"<div>{_square(ACCESS_COLORS[c])}{html.escape(tr(f'coverage.access.class.{c}'))}</div>"
                    for c in ACCESS_COLORS)
    Legend(f'<div class="ttl">{html.escape(tr("coverage.access.legend"))}</div>{items}').add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)
    return fmap


# ----------------------------------------------------------------------------------------------------------------
# E2SFCA
# ----------------------------------------------------------------------------------------------------------------
def decay_description(decay: str, catchment: float) -> str:
    """The distance-decay function in words, with its actual breakpoints and weights."""
    if decay == "stepped":
        a, b, c = (catchment / 3, 2 * catchment / 3, catchment)
        w1, w2, w3 = LUO_QI_WEIGHTS
        return tr("coverage.decay.stepped_text", a=f"{a:g}", b=f"{b:g}", c=f"{c:g}", w1=w1, w2=w2, w3=w3)
    return tr("coverage.decay.gaussian_text", sigma=f"{catchment / 3:g}", c=f"{catchment:g}")


def access_classes(model: AccessibilityModel) -> pd.DataFrame:
    """Unit scores with ``class``: units without LTCI demand are set apart, never counted as under-served."""
    scores = model.unit_scores()
    scores["class"] = np.where(scores["demand"].to_numpy(dtype=float) > 0, scores["access_class"], "no_demand")
    return scores


def _access_section(region, units, matrix, active, noun: str):
    st.subheader(tr("coverage.access.title"))
    st.caption(tr("coverage.access.intro"))
    c1, c2, c3 = st.columns(3)
    st.session_state.setdefault(P + "decay", "stepped")
    decay = c1.radio(tr("coverage.decay"), DECAYS, key=P + "decay", horizontal=True,
                     format_func=lambda d: tr(f"coverage.decay.{d}"))
    _keep_valid(P + "catchment", CATCHMENTS, 30)
    catchment = c2.selectbox(tr("coverage.catchment"), CATCHMENTS, key=P + "catchment",
                             format_func=lambda m: tr("coverage.minutes", m=m))
    _keep_valid(P + "access_care_type", ("all",) + CARE_TYPES, "all")
    care_type = c3.selectbox(tr("coverage.access.care_type"), ("all",) + CARE_TYPES, key=P + "access_care_type",
                             format_func=lambda c: tr("coverage.group.all") if c == "all"
                             else label("care_type", c, lang=current_lang()))
    st.markdown(tr("coverage.decay.named", text=decay_description(decay, float(catchment))))
    model = AccessibilityModel(matrix, units, region.agencies, decay=decay, catchment_min=float(catchment),
                               active_agency_ids=active, care_types=None if care_type == "all" else [care_type]).solve()
    scores = access_classes(model)
    names = units.set_index(units["unit_id"].astype(str))
    scores["name"] = names["name"].reindex(scores["unit_id"]).astype(str).to_numpy()
    scores["township"] = names["township"].reindex(scores["unit_id"]).astype(str).to_numpy()
    if not model.active.any():
        st.warning(tr("coverage.access.no_supply"))
    counts = scores["class"].value_counts()
    demand = scores.groupby("class")["demand"].sum()
    total_demand = float(scores["demand"].sum())
    cols = st.columns(4)
    cols[0].metric(tr("coverage.access.regional_ratio"),
                   "—" if not np.isfinite(model.regional_ratio) else f"{model.regional_ratio:.3f}",
                   help=tr("coverage.access.regional_ratio_help"), border=True)
    for col, klass in zip(cols[1:], ("well_served", "under_served", "no_access")):
        share = demand.get(klass, 0.0) / total_demand if total_demand > 0 else float("nan")
        col.metric(tr(f"coverage.access.class.{klass}"), tr("coverage.access.count", n=int(counts.get(klass, 0)), noun=noun),
                   tr("coverage.access.demand_share", share=100 * share) if np.isfinite(share) else None,
                   delta_color="off", delta_arrow="off", border=True)

    geo_scores = gpd.GeoDataFrame(scores, geometry=names.geometry.reindex(scores["unit_id"]).to_numpy(),
                                  crs=units.crs)
    map_col, table_col = st.columns([1, 1], gap="medium")
    with map_col:
        st_folium(access_map(geo_scores, region), key=P + "access_map", height=460, use_container_width=True,
                  returned_objects=[])
    with table_col:
        lacking = scores[scores["class"].isin(["under_served", "no_access"])].sort_values(
            ["relative_access", "demand"], ascending=[True, False])
        table = pd.DataFrame({
            tr("coverage.col.unit"): lacking["name"].to_numpy(),
            tr("col.township"): lacking["township"].to_numpy(),
            tr("coverage.col.demand"): lacking["demand"].round(2).to_numpy(),
            tr("coverage.access.col.score"): lacking["e2sfca_score"].round(4).to_numpy(),
            tr("coverage.access.col.relative"): (100 * lacking["relative_access"]).round(0).to_numpy(),
            tr("coverage.access.col.class"): [tr(f"coverage.access.class.{c}") for c in lacking["class"]],
        })
        st.markdown("**" + tr("coverage.access.lacking", n=len(table), noun=noun) + "**")
        if table.empty:
            st.success(tr("coverage.access.none_lacking"))
        else:
            st.dataframe(table, hide_index=True, width="stretch", height=380, key=P + "access_table")
            download_buttons(table, basename="e2sfca_under_served", key=P + "access_dl")
    if model.message:
        st.caption(model.message)
    return model, table


# ----------------------------------------------------------------------------------------------------------------
# Downloads
# ----------------------------------------------------------------------------------------------------------------


def report_pdf(model: CoverageModel, region, access: AccessibilityModel, lacking: pd.DataFrame, *, thresholds,
               notes: list[str], lang: str, decay_text: str) -> bytes:
    """The coverage report: map, tables, uncovered units and the E2SFCA summary, in ``lang``."""
    t = translator(lang)
    sections = coverage_sections(model, region, t=t, thresholds=thresholds)
    sections[0].text = " ".join(notes)  # the model's own message is English; the page's notes are translated
    sections.append(ReportSection(t("coverage.access.title"), text=decay_text,
                                  tables=[(t("coverage.access.lacking_short"), lacking.head(40))]))
    return build_pdf(t("report.title"), sections,
                     subtitle=f"{region.name} · {datetime.now():%Y-%m-%d %H:%M}",
                     attribution=str(region.meta.get("attribution", "")))


def _downloads(model, region, access, lacking, *, thresholds, map_threshold, notes, units_key, decay_text):
    st.subheader(tr("coverage.downloads"))
    stem = f"coverage_{units_key.replace(':', '_')}"
    lang = current_lang()
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        st.download_button(
            tr("coverage.dl.xlsx"), key=P + "dl.xlsx", file_name=f"{stem}.xlsx", mime=MIME_TYPES["xlsx"],
            data=deferred_download("xlsx", lambda: coverage_to_xlsx(model, thresholds=thresholds, accessibility=access,
                                                            uncovered_threshold=map_threshold)),
            on_click="ignore", width="stretch", icon=":material/table_view:")
    with c2:
        st.download_button(
            tr("coverage.dl.gpkg"), key=P + "dl.gpkg", file_name=f"{stem}.gpkg", mime=MIME_TYPES["gpkg"],
            data=deferred_download("gpkg", lambda: coverage_to_gpkg(model, thresholds=thresholds, accessibility=access)),
            on_click="ignore", width="stretch", icon=":material/map:")
    with c3:
        def units_csv() -> bytes:
            metrics = model.unit_metrics(thresholds=thresholds)
            scores = access.unit_scores().drop(columns=["demand"])
            return table_bytes(metrics.merge(scores, on="unit_id", how="left", validate="1:1"), "csv")

        st.download_button(tr("coverage.dl.csv"), key=P + "dl.csv", file_name=f"{stem}_units.csv",
                           mime=MIME_TYPES["csv"], data=deferred_download("csv", units_csv), on_click="ignore",
                           width="stretch", icon=":material/csv:")
    with c4:
        st.download_button(
            tr("coverage.dl.pdf"), key=P + "dl.pdf", file_name=f"{stem}_report.pdf", mime="application/pdf",
            data=deferred_download("pdf", lambda: report_pdf(model, region, access, lacking, thresholds=thresholds,
                                                     notes=notes, lang=lang, decay_text=decay_text)),
            on_click="ignore", width="stretch", type="primary", icon=":material/picture_as_pdf:")
    st.caption(tr("coverage.dl.note"))


# ----------------------------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------------------------
@friendly_errors()
def render() -> None:
    region = get_region()
    rid = _region_id(region)
    st.title(tr("coverage.title"))
    st.caption(tr("coverage.intro"))

    with st.expander(tr("coverage.settings"), expanded=True):
        c1, c2, c3 = st.columns([1.1, 1.0, 1.6], gap="medium")
        with c1:
            kind, resolution, cell_size = _unit_controls()
        with c2:
            thresholds, map_threshold = _threshold_controls()
        with c3:
            active = _agency_controls(region, rid)

    if not thresholds:
        st.warning(tr("coverage.no_thresholds"))
        return
    planned = _planning_units(region, rid, kind, resolution, cell_size)
    if planned is None:
        return
    units, units_key, matrix = planned
    noun = tr("coverage.noun.villages") if kind == "villages" else tr("coverage.noun.grid")
    if kind != "villages":
        st.caption(tr("coverage.grid_summary", n=len(units), population=float(units["population"].sum()),
                      source=tr("coverage.pop_source.points") if region.population is not None
                      else tr("coverage.pop_source.units")))

    base = _cached_coverage(matrix, units, region.agencies, rid, _agency_key(region.agencies), units_key)
    # Agency toggles: only the per-care-type minima are recomputed, never the shortest paths.
    model = base if set(active) == set(base.active_agency_ids) else base.with_active(active)

    notes = _notes(model, noun)
    for level, text in notes:
        getattr(st, level)(text)

    _coverage_section(model, thresholds, map_threshold, noun)

    map_col, list_col = st.columns([3, 2], gap="medium")
    with map_col:
        st.subheader(tr("coverage.map_title", m=f"{map_threshold:g}"))
        st.session_state.setdefault(P + "show_isochrones", True)
        show_iso = st.toggle(tr("coverage.show_isochrones"), key=P + "show_isochrones")
        iso = None
        if show_iso:
            with st.spinner(tr("coverage.isochrones_building")):
                iso = _cached_isochrones(region, rid, _agency_key(region.agencies), map_threshold)
        st_folium(coverage_map(model, region, map_threshold=map_threshold, isochrone_frame=iso, noun=noun),
                  key=P + "map", height=560, use_container_width=True, returned_objects=[])
        if iso is not None and len(iso):
            st.caption(tr("coverage.isochrones_download", m=f"{map_threshold:g}"))
            download_buttons(iso.drop(columns=["color"], errors="ignore"), basename="service_areas",
                             formats=("gpkg",), key=P + "iso_dl")
    with list_col:
        _uncovered_section(model, map_threshold, noun)

    st.divider()
    access, lacking = _access_section(region, units, matrix, active, noun)
    st.divider()
    _downloads(model, region, access, lacking, thresholds=thresholds, map_threshold=map_threshold,
               notes=[text for _, text in notes], units_key=units_key,
               decay_text=decay_description(access.decay if isinstance(access.decay, str) else "stepped",
                                            access.catchment_min))


render()
