"""选址规划: where the next agencies should go, given the ones already there.

Three planner questions map onto the siting models of :mod:`planning.siting`:

* 下几家机构放哪里？ — MCLP (demand within T, maximised with p new sites) or p-median (demand-weighted minutes);
* 最少新增几家？ — LSCP (fewest or cheapest new sites bringing every unit, or a share of demand, within T);
* 增加这个候选点会带来什么变化？ — one chosen candidate added to the current agencies, compared with the status quo.

Candidates come from the sources of :mod:`planning.candidates` (health facilities that are not agencies yet,
under-served units, map clicks, an uploaded list, grid centroids). Shortest paths run once per candidate source
(``st.cache_resource``): a click adds only its own row, and the exclusion distance, threshold, p or presets only
re-run numpy and the MIP. Results become :class:`planning.scenarios.Scenario` objects, compared with the status quo,
saved to the workspace, reloaded, and promoted to the registry as ``planned`` agencies.
"""

from __future__ import annotations

import html
import io
import logging
from datetime import datetime
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from geo import settings
from geo.errors import InputError, PlanningError
from geo.schema import ACTIVE_STATUSES, CARE_TYPE_COLORS, CARE_TYPES, CRS
from geo.traveltime import TravelMatrix
from planning import candidates as cand
from planning import siting
from planning.report import ReportSection, build_pdf
from planning.scenarios import Scenario, compare_scenarios, promote_to_registry
from ui.common import (
    current_lang, download_buttons, friendly_errors, get_basemap_roads, get_region, get_travel_matrix,
    lang_widget, region_key, set_lang_widget, show_error, tr,
    deferred_download,
)
from ui.maps import ROAD_STYLES, TOWNSHIP_STROKE, Legend, Popup, base_map, lighten, marker_style
from ui.strings import label, translator
from ui.workspace_session import current_actor, get_workspace, invalidate_region, is_planner, planner_notice

log = logging.getLogger("ltci.ui.siting")

P = "siting."  # session-state prefix of this page
QUESTIONS = ("next", "fewest", "what_if")
NEXT_MODELS = ("mclp", "pmedian")
SOURCES = ("health", "underserved", "click", "upload", "grid")
DEFAULT_SOURCES = ["health", "grid"]
#: The demo region already has 99% of demand within 15 minutes; at 10 minutes the next sites visibly matter.
DEFAULT_THRESHOLD = 10
DEFAULT_P = 3
DEFAULT_CELL_M = 1000
DEFAULT_EXCLUDE_M = 500
DEFAULT_CAPACITY = 50
DEFAULT_RESIDENTS_PER_SITE = 5000
TIME_LIMIT_S = 60.0
NEW_SITE_COLOR = "#7b2cbf"
NEWLY_COVERED_COLOR = "#2ca25f"
STILL_UNCOVERED_COLOR = "#d7301f"
CANDIDATE_COLOR = "#6c757d"


# ----------------------------------------------------------------------------------------------------------------
# Cached heavy steps: candidate sources and their shortest paths
# ----------------------------------------------------------------------------------------------------------------
def _region_id(region) -> str:
    return f"{region_key()}:{region.name}:{region.network.fingerprint()}"


def _points_key(frame: gpd.GeoDataFrame) -> tuple:
    return (tuple(frame["candidate_id"].astype(str)), tuple(np.round(frame.geometry.x, 7)),
            tuple(np.round(frame.geometry.y, 7)))


def health_facilities_path(region) -> Path | None:
    """The region's health-facility points: ``meta["health_facilities"]``, else the demo's raw OSM extract."""
    named = region.meta.get("health_facilities")
    if named and Path(named).exists():
        return Path(named)
    demo = settings.demo_region_dir / "raw" / "andorra_health.geojson"
    return demo if region.meta.get("demo") and demo.exists() else None


@st.cache_resource(show_spinner=False, max_entries=4)
def _cached_health_facilities(path: str) -> gpd.GeoDataFrame:
    return cand.candidates_from_health_facilities(path)


@st.cache_resource(show_spinner=False, max_entries=6)
def _cached_grid_candidates(_region, region_id: str, cell_size_m: float) -> gpd.GeoDataFrame:
    return cand.candidates_from_grid(_region.townships, cell_size_m=cell_size_m, townships=_region.townships)


@st.cache_resource(show_spinner=False, max_entries=32)
def _cached_source_matrix(_region, _frame, region_id: str, points_key: tuple) -> TravelMatrix:
    return cand.candidate_travel_matrix(_region.network, _frame, _region.units)


def _osm_number(identifier: str) -> str:
    digits = "".join(ch for ch in str(identifier).split("-")[-1] if ch.isdigit())
    return digits


def health_candidates(region) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Health facilities (township health-centre stand-ins) that are not already agencies, and those that are.

    A facility is already an agency when the registry holds the same OSM object or an agency lies within 30 m.
    """
    path = health_facilities_path(region)
    if path is None:
        raise PlanningError(tr("siting.health_missing"))
    facilities = _cached_health_facilities(str(path))
    agencies = region.agencies
    known = {_osm_number(a) for a in agencies["agency_id"].astype(str)} - {""}
    same_object = facilities["candidate_id"].map(_osm_number).isin(known).to_numpy()
    close = np.zeros(len(facilities), bool)
    if len(agencies):
        try:
            _, near = cand.exclude_near_agencies(facilities, agencies, min_distance_m=30.0, active_only=False)
            close = facilities["candidate_id"].isin(near["candidate_id"]).to_numpy()
        except PlanningError:  # every facility hosts an agency already
            close = np.ones(len(facilities), bool)
    already = same_object | close
    return facilities[~already].copy(), facilities[already].copy()


def _stack_matrices(parts: list[TravelMatrix]) -> TravelMatrix:
    return TravelMatrix(np.vstack([m.minutes for m in parts]), np.concatenate([m.agency_ids for m in parts]),
                        parts[0].unit_ids)


# ----------------------------------------------------------------------------------------------------------------
# Controls
# ----------------------------------------------------------------------------------------------------------------
def _keep_valid(key: str, options, default) -> None:
    value = st.session_state.get(key)
    if value is None or value not in set(options):
        st.session_state[key] = default


def _question_controls() -> dict:
    opts: dict = {}
    opts["question"] = lang_widget(st.radio, tr("siting.question"), QUESTIONS, key=P + "question", default="next",
                                   format_func=lambda q: tr(f"siting.question.{q}"))
    c1, c2, c3 = st.columns(3)
    st.session_state.setdefault(P + "threshold", DEFAULT_THRESHOLD)
    opts["threshold"] = float(c1.number_input(tr("siting.threshold"), min_value=1, max_value=240, step=5,
                                              key=P + "threshold", help=tr("siting.threshold_help")))
    if opts["question"] == "next":
        with c2:
            opts["model"] = lang_widget(st.radio, tr("siting.model"), NEXT_MODELS, key=P + "model", default="mclp",
                                        format_func=lambda m: tr(f"siting.model.{m}"), horizontal=True)
        st.session_state.setdefault(P + "p", DEFAULT_P)
        opts["p"] = int(c3.number_input(tr("siting.p"), min_value=1, max_value=500, step=1, key=P + "p"))
    elif opts["question"] == "fewest":
        opts["model"] = "lscp"
        st.session_state.setdefault(P + "share", 100)
        opts["share"] = c2.slider(tr("siting.share"), min_value=50, max_value=100, step=1, key=P + "share",
                                  format="%d%%", help=tr("siting.share_help")) / 100.0
    else:
        opts["model"] = "what_if"
    return opts


def _candidate_controls() -> dict:
    opts: dict = {}
    opts["sources"] = lang_widget(st.multiselect, tr("siting.sources"), SOURCES, key=P + "sources",
                                  default=list(DEFAULT_SOURCES), format_func=lambda s: tr(f"siting.source.{s}"))
    c1, c2 = st.columns(2)
    st.session_state.setdefault(P + "cell_m", DEFAULT_CELL_M)
    opts["cell_m"] = float(c1.number_input(tr("siting.cell_m"), min_value=200, max_value=20_000, step=100,
                                           key=P + "cell_m", disabled="grid" not in opts["sources"]))
    st.session_state.setdefault(P + "exclude_m", DEFAULT_EXCLUDE_M)
    opts["exclude_m"] = float(c2.number_input(tr("siting.exclude_m"), min_value=0, max_value=20_000, step=100,
                                              key=P + "exclude_m", help=tr("siting.exclude_help")))
    if "upload" in opts["sources"]:
        opts["upload"] = st.file_uploader(tr("siting.upload"), type=["csv", "geojson", "json", "gpkg"],
                                          key=P + "upload", help=tr("siting.upload_help"))
    if "click" in opts["sources"] or st.session_state.get(P + "clicks"):
        clicks = st.session_state.get(P + "clicks", [])
        c1, c2 = st.columns([3, 1])
        c1.caption(tr("siting.clicks", n=len(clicks)))
        c2.button(tr("siting.clicks_clear"), key=P + "clicks_clear", disabled=not clicks,
                  on_click=lambda: st.session_state.__setitem__(P + "clicks", []))
    return opts


def _option_controls(question: str) -> dict:
    opts: dict = {}
    with st.expander(tr("siting.options"), expanded=False):
        c1, c2, c3 = st.columns(3)
        with c1:
            st.markdown("**" + tr("siting.cost_title") + "**")
            st.session_state.setdefault(P + "use_cost", False)
            opts["use_cost"] = st.toggle(tr("siting.use_cost"), key=P + "use_cost", help=tr("siting.cost_help"))
            weights = {}
            for source in ("health", "grid", "underserved"):
                st.session_state.setdefault(P + f"cost.{source}", 1.0)
                weights[source] = float(st.number_input(
                    tr("siting.cost_of", source=tr(f"siting.source.{source}")), min_value=0.05, max_value=100.0,
                    step=0.1, key=P + f"cost.{source}", disabled=not opts["use_cost"]))
            opts["cost_weights"] = weights if opts["use_cost"] else {}
            st.session_state.setdefault(P + "budget", 0.0)
            opts["budget"] = float(st.number_input(tr("siting.budget"), min_value=0.0, step=0.5, key=P + "budget",
                                                   help=tr("siting.budget_help"),
                                                   disabled=question != "next")) or None
        with c2:
            st.markdown("**" + tr("siting.capacity_title") + "**")
            st.session_state.setdefault(P + "capacitated", False)
            opts["capacitated"] = st.toggle(tr("siting.capacitated"), key=P + "capacitated",
                                            help=tr("siting.capacitated_help"), disabled=question == "what_if")
            st.session_state.setdefault(P + "capacity", DEFAULT_CAPACITY)
            opts["capacity"] = float(st.number_input(tr("siting.capacity"), min_value=1, max_value=100_000, step=5,
                                                     key=P + "capacity", help=tr("siting.capacity_help")))
        with c3:
            st.markdown("**" + tr("siting.presets_title") + "**")
            st.session_state.setdefault(P + "urban", False)
            opts["urban"] = st.toggle(tr("siting.urban"), key=P + "urban", help=tr("siting.urban_help"),
                                      disabled=question == "what_if")
            st.session_state.setdefault(P + "residents", DEFAULT_RESIDENTS_PER_SITE)
            opts["residents"] = float(st.number_input(tr("siting.residents"), min_value=100, max_value=1_000_000,
                                                      step=500, key=P + "residents"))
            st.session_state.setdefault(P + "rural", False)
            opts["rural"] = st.toggle(tr("siting.rural"), key=P + "rural", help=tr("siting.rural_help"))
            st.session_state.setdefault(P + "preference", 0.3)
            opts["preference"] = float(st.slider(tr("siting.preference"), min_value=0.0, max_value=0.9, step=0.05,
                                                 key=P + "preference", disabled=not opts["rural"]))
            st.session_state.setdefault(P + "near_m", 1000)
            opts["near_m"] = float(st.number_input(tr("siting.near_m"), min_value=0, max_value=20_000, step=100,
                                                   key=P + "near_m", disabled=not opts["rural"]))
    return opts


# ----------------------------------------------------------------------------------------------------------------
# Candidates
# ----------------------------------------------------------------------------------------------------------------
def _with_townships(pool: gpd.GeoDataFrame, townships: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Fill empty ``township`` values from the township polygon each candidate lies in (nearest when outside)."""
    blank = pool["township"].fillna("").astype(str).str.strip() == ""
    if not blank.any() or townships is None or not len(townships):
        return pool
    joined = gpd.sjoin_nearest(pool.loc[blank, ["geometry"]].to_crs(3857), townships[["name", "geometry"]].to_crs(3857),
                               how="left")
    joined = joined[~joined.index.duplicated()]
    pool = pool.copy()
    pool.loc[blank, "township"] = joined["name"].reindex(pool.index[blank]).fillna("").astype(str).to_numpy()
    return pool


def build_candidates(region, opts: dict, *, existing_best: pd.Series, threshold: float) -> dict:
    """The candidate pool and its matrix after exclusions, with every left-out candidate and why.

    Returns a dict with ``pool`` (GeoDataFrame), ``matrix`` (TravelMatrix, rows in pool order), ``excluded``
    (GeoDataFrame with ``reason``), ``notes`` (list of (level, text)) and ``health`` (health-facility points).
    """
    rid = _region_id(region)
    frames, notes, health = [], [], None
    sources = list(opts["sources"])
    if not sources:
        raise PlanningError(tr("siting.no_sources"))
    if "health" in sources or opts.get("rural"):
        try:
            health, already = health_candidates(region)
            if "health" in sources:
                frames.append(health)
                if len(already):
                    notes.append(("info", tr("siting.health_already", n=len(already))))
        except PlanningError as exc:
            notes.append(("warning", str(exc)))
    if "underserved" in sources:
        try:
            frames.append(cand.candidates_from_underserved_units(region.units, existing_best, threshold_min=threshold))
        except PlanningError:
            notes.append(("info", tr("siting.none_underserved", m=f"{threshold:g}")))
    if "click" in sources and st.session_state.get(P + "clicks"):
        frames.append(cand.candidates_from_points(st.session_state[P + "clicks"], source="click",
                                                  region=region.boundary))
    if "upload" in sources and opts.get("upload") is not None:
        upload = opts["upload"]
        try:
            frames.append(cand.read_candidates(upload.getvalue(), filename=upload.name, region=region.boundary))
        except (InputError, PlanningError) as exc:
            show_error(exc)  # the other sources still run; the upload's problems are listed
    if "grid" in sources:
        with st.spinner(tr("siting.grid_building", m=f"{opts['cell_m']:g}")):
            frames.append(_cached_grid_candidates(region, rid, opts["cell_m"]))
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        raise PlanningError(tr("siting.no_candidates"))
    with st.spinner(tr("siting.matrix_building", n=sum(len(f) for f in frames))):
        parts = [_cached_source_matrix(region, f, rid, _points_key(f)) for f in frames]
    pool = cand.combine_candidates(*frames)
    matrix = _stack_matrices(parts)
    pool = _with_townships(pool, region.townships)
    if opts.get("cost_weights"):
        weight = pool["source"].map({"health_facility": opts["cost_weights"].get("health", 1.0),
                                     "grid": opts["cost_weights"].get("grid", 1.0),
                                     "underserved_unit": opts["cost_weights"].get("underserved", 1.0)}).fillna(1.0)
        pool["setup_cost"] = pool["setup_cost"].to_numpy(float) * weight.to_numpy(float)
    if opts.get("rural"):
        centres = health if health is not None else pool.iloc[0:0]
        pool = cand.prefer_near_health_centres(pool, centres, within_m=opts["near_m"], preference=opts["preference"])
    excluded = []
    active = region.agencies[region.agencies["status"].isin(ACTIVE_STATUSES)]
    if len(active) and opts["exclude_m"] > 0:
        try:
            pool, near = cand.exclude_near_agencies(pool, active, min_distance_m=opts["exclude_m"])
        except PlanningError as exc:
            raise PlanningError(tr("siting.err.none_left", n=len(pool), d=f"{opts['exclude_m']:g}")) from exc
        if len(near):
            excluded.append(near.assign(reason=[tr("siting.reason.near", d=f"{d:.0f}", agency=a)
                                                for d, a in zip(near["distance_m"], near["nearest_agency_id"])]))
    try:
        pool, off, matrix = cand.exclude_off_network(pool, matrix)
    except PlanningError as exc:
        raise PlanningError(tr("siting.err.all_off_network", n=len(pool))) from exc
    if len(off):
        excluded.append(off.assign(reason=tr("siting.reason.off_network")))
        user_off = off[off["source"].isin(["click", "upload"])]
        if len(user_off):
            notes.append(("warning", tr("siting.user_off_network", n=len(user_off),
                                        names="、".join(user_off["name"].astype(str).head(5)))))
    excluded = pd.concat(excluded, ignore_index=True) if excluded else pool.iloc[0:0].assign(reason=[])
    return {"pool": pool.reset_index(drop=True), "matrix": matrix, "excluded": excluded, "notes": notes,
            "health": health}


# ----------------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------------
def existing_capacity(agencies: gpd.GeoDataFrame) -> np.ndarray:
    """Capacity of each agency: its ``capacity``, else caregivers × clients per caregiver, else unlimited."""
    cap = pd.to_numeric(agencies.get("capacity"), errors="coerce").to_numpy(float) if "capacity" in agencies \
        else np.full(len(agencies), np.nan)
    if "certified_caregivers" in agencies:
        staff = pd.to_numeric(agencies["certified_caregivers"], errors="coerce").to_numpy(float)
        cap = np.where(np.isnan(cap) | (cap <= 0), staff * settings.clients_per_caregiver, cap)
    return np.where(np.isnan(cap) | (cap <= 0), np.inf, cap)


@st.cache_resource(show_spinner=False, max_entries=24)
def _cached_solve(_cmatrix, _existing, _demand, _setup_cost, _groups, _existing_cap, key: tuple):
    """The exact model and its greedy comparison row, solved once per parameter set."""
    model_name, threshold, p, share, capacity, budget, min_new = key[-7:]
    common = dict(existing=_existing, demand=_demand)
    exact = dict(common, setup_cost=_setup_cost)
    if min_new:
        exact.update(candidate_group=_groups, min_new_by_group=dict(min_new))
    if capacity is not None:
        exact.update(candidate_capacity=np.full(len(_cmatrix.agency_ids), float(capacity)),
                     existing_capacity=_existing_cap if _existing is not None else None)
    if model_name == "mclp":
        model = siting.MCLP.from_travel_matrix(_cmatrix, threshold_min=threshold, p=p, budget=budget, **exact)
        greedy_opts = dict(goal="coverage", p=p, threshold_min=threshold)
    elif model_name == "pmedian":
        model = siting.PMedian.from_travel_matrix(_cmatrix, threshold_min=threshold, p=p, budget=budget, **exact)
        greedy_opts = dict(goal="median", p=p, threshold_min=threshold)
    else:
        model = siting.LSCP.from_travel_matrix(_cmatrix, threshold_min=threshold, coverage_share=share, **exact)
        greedy_opts = dict(goal="cover_all", threshold_min=threshold) if share >= 1 else None
    model.solve(time_limit=TIME_LIMIT_S)
    greedy = None
    # The heuristic knows no capacities, budgets or group minimums: a row for it would compare unlike problems.
    if greedy_opts is not None and capacity is None and budget is None and not min_new:
        greedy = siting.Greedy.from_travel_matrix(_cmatrix, **common, **greedy_opts).solve()
    return model, greedy


def _model_summary(model) -> dict:
    return model.summary() if callable(model.summary) else dict(model.summary)


def best_single_candidate(matrix: TravelMatrix, existing_best: np.ndarray, demand: np.ndarray, threshold: float) -> str:
    """The candidate that alone brings the most demand newly within ``threshold`` (ties: shortest mean minutes)."""
    newly = (matrix.minutes <= threshold) & ~(existing_best <= threshold)[None, :]
    gain = newly.astype(float) @ demand
    better = np.maximum(existing_best[None, :] - np.where(np.isfinite(matrix.minutes), matrix.minutes, np.inf), 0)
    saved = np.where(np.isfinite(better), better, 0.0) @ demand
    order = np.lexsort((-saved, -gain))
    return str(matrix.agency_ids[order[0]])


def check_request(opts: dict, pool: gpd.GeoDataFrame, matrix: TravelMatrix, existing_best: np.ndarray,
                  unit_names: np.ndarray) -> None:
    """Refuse, before any solver runs, the requests that cannot be met, saying which setting to change."""
    threshold = opts["threshold"]
    if opts["question"] == "next" and opts["p"] > len(pool):
        raise PlanningError(tr("siting.err.p_too_large", p=opts["p"], n=len(pool)))
    nearest = float(np.min(matrix.minutes)) if matrix.minutes.size else float("inf")
    if opts["question"] != "fewest" and opts.get("model") != "pmedian" and nearest > threshold:
        raise PlanningError(tr("siting.err.t_too_small", m=f"{threshold:g}", nearest=f"{nearest:.1f}"))
    if opts["question"] == "fewest" and opts.get("share", 1.0) >= 1 and not opts["capacitated"]:
        best = np.minimum(existing_best, matrix.minutes.min(axis=0))
        beyond = np.flatnonzero(~(best <= threshold))
        if len(beyond):
            reachable = best[np.isfinite(best)]
            listed = "、".join(f"{unit_names[i]}（{_fmt_minutes(best[i])}）" for i in beyond[:6])
            raise PlanningError(tr("siting.err.unreachable", n=len(beyond), m=f"{threshold:g}", units=listed,
                                   need=f"{np.ceil(reachable.max()):.0f}" if len(reachable) else "—"))


# ----------------------------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------------------------
def _fmt_minutes(value: float) -> str:
    return f"{value:.1f}" if np.isfinite(value) else tr("siting.unreachable")


def coverage_compare_table(comparison) -> pd.DataFrame:
    """Coverage at each threshold, current vs proposed, for display and download."""
    c = comparison.coverage
    return pd.DataFrame({
        tr("siting.col.threshold"): [tr("siting.minutes", m=f"{m:g}") for m in c["threshold_min"]],
        tr("siting.col.share_a"): np.round(100 * c["covered_share_a"].to_numpy(float), 1),
        tr("siting.col.share_b"): np.round(100 * c["covered_share_b"].to_numpy(float), 1),
        tr("siting.col.change"): np.round(100 * c["covered_share_change"].to_numpy(float), 1),
        tr("siting.col.units_a"): c["covered_units_a"].astype(int).to_numpy(),
        tr("siting.col.units_b"): c["covered_units_b"].astype(int).to_numpy(),
        tr("siting.col.uncovered_a"): np.round(c["uncovered_demand_a"].to_numpy(float), 2),
        tr("siting.col.uncovered_b"): np.round(c["uncovered_demand_b"].to_numpy(float), 2),
    })


def travel_compare_table(comparison) -> pd.DataFrame:
    t = comparison.travel
    rows = []
    for key in ("mean_travel_min", "max_travel_min", "unreachable_units", "new_sites"):
        a, b, change = (float(t.loc[key, c]) for c in ("a", "b", "change"))
        minutes = key.endswith("_min")
        rows.append({
            tr("siting.col.measure"): tr(f"siting.measure.{key}"),
            tr("siting.col.current"): _fmt_minutes(a) if minutes else f"{a:.0f}",
            tr("siting.col.proposed"): _fmt_minutes(b) if minutes else f"{b:.0f}",
            tr("siting.col.delta"): (f"{change:+.1f}" if minutes else f"{change:+.0f}") if np.isfinite(change) else "—",
        })
    return pd.DataFrame(rows)


def sites_table(scenario: Scenario) -> gpd.GeoDataFrame:
    """The scenario's new sites with a translated source and lon/lat columns (for the table and the downloads)."""
    sites = scenario.new_sites.copy()
    sites["source"] = [tr(f"siting.source_label.{s}") if f"siting.source_label.{s}" in _known_keys() else s
                       for s in sites["source"].astype(str)]
    sites["lon"] = sites.geometry.x.round(6)
    sites["lat"] = sites.geometry.y.round(6)
    return sites


def _known_keys() -> set:
    from ui.strings import STRINGS

    return set(STRINGS)


def _sites_display(sites: gpd.GeoDataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        tr("siting.col.site_id"): sites["agency_id"].astype(str).to_numpy(),
        tr("siting.col.name"): sites["name"].astype(str).to_numpy(),
        tr("siting.col.source"): sites["source"].astype(str).to_numpy(),
        tr("col.township"): sites["township"].fillna("").astype(str).to_numpy(),
        tr("siting.col.setup_cost"): sites["setup_cost"].astype(float).round(2).to_numpy(),
        tr("siting.col.capacity"): sites["capacity"].astype(float).to_numpy(),
        "lon": sites["lon"].to_numpy(), "lat": sites["lat"].to_numpy(),
    })


def newly_covered_table(comparison, units: gpd.GeoDataFrame, threshold: float) -> pd.DataFrame:
    ids = comparison.became_covered(threshold)
    rows = comparison.units.loc[ids]
    names = units.set_index(units["unit_id"].astype(str))
    return pd.DataFrame({
        tr("siting.col.unit"): names["name"].reindex(ids).astype(str).to_numpy(),
        tr("col.township"): names["township"].reindex(ids).astype(str).to_numpy(),
        tr("siting.col.demand"): rows["demand"].round(2).to_numpy(),
        tr("siting.col.before"): [_fmt_minutes(m) for m in rows["travel_a_min"]],
        tr("siting.col.after"): [_fmt_minutes(m) for m in rows["travel_b_min"]],
    }).sort_values(tr("siting.col.demand"), ascending=False, kind="stable")


# ----------------------------------------------------------------------------------------------------------------
# Map
# ----------------------------------------------------------------------------------------------------------------
def _plain_geojson(frame: gpd.GeoDataFrame, columns: list[str]) -> dict:
    out = frame[[c for c in columns if c in frame] + ["geometry"]].copy()
    for c in out.columns:
        if c != "geometry" and pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(1).astype(object).where(np.isfinite(out[c].to_numpy(dtype=float)), None)
        elif c != "geometry":
            out[c] = out[c].astype(str)
    return out.__geo_interface__


def _sw(colour: str, *, square: bool = False, border: str = "#333", fill_opacity: float = 1.0) -> str:
    shape = "border-radius:2px;" if square else ""
    return (f'<span class="sw" style="{shape}background:{colour};opacity:{fill_opacity};'
            f'border:1.5px solid {border}"></span>')


def siting_map(region, scenario: Scenario, comparison, *, threshold: float, pool: gpd.GeoDataFrame | None,
               existing: gpd.GeoDataFrame) -> folium.Map:
    """Offline map: units that became covered within ``threshold``, those still beyond it, agencies, new sites."""
    lang = current_lang()
    minx, miny, maxx, maxy = region.townships.total_bounds
    fmap = base_map(bounds=[[miny, minx], [maxy, maxx]], lang=lang)
    roads = get_basemap_roads(region)
    if roads is not None and len(roads):
        layer = folium.FeatureGroup(name=tr("map.layer.roads"), show=True)
        folium.GeoJson(_plain_geojson(roads, ["highway"]), interactive=False,
                       style_function=lambda f: {"color": ROAD_STYLES.get(str(f["properties"].get("highway")),
                                                                          ROAD_STYLES["tertiary"])[0],
                                                 "weight": ROAD_STYLES.get(str(f["properties"].get("highway")),
                                                                           ROAD_STYLES["tertiary"])[1],
                                                 "opacity": 0.8, "fill": False}).add_to(layer)
        layer.add_to(fmap)
    became = set(comparison.became_covered(threshold))
    after = comparison.units["travel_b_min"]
    units = lighten(region.units[["unit_id", "name", "township", "geometry"]].copy())
    ids = units["unit_id"].astype(str)
    units["state"] = np.where(ids.isin(became), "newly",
                              np.where(after.reindex(ids).to_numpy(float) <= threshold, "covered", "uncovered"))
    units["state_text"] = [tr(f"siting.state.{s}", m=f"{threshold:g}") for s in units["state"]]
    units["before_text"] = [_fmt_minutes(m) for m in comparison.units["travel_a_min"].reindex(ids)]
    units["after_text"] = [_fmt_minutes(m) for m in after.reindex(ids)]
    fills = {"newly": NEWLY_COVERED_COLOR, "covered": "#e8eef7", "uncovered": "#fde0dd"}
    layer = folium.FeatureGroup(name=tr("siting.layer.units"), show=True)
    folium.GeoJson(
        _plain_geojson(units, ["name", "township", "state", "state_text", "before_text", "after_text"]),
        style_function=lambda f: {"fillColor": fills[f["properties"]["state"]],
                                  "color": STILL_UNCOVERED_COLOR if f["properties"]["state"] == "uncovered" else "#ffffff",
                                  "weight": 2 if f["properties"]["state"] == "uncovered" else 0.5,
                                  "fillOpacity": 0.7 if f["properties"]["state"] == "newly" else 0.45},
        highlight_function=lambda f: {"weight": 2, "color": "#333333"},
        tooltip=folium.GeoJsonTooltip(fields=["name", "township", "state_text", "before_text", "after_text"],
                                      aliases=[tr("siting.col.unit"), tr("col.township"), tr("siting.col.state"),
                                               tr("siting.col.before"), tr("siting.col.after")]),
    ).add_to(layer)
    layer.add_to(fmap)
    folium.GeoJson(_plain_geojson(lighten(region.townships), ["name"]), interactive=False,
                   style_function=lambda f: {"color": TOWNSHIP_STROKE, "weight": 2.2, "fill": False,
                                             "dashArray": "6 4"}).add_to(fmap)
    if pool is not None and len(pool):
        layer = folium.FeatureGroup(name=tr("siting.layer.candidates"), show=True)
        chosen = set(scenario.new_sites["agency_id"].astype(str).str.removeprefix("plan-"))
        for row in pool[~pool["candidate_id"].astype(str).isin(chosen)].itertuples():
            folium.CircleMarker(location=[row.geometry.y, row.geometry.x], radius=3, color=CANDIDATE_COLOR, weight=1,
                                fill=True, fill_color="#ffffff", fill_opacity=0.9,
                                tooltip=html.escape(f"{tr('siting.candidate')} · {row.name}")).add_to(layer)
        layer.add_to(fmap)
    layer = folium.FeatureGroup(name=tr("map.layer.agencies"), show=True)
    for row in existing.itertuples():
        folium.CircleMarker(location=[row.geometry.y, row.geometry.x],
                            tooltip=html.escape(f"{row.name} · {label('care_type', str(row.care_type), lang=lang)}"),
                            **marker_style(str(row.care_type), str(row.status))).add_to(layer)
    layer.add_to(fmap)
    layer = folium.FeatureGroup(name=tr("siting.layer.new_sites"), show=True)
    for i, row in enumerate(scenario.new_sites.itertuples(), start=1):
        text = html.escape(tr("siting.new_site_tip", i=i, name=row.name))
        marker = folium.CircleMarker(location=[row.geometry.y, row.geometry.x], radius=11, color="#ffffff", weight=3,
                                     fill=True, fill_color=NEW_SITE_COLOR, fill_opacity=1.0, tooltip=text)
        Popup(f"<b>{text}</b><br>{html.escape(str(row.agency_id))}", max_width=260).add_to(marker)
        marker.add_to(layer)
        folium.Marker(location=[row.geometry.y, row.geometry.x], icon=folium.DivIcon(
            html=f'<div class="ltci-site-no">{i}</div>', icon_size=(22, 22), icon_anchor=(11, 11))).add_to(layer)
    layer.add_to(fmap)
    fmap.get_root().header.add_child(folium.Element(
        "<style>.ltci-site-no{width:22px;height:22px;line-height:22px;text-align:center;color:#fff;font:700 12px "
        "sans-serif;pointer-events:none}</style>"))
    items = (f'<div class="ttl">{html.escape(tr("siting.legend.title"))}</div>'
             f'<div>{_sw(NEW_SITE_COLOR, border="#fff")}{html.escape(tr("siting.legend.new_site"))}</div>'
             f'<div>{_sw("#ffffff", border=CANDIDATE_COLOR)}{html.escape(tr("siting.legend.candidate"))}</div>'
             f'<div>{_sw(NEWLY_COVERED_COLOR, square=True, border="#fff", fill_opacity=0.8)}'
             f'{html.escape(tr("siting.legend.newly", m=f"{threshold:g}"))}</div>'
             f'<div>{_sw("#fde0dd", square=True, border=STILL_UNCOVERED_COLOR)}'
             f'{html.escape(tr("siting.legend.uncovered", m=f"{threshold:g}"))}</div>'
             f'<div class="ttl">{html.escape(tr("map.legend.title"))}</div>')
    items += "".join(f'<div>{_sw(CARE_TYPE_COLORS[c])}{html.escape(label("care_type", c, lang=lang))}</div>'
                     for c in CARE_TYPES)
    Legend(items).add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)
    return fmap


def scenario_png(region, scenario: Scenario, became: list[str], existing: gpd.GeoDataFrame) -> bytes:
    """A static map for the PDF: units that became covered (green), agencies, new sites (purple stars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 6.0), dpi=110)
    units = region.units
    flag = units["unit_id"].astype(str).isin(became).to_numpy()
    units[~flag].plot(ax=ax, color="#eef2f7", edgecolor="#9aa5b1", linewidth=0.3)
    if flag.any():
        units[flag].plot(ax=ax, color=NEWLY_COVERED_COLOR, edgecolor="white", linewidth=0.3)
    region.townships.boundary.plot(ax=ax, color="#33415c", linewidth=0.9)
    if len(existing):
        colours = existing["care_type"].map(CARE_TYPE_COLORS).fillna("#555555")
        ax.scatter(existing.geometry.x, existing.geometry.y, c=list(colours), s=36, edgecolors="black",
                   linewidths=0.6, zorder=5)
    sites = scenario.new_sites
    if len(sites):
        ax.scatter(sites.geometry.x, sites.geometry.y, marker="*", c=NEW_SITE_COLOR, s=260, edgecolors="white",
                   zorder=6)
        for i, (x, y) in enumerate(zip(sites.geometry.x, sites.geometry.y), start=1):
            ax.annotate(str(i), (x, y), xytext=(6, 6), textcoords="offset points", fontsize=9, weight="bold",
                        color=NEW_SITE_COLOR, zorder=7)
    ax.set_axis_off()
    ax.text(0.01, 0.01, str(region.meta.get("attribution", "© OpenStreetMap contributors")), transform=ax.transAxes,
            fontsize=6, color="#555")
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------------------------
# Report and downloads
# ----------------------------------------------------------------------------------------------------------------
def scenario_pdf(region, scenario: Scenario, became: list[str], *, threshold: float, existing: gpd.GeoDataFrame,
                 tables: dict[str, pd.DataFrame], lang: str) -> bytes:
    """The scenario report (Chinese by default): summary, map, coverage comparison, new sites, newly covered units.

    ``tables`` holds the page's already translated tables (``summary``, ``coverage``, ``travel``, ``sites``,
    ``newly``): the report runs on click, outside the script run, so it must not read the session.
    """
    t = translator(lang)
    m = f"{threshold:g}"
    sections = [
        ReportSection(t("siting.report.summary"), t("siting.report.summary_text", name=scenario.name,
                                                    n=len(scenario.new_sites), m=m, newly=len(became)),
                      tables=[(t("siting.report.parameters"), tables["summary"])]),
        ReportSection(t("siting.report.map"), t("siting.report.map_text", m=m),
                      scenario_png(region, scenario, became, existing)),
        ReportSection(t("siting.report.coverage"), tables=[(t("siting.report.coverage"), tables["coverage"]),
                                                            (t("siting.report.travel"), tables["travel"])]),
        ReportSection(t("siting.report.sites"), tables=[(t("siting.report.sites"), tables["sites"]),
                                                         (t("siting.report.newly", m=m), tables["newly"])]),
    ]
    return build_pdf(t("siting.report.title"), sections, subtitle=f"{region.name} · {datetime.now():%Y-%m-%d %H:%M}",
                     attribution=str(region.meta.get("attribution", "")))




# ----------------------------------------------------------------------------------------------------------------
# Scenarios in the workspace
# ----------------------------------------------------------------------------------------------------------------
def save_scenario(store, scenario: Scenario) -> int:
    """Save the scenario to the workspace: its new sites as the agency set, everything else in the results."""
    return store.save_scenario(scenario.name, scenario.new_sites, parameters=scenario.parameters,
                               results={"summary": scenario.summary, "scenario": scenario.to_dict()},
                               actor=current_actor())


def load_saved_scenario(store, scenario_id: int, region, existing_matrix: TravelMatrix, demand: pd.Series) -> Scenario:
    """A saved scenario; one saved without unit results (another tool) is re-evaluated on today's network."""
    saved = store.load_scenario(int(scenario_id))
    data = saved.results.get("scenario") if isinstance(saved.results, dict) else None
    if data:
        return Scenario.from_dict(data)
    sites = saved.agencies_frame()
    if not len(sites):
        raise PlanningError(tr("siting.saved_empty", name=saved.name))
    ids = sites["agency_id"].astype(str) if "agency_id" in sites else pd.Series(
        [f"saved-{i + 1}" for i in range(len(sites))])
    frame = gpd.GeoDataFrame({"candidate_id": ids.to_numpy(), "name": sites.get("name", ids).astype(str).to_numpy(),
                              "source": "saved", "setup_cost": 1.0, "township": ""},
                             geometry=sites.geometry.to_numpy(), crs=CRS)
    matrix = cand.candidate_travel_matrix(region.network, frame, region.units)
    return Scenario.from_sites(list(frame["candidate_id"]), name=saved.name, candidates=frame,
                               candidate_matrix=matrix, existing_matrix=existing_matrix, demand=demand,
                               parameters=dict(saved.parameters))


def promote(store, scenario: Scenario, *, care_type: str, default_capacity: float) -> int:
    """Add the scenario's new sites to the workspace registry as ``planned`` agencies; returns how many."""
    registry = store.read_agencies()
    promoted = promote_to_registry(scenario, registry, care_type=care_type, default_capacity=default_capacity)
    new_ids = set(scenario.new_sites["agency_id"].astype(str))
    rows = promoted[promoted["agency_id"].astype(str).isin(new_ids)]
    store.upsert_agencies(rows, actor=current_actor(), source=f"siting scenario: {scenario.name}")
    invalidate_region()
    return len(rows)


def _scenario_section(store, shown: Scenario, region, existing_matrix, demand) -> None:
    st.subheader(tr("siting.scenarios"))
    c1, c2, c3 = st.columns(3, gap="medium")
    planner = is_planner()
    with c1:
        st.markdown("**" + tr("siting.save_title") + "**")
        # The name follows the shown scenario until the planner types their own.
        if st.session_state.get(P + "save_name") in (None, st.session_state.get(P + "save_name_auto")):
            st.session_state[P + "save_name"] = shown.name
        st.session_state[P + "save_name_auto"] = shown.name
        name = st.text_input(tr("siting.save_name"), key=P + "save_name")
        if not planner:
            planner_notice()
        elif st.button(tr("siting.save"), key=P + "save", icon=":material/save:", width="stretch"):
            with friendly_errors():
                renamed = Scenario.from_dict({**shown.to_dict(), "name": name.strip() or shown.name})
                scenario_id = save_scenario(store, renamed)
                st.success(tr("siting.saved", name=renamed.name, id=scenario_id))
    with c2:
        st.markdown("**" + tr("siting.saved_title") + "**")
        saved = store.list_scenarios()
        if saved.empty:
            st.caption(tr("siting.saved_none"))
        else:
            names = dict(zip(saved["scenario_id"].astype(int), saved["name"].astype(str)))
            counts = dict(zip(saved["scenario_id"].astype(int), saved["n_agencies"].astype(int)))
            _keep_valid(P + "saved_pick", list(names), next(iter(names)))
            chosen = st.selectbox(tr("siting.saved_pick"), list(names), key=P + "saved_pick",
                                  format_func=lambda i: tr("siting.saved_option", id=i, name=names[i], n=counts[i]))
            if st.button(tr("siting.load"), key=P + "load", icon=":material/folder_open:", width="stretch"):
                with friendly_errors():
                    loaded = load_saved_scenario(store, int(chosen), region, existing_matrix, demand)
                    st.session_state[P + "loaded"] = loaded.to_dict()
                    st.rerun()
    with c3:
        st.markdown("**" + tr("siting.promote_title") + "**")
        st.caption(tr("siting.promote_help", name=shown.name, n=len(shown.new_sites)))
        lang = current_lang()
        care_type = lang_widget(st.selectbox, tr("siting.care_type"), CARE_TYPES, key=P + "care_type",
                                default="home", format_func=lambda c: label("care_type", c, lang=lang))
        in_registry = set(region.agencies["agency_id"].astype(str))
        already = [a for a in shown.new_sites["agency_id"].astype(str) if a in in_registry]
        if already:
            st.caption(tr("siting.already_promoted", n=len(already)))
        if not planner:
            planner_notice()
        elif st.button(tr("siting.promote"), key=P + "promote", icon=":material/add_location_alt:", width="stretch",
                       type="primary", disabled=not len(shown.new_sites) or bool(already)):
            with friendly_errors():
                n = promote(store, shown, care_type=care_type,
                            default_capacity=float(st.session_state.get(P + "capacity", DEFAULT_CAPACITY)))
                st.session_state[P + "promoted_message"] = tr("siting.promoted", n=n, name=shown.name)
                st.rerun()
        message = st.session_state.pop(P + "promoted_message", None)
        if message:
            st.success(message)


# ----------------------------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------------------------
def _add_click(clicked: dict | None, region) -> None:
    """A map click adds a candidate (once per click) and makes it the evaluated site of the what-if question.

    A click outside the region is refused here with its reason, so one stray click never blocks the page.
    """
    if not clicked:
        return
    point = (round(float(clicked["lng"]), 6), round(float(clicked["lat"]), 6))
    if st.session_state.get(P + "last_click") == point:
        return
    st.session_state[P + "last_click"] = point
    try:
        cand.candidates_from_points([point], source="click", region=region.boundary)
    except (InputError, PlanningError) as exc:
        st.session_state[P + "click_message"] = str(exc)
        st.rerun()
    clicks = list(st.session_state.get(P + "clicks", []))
    if point in clicks:
        return
    clicks.append(point)
    st.session_state[P + "clicks"] = clicks
    sources = list(st.session_state.get(P + "sources", DEFAULT_SOURCES))
    if "click" not in sources:
        set_lang_widget(P + "sources", sources + ["click"])
    st.session_state[P + "what_if_pick"] = f"click-{len(clicks)}"
    st.rerun()


def _summary_rows(summary: dict, scenario: Scenario, threshold: float) -> pd.DataFrame:
    rows = [(tr("siting.sum.name"), scenario.name)]
    model = str(summary.get("model", scenario.parameters.get("model", "")))
    rows.append((tr("siting.sum.model"), tr(f"siting.model_name.{model}") if f"siting.model_name.{model}" in _known_keys()
                 else model))
    rows.append((tr("siting.sum.threshold"), tr("siting.minutes", m=f"{threshold:g}")))
    if summary.get("p") is not None:
        rows.append((tr("siting.sum.p"), str(summary["p"])))
    rows.append((tr("siting.sum.new_sites"), str(len(scenario.new_sites))))
    objective = summary.get("objective")
    if objective is not None and np.isfinite(float(objective)):
        rows.append((tr("siting.sum.objective"), f"{float(objective):,.2f}"))
    gap = summary.get("mip_gap")
    if gap is not None and np.isfinite(float(gap)):
        rows.append((tr("siting.sum.gap"), f"{100 * float(gap):.3f}%"))
    if summary.get("solve_time_s") is not None:
        rows.append((tr("siting.sum.time"), f"{float(summary['solve_time_s']):.3f} s"))
    for key in ("candidates", "exclude_m", "sources"):
        if key in scenario.parameters:
            value = scenario.parameters[key]
            rows.append((tr(f"siting.sum.{key}"), "、".join(map(str, value)) if isinstance(value, list) else str(value)))
    return pd.DataFrame(rows, columns=[tr("siting.col.item"), tr("siting.col.value")])


def _results(model, greedy, opts) -> None:
    summary = _model_summary(model)
    objective_label = tr(f"siting.objective.{opts['model']}")
    cols = st.columns(4)
    cols[0].metric(objective_label, f"{summary['objective']:,.2f}", border=True)
    gap = summary["mip_gap"]
    cols[1].metric(tr("siting.gap"), f"{100 * gap:.3f}%" if np.isfinite(gap) else "—", border=True,
                   help=tr("siting.gap_help"))
    cols[2].metric(tr("siting.time"), f"{summary['solve_time_s']:.3f} s", border=True,
                   help=tr("siting.status", status=summary["status"]))
    share = summary.get("covered_share")
    cols[3].metric(tr("siting.covered_share", m=f"{opts['threshold']:g}"),
                   "—" if share is None else f"{100 * share:.1f}%", border=True)
    rows = [{"model": tr(f"siting.model_name.{summary['model']}"), "sites": summary["n_new_sites"],
             "objective": summary["objective"], "gap": gap, "time": summary["solve_time_s"]}]
    if greedy is not None:
        g = _model_summary(greedy)
        rows.append({"model": tr("siting.model_name.Greedy"), "sites": g["n_new_sites"], "objective": g["objective"],
                     "gap": float("nan"), "time": g["solve_time_s"]})
    table = pd.DataFrame({
        tr("siting.col.method"): [r["model"] for r in rows],
        tr("siting.col.sites"): [int(r["sites"]) for r in rows],
        objective_label: [round(float(r["objective"]), 2) for r in rows],
        tr("siting.gap"): [f"{100 * r['gap']:.3f}%" if np.isfinite(r["gap"]) else tr("siting.heuristic")
                           for r in rows],
        tr("siting.time"): [f"{r['time']:.4f} s" for r in rows],
    })
    st.markdown("**" + tr("siting.vs_greedy") + "**")
    st.table(table.style.format({objective_label: "{:,.2f}"}), hide_index=True, border="horizontal")
    if greedy is None:
        st.caption(tr("siting.greedy_na"))


def _change_metrics(comparison, threshold: float) -> None:
    """Headline change of a scenario without a solve (a what-if site or a saved scenario)."""
    row = comparison.coverage[comparison.coverage["threshold_min"] == threshold].iloc[0]
    travel = comparison.travel
    cols = st.columns(3)
    cols[0].metric(tr("siting.covered_share", m=f"{threshold:g}"), f"{100 * row['covered_share_b']:.1f}%",
                   tr("siting.delta_points", d=f"{100 * row['covered_share_change']:+.1f}"), border=True)
    cols[1].metric(tr("siting.measure.mean_travel_min"), _fmt_minutes(float(travel.loc["mean_travel_min", "b"])),
                   f"{float(travel.loc['mean_travel_min', 'change']):+.1f}", delta_color="inverse", border=True)
    cols[2].metric(tr("siting.col.uncovered_b"), f"{row['uncovered_demand_b']:.2f}",
                   f"{row['uncovered_demand_b'] - row['uncovered_demand_a']:+.2f}", delta_color="inverse", border=True)


@friendly_errors()
def render() -> None:
    region = get_region()
    st.title(tr("siting.title"))
    st.caption(tr("siting.intro"))

    with st.expander(tr("siting.settings"), expanded=True):
        left, right = st.columns([1.1, 1.0], gap="large")
        with left:
            opts = _question_controls()
        with right:
            opts.update(_candidate_controls())
    opts.update(_option_controls(opts["question"]))
    threshold = opts["threshold"]

    active = region.agencies[region.agencies["status"].isin(ACTIVE_STATUSES)].reset_index(drop=True)
    units = region.units
    unit_ids = units["unit_id"].astype(str).to_numpy()
    demand = pd.Series(units["demand"].to_numpy(float), index=unit_ids)
    if len(active):
        existing_matrix = get_travel_matrix(region).subset(agency_ids=active["agency_id"].astype(str),
                                                           unit_ids=unit_ids)
    else:
        st.warning(tr("siting.no_active"))
        existing_matrix = TravelMatrix(np.zeros((0, len(unit_ids))), [], unit_ids)
    existing_best = existing_matrix.minutes.min(axis=0) if len(active) else np.full(len(unit_ids), np.inf)
    status_quo = Scenario.from_matrix(existing_matrix, name=tr("siting.current"), demand=demand)

    built = build_candidates(region, opts, existing_best=pd.Series(existing_best, index=unit_ids),
                             threshold=threshold)
    pool, cmatrix = built["pool"], built["matrix"]
    for level, text in built["notes"]:
        getattr(st, level)(text)
    st.caption(tr("siting.pool", n=len(pool), excluded=len(built["excluded"])))
    if len(built["excluded"]):
        with st.expander(tr("siting.excluded_title", n=len(built["excluded"]))):
            shown_cols = ["candidate_id", "name", "source", "reason"]
            excluded = pd.DataFrame(built["excluded"][shown_cols])
            st.dataframe(excluded, hide_index=True, width="stretch", height=260, key=P + "excluded_table")
            download_buttons(excluded, basename="excluded_candidates", key=P + "excluded_dl")

    if opts["urban"] and opts["question"] != "what_if":
        need = cand.sites_needed_by_township(units, region.agencies, residents_per_site=opts["residents"])
        st.markdown("**" + tr("siting.urban_table", r=f"{opts['residents']:,.0f}") + "**")
        st.table(need.rename(columns={c: tr(f"siting.urban_col.{c}") for c in need.columns}), hide_index=True,
                 border="horizontal")
        min_new = tuple((str(k), int(v)) for k, v in zip(need["township"], need["shortfall"]) if v > 0)
    else:
        min_new = ()

    loaded = st.session_state.get(P + "loaded")
    model = greedy = None
    if not loaded:
        check_request(opts, pool, cmatrix, existing_best, units["name"].astype(str).to_numpy())
    if loaded:
        shown = Scenario.from_dict(loaded)
        st.info(tr("siting.viewing_saved", name=shown.name))
        st.button(tr("siting.back_to_result"), key=P + "unload",
                  on_click=lambda: st.session_state.pop(P + "loaded", None))
        summary = dict(shown.summary)
        show_threshold = float(shown.parameters.get("threshold_min") or threshold)
    elif opts["question"] == "what_if":
        ids = cmatrix.agency_ids.tolist()
        names = dict(zip(pool["candidate_id"].astype(str), pool["name"].astype(str)))
        best = best_single_candidate(cmatrix, existing_best, demand.to_numpy(float), threshold)
        _keep_valid(P + "what_if_pick", ids, best)
        pick = st.selectbox(tr("siting.what_if_pick"), ids, key=P + "what_if_pick",
                            format_func=lambda c: f"{names.get(c, c)} · {c}" + (f" ({tr('siting.best')})"
                                                                               if c == best else ""),
                            help=tr("siting.what_if_help"))
        shown = Scenario.from_sites([pick], name=tr("siting.what_if_name", name=names.get(pick, pick)),
                                    candidates=pool, candidate_matrix=cmatrix, existing_matrix=existing_matrix,
                                    demand=demand, capacity=opts["capacity"],
                                    parameters={"threshold_min": threshold, "sources": list(opts["sources"]),
                                                "exclude_m": opts["exclude_m"], "candidates": len(pool)})
        summary = {"model": "manual"}
        show_threshold = threshold
    else:
        key = (_region_id(region), _points_key(pool), tuple(np.round(pool["setup_cost"].to_numpy(float), 6)),
               tuple(active["agency_id"].astype(str)), opts["model"], threshold, opts.get("p"),
               opts.get("share", 1.0), opts["capacity"] if opts["capacitated"] else None,
               opts.get("budget") if opts["question"] == "next" else None, min_new)
        with st.spinner(tr("siting.solving")):
            model, greedy = _cached_solve(cmatrix, existing_matrix if len(active) else None, demand,
                                          pool["setup_cost"].to_numpy(float), pool["township"].astype(str).to_numpy(),
                                          existing_capacity(active), key)
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
        name = tr(f"siting.scenario_name.{opts['model']}", m=f"{threshold:g}", p=opts.get("p"),
                  n=len(model.selected_ids), stamp=stamp)
        shown = Scenario.from_model(model, name=name, candidates=pool, capacity=opts["capacity"], parameters={
            "sources": list(opts["sources"]), "exclude_m": opts["exclude_m"], "cell_m": opts["cell_m"],
            "urban_min_new": dict(min_new), "rural_preference": opts["preference"] if opts["rural"] else 0.0})
        summary = _model_summary(model)
        show_threshold = threshold

    comparison = compare_scenarios(status_quo, shown,
                                   thresholds=sorted(set(settings.coverage_thresholds_min) | {show_threshold}))
    became = comparison.became_covered(show_threshold)

    st.subheader(tr(f"siting.result.{'saved' if loaded else opts['question']}", n=len(shown.new_sites),
                    m=f"{show_threshold:g}", newly=len(became), name=shown.name))
    if model is not None:
        _results(model, greedy, opts)
    else:
        _change_metrics(comparison, show_threshold)
    if not len(shown.new_sites):
        st.success(tr("siting.none_needed", m=f"{show_threshold:g}"))

    map_col, table_col = st.columns([3, 2], gap="medium")
    with map_col:
        st.caption(tr("siting.map_hint"))
        refused = st.session_state.pop(P + "click_message", None)
        if refused:
            st.warning(tr("siting.click_refused", message=refused))
        fmap = siting_map(region, shown, comparison, threshold=show_threshold, pool=None if loaded else pool,
                          existing=active)
        state = st_folium(fmap, key=P + "map", height=560, use_container_width=True,
                          returned_objects=["last_clicked"])
        _add_click((state or {}).get("last_clicked"), region)
    with table_col:
        st.markdown("**" + tr("siting.sites_title", n=len(shown.new_sites)) + "**")
        sites = sites_table(shown)
        display = _sites_display(sites)
        st.dataframe(display, hide_index=True, width="stretch", key=P + "sites_table",
                     height=min(40 + 35 * max(len(display), 1), 300))
        st.markdown("**" + tr("siting.newly_title", n=len(became), m=f"{show_threshold:g}") + "**")
        newly = newly_covered_table(comparison, units, show_threshold)
        if newly.empty:
            st.caption(tr("siting.newly_none"))
        else:
            st.dataframe(newly, hide_index=True, width="stretch", key=P + "newly_table",
                         height=min(40 + 35 * len(newly), 260))

    st.subheader(tr("siting.compare_title", a=status_quo.name, b=shown.name))
    c1, c2 = st.columns([3, 2], gap="medium")
    coverage = coverage_compare_table(comparison)
    travel = travel_compare_table(comparison)
    with c1:
        percent = [tr("siting.col.share_a"), tr("siting.col.share_b"), tr("siting.col.change")]
        st.table(coverage.style.format({**{c: "{:.1f}%" for c in percent[:2]}, percent[2]: "{:+.1f}"},
                                       precision=2), hide_index=True, border="horizontal")
        download_buttons(coverage, basename="scenario_coverage", key=P + "coverage_dl")
    with c2:
        st.table(travel, hide_index=True, border="horizontal")
        download_buttons(travel, basename="scenario_travel", key=P + "travel_dl")

    st.subheader(tr("siting.downloads"))
    lang = current_lang()
    report_tables = {"summary": _summary_rows(summary, shown, show_threshold), "coverage": coverage,
                     "travel": travel, "sites": display.drop(columns=["lon", "lat"]), "newly": newly}
    stem = "siting_sites"
    export = sites.drop(columns=["lon", "lat"])
    c1, c2, c3, c4 = st.columns(4)
    download_buttons(export, basename=stem, formats=("xlsx", "gpkg", "csv"), key=P + "sites_dl", columns=[c1, c2, c3])
    with c4:
        st.download_button(
            tr("siting.dl.pdf"), key=P + "dl.pdf", file_name="siting_report.pdf", mime="application/pdf",
            data=deferred_download("pdf", lambda: scenario_pdf(region, shown, became, threshold=show_threshold,
                                                       existing=active, lang=lang, tables=report_tables)),
            on_click="ignore", width="stretch", type="primary", icon=":material/picture_as_pdf:")

    st.divider()
    _scenario_section(get_workspace(), shown, region, existing_matrix, demand)


render()
