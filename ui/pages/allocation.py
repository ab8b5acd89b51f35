"""分片包干: every village goes to exactly one active agency; operations on the plan; operating districts.

The page opens with a plan solved on the session's region with default parameters. The solve (CP-SAT or HiGHS, in
:class:`planning.allocation.AllocationModel`) is cached per region, registry and parameter set, failures
included, so a widget change elsewhere never re-runs it. Parameters live in one form: nothing is solved again
until the form is submitted.

The session keeps a *history* of plan versions (:class:`planning.plan_ops.Plan` as plain dicts): the solved
plan, then every operation on it (shortfall substitution, service-area reduction, suspension, re-plan), each
with the units that moved. A failed operation or solve leaves the current plan untouched. Saving writes the
current plan as the next version of a named plan in the workspace, with a change log against the version
saved before it.

All tables on the page are computed from the plan's assignment (not from the model), so the solved plan and
every derived plan are measured the same way.
"""

from __future__ import annotations

import html
import json
import logging
import tempfile
from datetime import datetime
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st
from branca.element import MacroElement
from folium.template import Template
from streamlit_folium import st_folium

from geo import settings
from geo.errors import InputError, PlanningError, Problem
from geo.schema import ACTIVE_STATUSES
from planning.adjacency import build_adjacency
from planning.allocation import (
    AllocationModel, AllocationWeights, agency_capacity, count_contiguity_violations, locate_own_units,
)
from planning.operating_districts import OperatingDistricts
from planning.plan_ops import Plan, diff_assignments, reduce_service_area, replan, substitute_shortfall, suspend_agency
from planning.report import ReportSection, build_pdf, map_png
from ui.common import (
    MIME_TYPES, current_lang, deferred_download, download_buttons, friendly_errors, get_basemap_roads, get_region,
    get_travel_matrix, region_key, show_error, tr,
)
from ui.maps import ROAD_STYLES, TOWNSHIP_STROKE, Legend, Popup, base_map, lighten
from ui.strings import label, translator
from ui.workspace_session import current_actor, get_workspace, is_planner, planner_notice

log = logging.getLogger("ltci.ui.allocation")

P = "allocation."  # session-state prefix of this page

#: Distinct zone colours (Tableau 20 reordered so neighbours in the registry order differ strongly).
ZONE_COLORS: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5", "#dbdb8d", "#393b79",
    "#637939", "#8c6d31", "#843c39", "#7b4173",
)
HATCH_ID = "ltci-hatch"
UNASSIGNED_STROKE = "#555555"
NO_ZONE_FILL = "#ffffff"
MOUNTAIN_RULES = ("soft", "hard", "off")
CAPACITY_SOURCES = ("registry", "caregivers")
OPERATIONS = ("substitute", "reduce", "suspend", "replan")
SOLVER_CHOICES = ("auto", "cpsat", "highs")

DEFAULTS: dict = dict(
    volunteer_bonus_min=AllocationWeights().volunteer_bonus_min,
    merit_min=AllocationWeights().merit_min,
    mountain_rule="soft",
    mountain_penalty_min=AllocationWeights().mountain_penalty_min,
    mountain_share=AllocationWeights().mountain_share,
    pairing=True,
    capacity_source="registry",
    clients_per_caregiver=float(settings.clients_per_caregiver),
    use_travel_cap=False,
    travel_cap_min=45.0,
    contiguity=True,
    use_balance_band=False,
    balance_band_pct=50,
    time_limit_s=30,
    solver="auto",
    locks=[],
    forbidden=[],
    preferences=[],
)


# ----------------------------------------------------------------------------------------------------------------
# Parameters → model options (pure: used by the page, the operations and the tests)
# ----------------------------------------------------------------------------------------------------------------
def effective_agencies(agencies: gpd.GeoDataFrame, params: dict, overrides: dict | None = None) -> gpd.GeoDataFrame:
    """The registry as the plan sees it: capacity from the chosen source, dropped agencies terminated, capacity
    falls applied, suspensions marked.

    With ``capacity_source="caregivers"`` the registry's capacity is ignored (NaN), so the model computes
    certified caregivers × clients per caregiver.
    """
    overrides = overrides or {}
    out = agencies.copy()
    out["agency_id"] = out["agency_id"].astype(str)
    if params.get("capacity_source") == "caregivers":
        out["capacity"] = np.nan
    elif "capacity" in out:
        out["capacity"] = pd.to_numeric(out["capacity"], errors="coerce").astype(float)
    for agency_id, capacity in (overrides.get("capacity") or {}).items():
        out.loc[out["agency_id"] == agency_id, "capacity"] = float(capacity)
    out.loc[out["agency_id"].isin(overrides.get("dropped") or []), "status"] = "terminated"
    suspended = set(overrides.get("suspended") or [])
    out.loc[out["agency_id"].isin(suspended) & (out["status"].astype(str) != "terminated"), "status"] = "suspended"
    return out


def model_options(params: dict, *, adjacency=None) -> dict:
    """Keyword options of :class:`AllocationModel` for the page's parameters."""
    weights = AllocationWeights(volunteer_bonus_min=float(params["volunteer_bonus_min"]),
                                merit_min=float(params["merit_min"]),
                                mountain_penalty_min=float(params["mountain_penalty_min"]),
                                mountain_share=float(params["mountain_share"]))
    preferences: dict[str, list[str]] = {}
    for agency_id, unit_id in params.get("preferences") or []:
        preferences.setdefault(str(agency_id), []).append(str(unit_id))
    return dict(
        adjacency=adjacency, weights=weights,
        travel_cap_min=float(params["travel_cap_min"]) if params.get("use_travel_cap") else None,
        balance_band=float(params["balance_band_pct"]) / 100.0 if params.get("use_balance_band") else None,
        contiguity=bool(params["contiguity"]), mountain_rule=str(params["mountain_rule"]),
        locks={str(u): str(a) for u, a in params.get("locks") or []},
        forbidden=[(str(a), str(u)) for a, u in params.get("forbidden") or []],
        preferences=preferences or None, pairs="auto" if params.get("pairing") else None,
        clients_per_caregiver=float(params["clients_per_caregiver"]), time_limit_s=float(params["time_limit_s"]),
        solver=str(params.get("solver", "auto")),
    )


def params_key(params: dict) -> str:
    return json.dumps(params, sort_keys=True, ensure_ascii=False, default=str)


# ----------------------------------------------------------------------------------------------------------------
# Cached heavy steps
# ----------------------------------------------------------------------------------------------------------------
def _region_id(region) -> str:
    return f"{region_key()}:{region.name}:{region.network.fingerprint()}"


def _agency_key(agencies) -> tuple:
    cols = [c for c in ("agency_id", "status", "capacity", "certified_caregivers", "quality_score", "leading")
            if c in agencies]
    return tuple(tuple(agencies[c].astype(str)) for c in cols) + (
        tuple(np.round(agencies.geometry.x, 7)), tuple(np.round(agencies.geometry.y, 7)))


@st.cache_resource(show_spinner=False, max_entries=4)
def _cached_adjacency(_units, region_id: str):
    return build_adjacency(_units)


@st.cache_resource(show_spinner=False, max_entries=24)
def _cached_solve(_region, _matrix, _adjacency, region_id: str, agency_key: tuple, key: str):
    """``(model, None)`` or ``(None, error)``: a failure is remembered too, so it is not re-solved on every rerun."""
    params = json.loads(key)
    try:
        agencies = effective_agencies(_region.agencies, params)
        model = AllocationModel(_region.units, agencies, _matrix, **model_options(params, adjacency=_adjacency))
        return model.solve(), None
    except (InputError, PlanningError) as exc:
        return None, exc


@st.cache_resource(show_spinner=False, max_entries=12)
def _cached_districts(_units, _adjacency, region_id: str, k: int, tolerance: float, time_limit_s: float):
    try:
        return OperatingDistricts(_units, k=k, adjacency=_adjacency, tolerance=tolerance,
                                  time_limit_s=time_limit_s).solve(), None
    except (InputError, PlanningError) as exc:
        return None, exc


# ----------------------------------------------------------------------------------------------------------------
# Measuring a plan (from its assignment, so every version is measured the same way)
# ----------------------------------------------------------------------------------------------------------------
class PlanFrame:
    """A plan's assignment laid out against the region: owner/backup positions, minutes, demand, capacity."""

    def __init__(self, assignment: dict, backup: dict, units, agencies, matrix, *, clients_per_caregiver: float,
                 adjacency=None):
        self.units = units
        self.agencies = agencies
        self.unit_ids = units["unit_id"].astype(str).to_numpy()
        self.agency_ids = agencies["agency_id"].astype(str).to_numpy()
        apos = {a: i for i, a in enumerate(self.agency_ids)}
        unknown = sorted({str(a) for a in assignment.values() if a is not None and str(a) not in apos})
        if unknown:
            raise InputError("the plan does not match the region's registry",
                             [Problem(f"agency {a!r} of the plan is not in the registry", value=a) for a in unknown])
        self.owner = np.array([apos.get(str(assignment.get(u)), -1) if assignment.get(u) is not None else -1
                               for u in self.unit_ids], dtype=np.int64)
        self.backup = np.array([apos.get(str(backup.get(u)), -1) if backup.get(u) is not None else -1
                                for u in self.unit_ids], dtype=np.int64)
        m_a = {a: i for i, a in enumerate(matrix.agency_ids)}
        m_u = {u: i for i, u in enumerate(matrix.unit_ids)}
        rows = np.array([m_a.get(a, -1) for a in self.agency_ids])
        cols = np.array([m_u[u] for u in self.unit_ids])
        minutes = np.full((len(self.agency_ids), len(self.unit_ids)), np.inf)
        minutes[rows >= 0] = np.asarray(matrix.minutes, dtype=float)[np.ix_(rows[rows >= 0], cols)]
        self.minutes = minutes
        self.demand = pd.to_numeric(units["demand"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
        self.population = pd.to_numeric(units.get("population", 0.0), errors="coerce").fillna(0.0).to_numpy(float)
        status = agencies["status"].astype(str).to_numpy()
        self.status = status
        self.eligible = np.isin(status, ACTIVE_STATUSES)
        self.capacity = np.where(status != "terminated",
                                 agency_capacity(agencies, clients_per_caregiver=clients_per_caregiver), 0.0)
        self.adjacency = adjacency

    def travel(self, owner: np.ndarray) -> np.ndarray:
        n = np.arange(len(owner))
        return np.where(owner >= 0, self.minutes[np.maximum(owner, 0), n], np.nan)

    def loads(self, owner: np.ndarray) -> np.ndarray:
        has = owner >= 0
        return np.bincount(owner[has], weights=self.demand[has], minlength=len(self.agency_ids))

    def nearest_owner(self) -> np.ndarray:
        t = np.where(self.eligible[:, None], self.minutes, np.inf)
        owner = np.argmin(t, axis=0)
        owner[~np.isfinite(t.min(axis=0))] = -1
        return owner

    def metrics(self, owner: np.ndarray) -> dict:
        """Mean (demand-weighted) and max travel, overload, contiguity violations and balance of an assignment."""
        has = owner >= 0
        t = self.travel(owner)
        d = self.demand
        load = self.loads(owner)
        over = float(np.maximum(load - self.capacity, 0)[self.eligible | (load > 0)].sum())
        ratio = np.divide(load, self.capacity, out=np.full_like(load, np.nan), where=self.capacity > 0)
        used = (load > 0) & (self.capacity > 0)
        violations = None
        if self.adjacency is not None:
            own, _ = locate_own_units(self.units, self.agencies)
            roots = {int(a): int(own[a]) for a in np.flatnonzero(self.eligible | (load > 0))}
            adj = self.adjacency.reorder(self.unit_ids)
            comp = adj.components()
            rooted = {comp[r] for r in roots.values() if r >= 0}
            exempt = ~np.isin(comp, list(rooted))  # the island rule: no agency's own unit in its land mass
            violations = count_contiguity_violations(owner, adj.matrix, roots, exempt)
        wsum = d[has].sum()
        return dict(
            units_assigned=int(has.sum()),
            mean_travel_min=float(np.nansum(d[has] * t[has]) / wsum) if wsum > 0 else float("nan"),
            max_travel_min=float(np.nanmax(t)) if has.any() else float("nan"),
            overload_demand=over,
            contiguity_violations=violations,
            max_min_load_ratio=float(ratio[used].max() / ratio[used].min()) if used.any() else float("nan"),
        )


def agency_table(frame: PlanFrame) -> pd.DataFrame:
    """Per agency (terminated ones left out): units, population, demand, load/capacity, mean and max travel."""
    owner = frame.owner
    t = frame.travel(owner)
    rows = []
    names = frame.agencies.get("name", pd.Series(frame.agency_ids)).astype(str).to_numpy()
    leading = frame.agencies.get("leading", pd.Series(False, index=frame.agencies.index)).fillna(False).astype(bool)
    for a, aid in enumerate(frame.agency_ids):
        held = np.flatnonzero(owner == a)
        if frame.status[a] == "terminated" and not len(held):
            continue
        d = frame.demand[held]
        cap = float(frame.capacity[a])
        rows.append(dict(
            agency_id=aid, name=names[a], status=frame.status[a], leading=bool(leading.iloc[a]), units=len(held),
            population=float(frame.population[held].sum()), demand=float(d.sum()), capacity=cap,
            load_ratio=float(d.sum() / cap) if cap > 0 else float("nan"),
            mean_travel_min=float((d * t[held]).sum() / d.sum()) if d.sum() > 0 else
            (float(np.mean(t[held])) if len(held) else float("nan")),
            max_travel_min=float(np.max(t[held])) if len(held) else float("nan"),
        ))
    return pd.DataFrame(rows)


def unit_table(frame: PlanFrame, reasons: dict) -> pd.DataFrame:
    """Per unit: agency, travel time, backup agency and its travel time, and any reason or note."""
    names = dict(zip(frame.agency_ids, frame.agencies.get("name", pd.Series(frame.agency_ids)).astype(str)))
    ids = np.where(frame.owner >= 0, frame.agency_ids[np.maximum(frame.owner, 0)], None)
    bids = np.where(frame.backup >= 0, frame.agency_ids[np.maximum(frame.backup, 0)], None)
    return pd.DataFrame({
        "unit_id": frame.unit_ids,
        "name": frame.units.get("name", pd.Series(frame.unit_ids)).astype(str).to_numpy(),
        "township": frame.units.get("township", pd.Series([""] * len(frame.units))).astype(str).to_numpy(),
        "setting": frame.units.get("setting", pd.Series([""] * len(frame.units))).astype(str).to_numpy(),
        "demand": frame.demand,
        "agency_id": ids,
        "agency_name": [names.get(a, "") if a is not None else "" for a in ids],
        "travel_min": frame.travel(frame.owner),
        "backup_agency_id": bids,
        "backup_agency_name": [names.get(a, "") if a is not None else "" for a in bids],
        "backup_travel_min": frame.travel(frame.backup),
        "reason": [str(reasons.get(u, "") or "") for u in frame.unit_ids],
    })


def assignments_for_store(plan: Plan, units_frame: pd.DataFrame) -> pd.DataFrame:
    """The plan's rows as the workspace stores them (unit, agency, backup, locked, reason, travel_min)."""
    locked = set(plan.locked)
    return pd.DataFrame({
        "unit_id": units_frame["unit_id"].astype(str).to_numpy(),
        "agency_id": pd.Series(units_frame["agency_id"].to_numpy(), dtype=object),
        "backup_agency_id": pd.Series(units_frame["backup_agency_id"].to_numpy(), dtype=object),
        "locked": [u in locked for u in units_frame["unit_id"].astype(str)],
        "reason": [r or None for r in units_frame["reason"]],
        "travel_min": units_frame["travel_min"].to_numpy(dtype=float),
    })


def changes_since(saved: pd.DataFrame | None, plan: Plan, history: list[Plan]) -> pd.DataFrame:
    """Change log of ``plan`` against the last saved version: each moved unit with the newest reason it moved."""
    old = {} if saved is None else {str(u): (None if a is None or (isinstance(a, float) and np.isnan(a)) else str(a))
                                    for u, a in zip(saved["unit_id"], saved["agency_id"])}
    why: dict[str, str] = {}
    for version in history:
        for change in version.changes:
            why[change.unit_id] = change.why
    fallback = "; ".join(plan.events) or "re-solved"
    changes = diff_assignments(old, plan.assignment, why=fallback) if saved is not None else []
    return pd.DataFrame([dict(unit_id=c.unit_id, from_agency=c.from_agency, to_agency=c.to_agency,
                              why=why.get(c.unit_id, c.why)) for c in changes],
                        columns=["unit_id", "from_agency", "to_agency", "why"])


# ----------------------------------------------------------------------------------------------------------------
# Session history
# ----------------------------------------------------------------------------------------------------------------
def _history() -> list[dict]:
    return st.session_state.setdefault(P + "history", [])


def current_entry() -> dict | None:
    history = _history()
    return history[-1] if history else None


def _push(plan: Plan, overrides: dict, *, source: str, params: dict) -> None:
    """Append a plan version with the registry overrides and page parameters it was made under."""
    _history().append(dict(plan=plan.to_dict(), overrides=json.loads(json.dumps(overrides)), source=source,
                           params=json.loads(params_key(params))))


def _entry_plan(entry: dict) -> Plan:
    return Plan.from_dict(entry["plan"])


# ----------------------------------------------------------------------------------------------------------------
# Controls
# ----------------------------------------------------------------------------------------------------------------
def _unit_options(units) -> dict[str, str]:
    return {str(u): f"{u} · {n}" for u, n in zip(units["unit_id"].astype(str), units["name"].astype(str))}


def _agency_options(agencies) -> dict[str, str]:
    return {str(a): f"{n} ({a})" for a, n in zip(agencies["agency_id"].astype(str), agencies["name"].astype(str))}


def _pairs_editor(title: str, first: str, second: str, options_first: dict, options_second: dict, *, key: str,
                  initial: list) -> list[list[str]]:
    """A two-column table of choices (unit/agency pairs); rows with a blank cell are ignored."""
    inv_first = {v: k for k, v in options_first.items()}
    inv_second = {v: k for k, v in options_second.items()}
    data = pd.DataFrame({first: pd.Series([options_first.get(str(x), str(x)) for x, _ in initial], dtype=object),
                         second: pd.Series([options_second.get(str(y), str(y)) for _, y in initial], dtype=object)})
    edited = st.data_editor(
        data, key=key, num_rows="dynamic", hide_index=True, width="stretch",
        column_config={first: st.column_config.SelectboxColumn(first, options=list(options_first.values()),
                                                               width="medium"),
                       second: st.column_config.SelectboxColumn(second, options=list(options_second.values()),
                                                                width="medium")},
    )
    st.caption(title)
    out = []
    for x, y in zip(edited[first], edited[second]):
        if isinstance(x, str) and isinstance(y, str) and x in inv_first and y in inv_second:
            out.append([inv_first[x], inv_second[y]])
    return out


def parameter_form(region) -> dict:
    """The parameter form; returns the parameters of the last submission (the defaults at first)."""
    for name, value in DEFAULTS.items():
        if name not in ("locks", "forbidden", "preferences"):
            st.session_state.setdefault(P + name, value)
    units, agencies = _unit_options(region.units), _agency_options(region.agencies)
    with st.form(P + "form", border=False):
        c1, c2, c3 = st.columns(3, gap="medium")
        with c1:
            st.markdown(f"**{tr('alloc.params.principles')}**")
            st.number_input(tr("alloc.params.volunteer"), min_value=0.0, max_value=120.0, step=1.0,
                            key=P + "volunteer_bonus_min", help=tr("alloc.params.volunteer_help"))
            st.number_input(tr("alloc.params.merit"), min_value=0.0, max_value=120.0, step=1.0,
                            key=P + "merit_min", help=tr("alloc.params.merit_help"))
            st.radio(tr("alloc.params.mountain_rule"), MOUNTAIN_RULES, key=P + "mountain_rule", horizontal=True,
                     format_func=lambda r: tr(f"alloc.mountain.{r}"), help=tr("alloc.params.mountain_help"))
            st.number_input(tr("alloc.params.mountain_penalty"), min_value=0.0, max_value=1000.0, step=5.0,
                            key=P + "mountain_penalty_min")
            st.slider(tr("alloc.params.mountain_share"), 0.0, 1.0, step=0.05, key=P + "mountain_share")
            st.toggle(tr("alloc.params.pairing"), key=P + "pairing", help=tr("alloc.params.pairing_help"))
        with c2:
            st.markdown(f"**{tr('alloc.params.capacity')}**")
            st.radio(tr("alloc.params.capacity_source"), CAPACITY_SOURCES, key=P + "capacity_source",
                     format_func=lambda s: tr(f"alloc.capacity_source.{s}"))
            st.number_input(tr("alloc.params.cpc"), min_value=0.5, max_value=50.0, step=0.5,
                            key=P + "clients_per_caregiver", help=tr("alloc.params.cpc_help"))
            st.toggle(tr("alloc.params.use_balance"), key=P + "use_balance_band")
            st.slider(tr("alloc.params.balance"), 5, 100, step=5, key=P + "balance_band_pct",
                      help=tr("alloc.params.balance_help"))
        with c3:
            st.markdown(f"**{tr('alloc.params.rules')}**")
            st.toggle(tr("alloc.params.contiguity"), key=P + "contiguity", help=tr("alloc.params.contiguity_help"))
            st.toggle(tr("alloc.params.use_travel_cap"), key=P + "use_travel_cap")
            st.number_input(tr("alloc.params.travel_cap"), min_value=1.0, max_value=600.0, step=5.0,
                            key=P + "travel_cap_min")
            st.number_input(tr("alloc.params.time_limit"), min_value=1, max_value=600, step=5,
                            key=P + "time_limit_s", help=tr("alloc.params.time_limit_help"))
            st.selectbox(tr("alloc.params.solver"), SOLVER_CHOICES, key=P + "solver",
                         format_func=lambda s: tr(f"alloc.solver.{s}"), help=tr("alloc.params.solver_help"))
        e1, e2, e3 = st.columns(3, gap="medium")
        initial = st.session_state.get(P + "initial_tables", {})
        with e1:
            st.markdown(f"**{tr('alloc.params.locks')}**")
            locks = _pairs_editor(tr("alloc.params.locks_help"), tr("alloc.col.unit"), tr("alloc.col.agency"),
                                  units, agencies, key=P + "locks_editor", initial=initial.get("locks", []))
        with e2:
            st.markdown(f"**{tr('alloc.params.forbidden')}**")
            forbidden = _pairs_editor(tr("alloc.params.forbidden_help"), tr("alloc.col.agency"), tr("alloc.col.unit"),
                                      agencies, units, key=P + "forbidden_editor",
                                      initial=initial.get("forbidden", []))
        with e3:
            st.markdown(f"**{tr('alloc.params.preferences')}**")
            preferences = _pairs_editor(tr("alloc.params.preferences_help"), tr("alloc.col.agency"),
                                        tr("alloc.col.unit"), agencies, units, key=P + "preferences_editor",
                                        initial=initial.get("preferences", []))
        st.form_submit_button(tr("alloc.params.solve"), type="primary", icon=":material/play_arrow:")
    params = {name: st.session_state[P + name] for name in DEFAULTS if name not in ("locks", "forbidden",
                                                                                   "preferences")}
    params["time_limit_s"] = int(params["time_limit_s"])
    params.update(locks=locks, forbidden=forbidden, preferences=preferences)
    return params


# ----------------------------------------------------------------------------------------------------------------
# The zone map
# ----------------------------------------------------------------------------------------------------------------
class HatchPattern(MacroElement):
    """An SVG hatch pattern in the map's overlay SVG, so a path with ``fillColor: url(#ltci-hatch)`` is hatched."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            function addHatch() {
                var svg = map.getPanes().overlayPane.querySelector("svg");
                if (!svg || svg.querySelector("#{{ this.pattern_id }}")) { return; }
                var ns = "http://www.w3.org/2000/svg";
                var defs = document.createElementNS(ns, "defs");
                var pattern = document.createElementNS(ns, "pattern");
                pattern.setAttribute("id", "{{ this.pattern_id }}");
                pattern.setAttribute("patternUnits", "userSpaceOnUse");
                pattern.setAttribute("width", "8");
                pattern.setAttribute("height", "8");
                pattern.setAttribute("patternTransform", "rotate(45)");
                var bg = document.createElementNS(ns, "rect");
                bg.setAttribute("width", "8"); bg.setAttribute("height", "8"); bg.setAttribute("fill", "#e6e6e6");
                var line = document.createElementNS(ns, "line");
                line.setAttribute("x1", "0"); line.setAttribute("y1", "0");
                line.setAttribute("x2", "0"); line.setAttribute("y2", "8");
                line.setAttribute("stroke", "#777777"); line.setAttribute("stroke-width", "3");
                pattern.appendChild(bg); pattern.appendChild(line); defs.appendChild(pattern);
                svg.insertBefore(defs, svg.firstChild);
            }
            addHatch();
            map.on("layeradd", addHatch);
        })();
        {% endmacro %}
        """
    )

    def __init__(self, pattern_id: str = HATCH_ID):
        super().__init__()
        self._name = "HatchPattern"
        self.pattern_id = pattern_id


def zone_colors(agency_ids) -> dict[str, str]:
    """A fixed colour per agency (registry order), so an agency keeps its colour across plan versions."""
    return {a: ZONE_COLORS[i % len(ZONE_COLORS)] for i, a in enumerate(agency_ids)}


def _swatch(style: str) -> str:
    return f'<span class="sw" style="border-radius:2px;{style}"></span>'


def _geojson(frame: gpd.GeoDataFrame, columns: list[str]) -> dict:
    out = frame[[c for c in columns if c in frame] + ["geometry"]].copy()
    return json.loads(out.to_json(drop_id=True, na="null"))


def _add_context(fmap, region) -> None:
    roads = get_basemap_roads(region)
    if roads is not None and len(roads):
        layer = folium.FeatureGroup(name=tr("map.layer.roads"), show=True)
        folium.GeoJson(_geojson(roads, ["highway"]), interactive=False,
                       style_function=lambda f: {"color": ROAD_STYLES.get(str(f["properties"].get("highway")),
                                                                          ROAD_STYLES["tertiary"])[0],
                                                 "weight": 1.2, "opacity": 0.6, "fill": False}).add_to(layer)
        layer.add_to(fmap)


def zone_map(region, units_frame: pd.DataFrame, agencies_table: pd.DataFrame, colors: dict[str, str], *,
             agencies: gpd.GeoDataFrame, labels: dict[str, str] | None = None, title: str | None = None,
             markers: bool = True) -> folium.Map:
    """Offline map: every agency's zone in its colour with its marker; unassigned units hatched with their reason.

    ``units_frame`` has ``unit_id``, ``agency_id`` (the zone key: an agency id or a district label), ``tip`` and
    ``reason``; ``labels`` names each zone key in the legend.
    """
    units = region.units.assign(unit_id=region.units["unit_id"].astype(str))
    shown = lighten(units[["unit_id", "geometry"]].merge(units_frame, on="unit_id", how="left", validate="1:1"))
    shown["zone"] = shown["agency_id"].astype(object)
    has = shown["zone"].notna()
    shown["color"] = [colors.get(str(z), "#999999") if h else f"url(#{HATCH_ID})" for z, h in zip(shown["zone"], has)]
    minx, miny, maxx, maxy = shown.total_bounds
    fmap = base_map(bounds=[[miny, minx], [maxy, maxx]], lang=current_lang())
    _add_context(fmap, region)

    layer = folium.FeatureGroup(name=title or tr("alloc.map.zones"), show=True)
    folium.GeoJson(
        _geojson(shown[has], ["unit_id", "tip", "color"]),
        style_function=lambda f: {"fillColor": f["properties"]["color"], "color": "#ffffff", "weight": 0.8,
                                  "fillOpacity": 0.72},
        highlight_function=lambda f: {"weight": 2.5, "color": "#222222"},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False),
    ).add_to(layer)
    layer.add_to(fmap)
    if (~has).any():
        layer = folium.FeatureGroup(name=tr("alloc.map.unassigned_layer"), show=True)
        folium.GeoJson(
            _geojson(shown[~has], ["unit_id", "tip", "color"]),
            style_function=lambda f: {"fillColor": f["properties"]["color"], "color": UNASSIGNED_STROKE,
                                      "weight": 1.5, "dashArray": "4 3", "fillOpacity": 1.0},
            tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False),
        ).add_to(layer)
        layer.add_to(fmap)
    # Township borders over the zones, so a zone crossing a township line is visible.
    layer = folium.FeatureGroup(name=tr("map.layer.townships"), show=True)
    folium.GeoJson(_geojson(lighten(region.townships), ["name"]), interactive=False,
                   style_function=lambda f: {"color": TOWNSHIP_STROKE, "weight": 1.6, "fill": False,
                                             "dashArray": "6 4"}).add_to(layer)
    layer.add_to(fmap)

    used = [str(z) for z in pd.unique(shown.loc[has, "zone"])]
    if markers:
        layer = folium.FeatureGroup(name=tr("map.layer.agencies"), show=True)
        rows = agencies_table.set_index("agency_id") if len(agencies_table) else None
        for row in agencies.itertuples():
            aid = str(row.agency_id)
            if rows is None or aid not in rows.index or row.geometry is None or row.geometry.is_empty:
                continue
            info = rows.loc[aid]
            zone = int(info["units"]) > 0
            colour = colors.get(aid, "#999999") if zone else NO_ZONE_FILL
            text = tr("alloc.map.popup", units=int(info["units"]), demand=float(info["demand"]),
                      capacity=float(info["capacity"]), status=label("status", str(info["status"]), lang=current_lang()))
            # The popup travels inside a JS template literal: a backtick or "${" must not end or inject it.
            popup = (f'<div style="font-size:12px;min-width:200px"><b>{html.escape(str(row.name))}</b><br>'
                     f"{html.escape(text)}</div>").replace("`", "&#96;").replace("${", "&#36;{")
            folium.CircleMarker(
                location=[row.geometry.y, row.geometry.x], radius=9 if bool(info.get("leading", False)) else 7,
                color="#111111", weight=2.5 if zone else 1.5, fill=True, fill_color=colour, fill_opacity=1.0,
                dash_array=None if zone else "3 3",
                tooltip=html.escape(f"{row.name} · {tr('alloc.map.marker_tip', units=int(info['units']))}"),
                popup=Popup(popup, max_width=260),
            ).add_to(layer)
        layer.add_to(fmap)

    labels = labels or {}
    items = [f'<div class="ttl">{html.escape(title or tr("alloc.map.legend"))}</div>']
    for z in sorted(used, key=lambda z: list(colors).index(z) if z in colors else 0):
        swatch = _swatch("background:" + colors.get(z, "#999999"))
        items.append(f'<div data-zone="{html.escape(z)}">{swatch}{html.escape(labels.get(z, z))}</div>')
    if (~has).any():
        items.append(f'<div data-zone="unassigned">{_swatch("background:repeating-linear-gradient(45deg,#777 0 2px,#e6e6e6 2px 5px);border:1px dashed #555")}'
                     f"{html.escape(tr('alloc.map.unassigned', n=int((~has).sum())))}</div>")
    if markers:
        items.append(f'<div>{_swatch("background:#fff;border:1.5px dashed #111;border-radius:50%")}'
                     f"{html.escape(tr('alloc.map.no_zone'))}</div>")
    Legend("".join(items)).add_to(fmap)
    HatchPattern().add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)
    return fmap


# ----------------------------------------------------------------------------------------------------------------
# Display tables
# ----------------------------------------------------------------------------------------------------------------
def agency_display(table: pd.DataFrame) -> pd.DataFrame:
    lang = current_lang()
    return pd.DataFrame({
        tr("alloc.col.agency"): table["name"].to_numpy(),
        tr("alloc.col.status"): [label("status", s, lang=lang) + (" · " + tr("alloc.leading") if lead else "")
                                 for s, lead in zip(table["status"], table["leading"])],
        tr("alloc.col.units"): table["units"].astype(int).to_numpy(),
        tr("alloc.col.population"): table["population"].round(0).astype(int).to_numpy(),
        tr("alloc.col.demand"): table["demand"].round(1).to_numpy(),
        tr("alloc.col.load"): [f"{d:.1f} / {c:.0f}" for d, c in zip(table["demand"], table["capacity"])],
        tr("alloc.col.load_pct"): [f"{100 * r:.0f}%" if np.isfinite(r) else "—" for r in table["load_ratio"]],
        tr("alloc.col.mean_travel"): [f"{m:.1f}" if np.isfinite(m) else "—" for m in table["mean_travel_min"]],
        tr("alloc.col.max_travel"): [f"{m:.1f}" if np.isfinite(m) else "—" for m in table["max_travel_min"]],
        tr("alloc.col.agency_id"): table["agency_id"].to_numpy(),
    })


def unit_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        tr("alloc.col.unit"): table["name"].to_numpy(),
        tr("col.township"): table["township"].to_numpy(),
        tr("alloc.col.demand"): table["demand"].round(2).to_numpy(),
        tr("alloc.col.agency"): [n or tr("alloc.unassigned") for n in table["agency_name"]],
        tr("alloc.col.travel"): table["travel_min"].round(1).to_numpy(),
        tr("alloc.col.backup"): [n or "—" for n in table["backup_agency_name"]],
        tr("alloc.col.backup_travel"): table["backup_travel_min"].round(1).to_numpy(),
        tr("alloc.col.reason"): table["reason"].to_numpy(),
        tr("alloc.col.unit_id"): table["unit_id"].to_numpy(),
    })


def comparison_display(plan_metrics: dict, nearest_metrics: dict) -> pd.DataFrame:
    def fmt(key, value):
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            return "—"
        if key in ("units_assigned", "contiguity_violations"):
            return f"{int(value)}"
        return f"{value:.2f}" if key == "max_min_load_ratio" else f"{value:.1f}"

    keys = ("mean_travel_min", "max_travel_min", "overload_demand", "contiguity_violations", "max_min_load_ratio",
            "units_assigned")
    return pd.DataFrame({
        tr("alloc.cmp.measure"): [tr(f"alloc.cmp.{k}") for k in keys],
        tr("alloc.cmp.plan"): [fmt(k, plan_metrics[k]) for k in keys],
        tr("alloc.cmp.nearest"): [fmt(k, nearest_metrics[k]) for k in keys],
    })


def changes_display(changes: pd.DataFrame, names_u: dict, names_a: dict) -> pd.DataFrame:
    return pd.DataFrame({
        tr("alloc.col.unit"): [names_u.get(str(u), str(u)) for u in changes["unit_id"]],
        tr("alloc.chg.from"): [names_a.get(str(a), tr("alloc.unassigned")) if a else tr("alloc.unassigned")
                               for a in changes["from_agency"]],
        tr("alloc.chg.to"): [names_a.get(str(a), tr("alloc.unassigned")) if a else tr("alloc.unassigned")
                             for a in changes["to_agency"]],
        tr("alloc.chg.why"): changes["why"].to_numpy(),
        tr("alloc.col.unit_id"): changes["unit_id"].to_numpy(),
    })


# ----------------------------------------------------------------------------------------------------------------
# Downloads
# ----------------------------------------------------------------------------------------------------------------
def zones_gpkg(region, units_frame: pd.DataFrame, agencies: gpd.GeoDataFrame, agencies_table: pd.DataFrame) -> bytes:
    """A GeoPackage with two layers: ``units`` (agency_id, travel_min, backup…) and ``agencies`` (the registry
    plus zone_units, zone_demand, plan_capacity, load_ratio and travel times of the plan)."""
    units = region.units.assign(unit_id=region.units["unit_id"].astype(str))[["unit_id", "geometry"]]
    zones = gpd.GeoDataFrame(units.merge(units_frame, on="unit_id", how="left", validate="1:1"),
                             geometry="geometry", crs=region.units.crs)
    ag = agencies.assign(agency_id=agencies["agency_id"].astype(str))
    keep = [c for c in ("units", "population", "demand", "capacity", "load_ratio", "mean_travel_min",
                        "max_travel_min") if c in agencies_table]
    # The registry has its own capacity column: the plan's figures get names of their own.
    plan_cols = agencies_table[["agency_id"] + keep].rename(columns={
        "units": "zone_units", "population": "zone_population", "demand": "zone_demand",
        "capacity": "plan_capacity"})
    ag = ag.merge(plan_cols, on="agency_id", how="left", validate="1:1")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "zones.gpkg"
        zones.to_file(path, layer="units", driver="GPKG", engine="pyogrio")
        gpd.GeoDataFrame(ag, geometry="geometry", crs=agencies.crs).to_file(path, layer="agencies", driver="GPKG",
                                                                            engine="pyogrio")
        return path.read_bytes()


def report_pdf(region, plan: Plan, units_frame: pd.DataFrame, agencies_table: pd.DataFrame,
               comparison: pd.DataFrame, agencies: gpd.GeoDataFrame, changes: pd.DataFrame, *, lang: str) -> bytes:
    """The allocation report: zone map, per-agency table, comparison with nearest assignment, units, changes."""
    t = translator(lang)
    summary = plan.summary or {}
    gap = summary.get("mip_gap")
    units = region.units.assign(unit_id=region.units["unit_id"].astype(str))[["unit_id", "geometry"]].merge(
        units_frame[["unit_id", "agency_name"]], on="unit_id", how="left")
    units = gpd.GeoDataFrame(units.assign(agency_name=units["agency_name"].replace("", None)), geometry="geometry",
                             crs=region.units.crs)
    image = map_png(units=units, unit_column="agency_name", categorical=True, townships=region.townships,
                    agencies=agencies[agencies["status"].astype(str) != "terminated"],
                    attribution=str(region.meta.get("attribution", "© OpenStreetMap contributors (ODbL)")))
    text = t("report.allocation_text").format(status=summary.get("status", "—"),
                                              gap="—" if gap is None else f"{100 * float(gap):.3f}%")
    text += "\n" + t("alloc.report.version", version=plan.version, events="; ".join(plan.events))
    agency_cols = agency_display_for(agencies_table, lang)
    unit_cols = units_frame[["unit_id", "name", "township", "agency_name", "travel_min", "backup_agency_name",
                             "reason"]].rename(columns={c: t(f"alloc.pdf.{c}") for c in
                                                        ("unit_id", "name", "township", "agency_name", "travel_min",
                                                         "backup_agency_name", "reason")})
    sections = [
        ReportSection(t("report.allocation"), text=text, image_png=image),
        ReportSection(t("report.per_agency"), tables=[(t("report.per_agency"), agency_cols)]),
        ReportSection(t("report.vs_nearest"), text=t("alloc.cmp.note"), tables=[(t("report.vs_nearest"), comparison)]),
        ReportSection(t("alloc.report.units"), tables=[(t("alloc.report.units"), unit_cols)]),
    ]
    if len(changes):
        sections.append(ReportSection(t("alloc.report.changes"), tables=[(t("alloc.report.changes"), changes)]))
    return build_pdf(t("alloc.report.title"), sections, subtitle=f"{region.name} · {datetime.now():%Y-%m-%d %H:%M}",
                     attribution=str(region.meta.get("attribution", "")))


def agency_display_for(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    t = translator(lang)
    return pd.DataFrame({
        t("alloc.col.agency"): table["name"].to_numpy(),
        t("alloc.col.units"): table["units"].astype(int).to_numpy(),
        t("alloc.col.demand"): table["demand"].round(1).to_numpy(),
        t("alloc.col.load"): [f"{d:.1f} / {c:.0f}" for d, c in zip(table["demand"], table["capacity"])],
        t("alloc.col.mean_travel"): table["mean_travel_min"].round(1).to_numpy(),
        t("alloc.col.max_travel"): table["max_travel_min"].round(1).to_numpy(),
    })




# ----------------------------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------------------------
def _headline(plan: Plan, entry: dict) -> None:
    s = plan.summary or {}
    st.subheader(tr("alloc.current", version=plan.version, source=tr(f"alloc.source.{entry['source']}")))
    cols = st.columns(5)
    gap = s.get("mip_gap")
    cols[0].metric(tr("alloc.metric.status"), tr(f"alloc.status.{s.get('status')}")
                   if f"alloc.status.{s.get('status')}" in _known_status_keys() else str(s.get("status", "—")),
                   border=True)
    cols[1].metric(tr("alloc.metric.objective"), "—" if s.get("objective") is None else f"{float(s['objective']):,.1f}",
                   help=tr("alloc.metric.objective_help"), border=True)
    cols[2].metric(tr("alloc.metric.gap"), "—" if gap is None else f"{100 * float(gap):.3f}%",
                   help=tr("alloc.metric.gap_help", solver=s.get("solver") or "—"), border=True)
    cols[3].metric(tr("alloc.metric.solve_time"), "—" if s.get("solve_s") is None else f"{float(s['solve_s']):.1f} s",
                   border=True)
    cols[4].metric(tr("alloc.metric.assigned"), f"{s.get('assigned', '—')} / {s.get('units', '—')}", border=True)
    for event in plan.events:
        st.caption(tr("alloc.event", event=event))


def _registry_names(region) -> dict[str, str]:
    """Agency id → name over the whole registry (a dropped agency is gone from the tables, not from the log)."""
    return dict(zip(region.agencies["agency_id"].astype(str), region.agencies["name"].astype(str)))


def _known_status_keys() -> set[str]:
    from ui.strings import STRINGS

    return {k for k in STRINGS if k.startswith("alloc.status.")}


def _results_tab(region, plan: Plan, frame: PlanFrame, units_frame, agencies_table, colors, comparison, agencies,
                 history_plans: list[Plan]) -> None:
    names = _registry_names(region)
    unit_names = dict(zip(units_frame["unit_id"], units_frame["name"]))
    tips = []
    for row in units_frame.itertuples():
        parts = [f"{row.name} ({row.township})"]
        if row.agency_id is None:
            parts.append(tr("alloc.tip.unassigned", reason=row.reason or tr("alloc.tip.no_reason")))
        else:
            parts.append(tr("alloc.tip.assigned", agency=row.agency_name, minutes=row.travel_min))
            if row.backup_agency_name:
                parts.append(tr("alloc.tip.backup", agency=row.backup_agency_name))
            if row.reason:
                parts.append(row.reason)
        tips.append(" · ".join(parts))
    map_frame = units_frame[["unit_id", "agency_id", "reason"]].assign(tip=tips)
    st.subheader(tr("alloc.map.title"))
    fmap = zone_map(region, map_frame, agencies_table, colors, agencies=agencies,
                    labels={a: f"{names.get(a, a)} · {int(n)}" for a, n in zip(agencies_table["agency_id"],
                                                                            agencies_table["units"])})
    st_folium(fmap, key=P + "map", height=600, use_container_width=True, returned_objects=[])
    unassigned = units_frame[units_frame["agency_id"].isna()]
    if len(unassigned):
        st.warning(tr("alloc.unassigned_note", n=len(unassigned), demand=float(unassigned["demand"].sum())))

    st.subheader(tr("alloc.agency_table"))
    table = agency_display(agencies_table)
    st.table(table.style.format({tr("alloc.col.demand"): "{:.1f}", tr("alloc.col.population"): "{:,.0f}"}),
             hide_index=True, border="horizontal")
    download_buttons(table, basename="allocation_agencies", key=P + "agencies_dl")

    st.subheader(tr("alloc.cmp.title"))
    st.caption(tr("alloc.cmp.note"))
    st.table(comparison, hide_index=True, border="horizontal")

    st.subheader(tr("alloc.unit_table"))
    units_shown = unit_display(units_frame)
    st.dataframe(units_shown, hide_index=True, width="stretch", height=420, key=P + "units_table")
    download_buttons(units_shown, basename="allocation_units", key=P + "units_dl")

    st.subheader(tr("alloc.downloads"))
    lang = current_lang()
    all_changes = pd.concat([p.changes_frame() for p in history_plans[1:]], ignore_index=True) \
        if len(history_plans) > 1 else pd.DataFrame(columns=["unit_id", "from_agency", "to_agency", "why"])
    changes = changes_display(all_changes, unit_names, names) if len(all_changes) else all_changes
    c1, c2 = st.columns(2)
    with c1:
        st.download_button(tr("alloc.dl.gpkg"), key=P + "dl.gpkg", file_name="allocation_zones.gpkg",
                           mime=MIME_TYPES["gpkg"], on_click="ignore", width="stretch", icon=":material/map:",
                           data=deferred_download("gpkg", lambda: zones_gpkg(region, units_frame, agencies, agencies_table)))
    with c2:
        st.download_button(tr("alloc.dl.pdf"), key=P + "dl.pdf", file_name="allocation_report.pdf",
                           mime="application/pdf", on_click="ignore", width="stretch", type="primary",
                           icon=":material/picture_as_pdf:",
                           data=deferred_download("pdf", lambda: report_pdf(region, plan, units_frame, agencies_table,
                                                                    comparison, agencies, changes, lang=lang)))
    st.caption(tr("alloc.dl.note"))


def _operations_tab(region, matrix, adjacency, entry: dict, plan: Plan, params: dict, agencies_table) -> None:
    st.caption(tr("alloc.ops.intro"))
    names = _registry_names(region)
    holding = [a for a, n in zip(agencies_table["agency_id"], agencies_table["units"]) if n > 0]
    st.session_state.setdefault(P + "op", "substitute")
    op = st.radio(tr("alloc.ops.kind"), OPERATIONS, key=P + "op", horizontal=True,
                  format_func=lambda o: tr(f"alloc.ops.{o}"))
    overrides = dict(entry.get("overrides") or {})
    if op == "suspend":
        choices = [a for a in agencies_table["agency_id"] if a not in set(plan.parameters.get("suspended", []))
                   and a not in set(overrides.get("dropped", []))]
    else:
        choices = holding
    if not choices:
        st.info(tr("alloc.ops.no_agency"))
        return
    if st.session_state.get(P + "op_agency") not in choices:
        st.session_state[P + "op_agency"] = choices[0]
    agency_id = None
    if op != "replan":
        agency_id = st.selectbox(tr("alloc.ops.agency"), choices, key=P + "op_agency",
                                 format_func=lambda a: f"{names.get(a, a)} ({a})")
    kwargs: dict = {}
    if op == "substitute":
        st.session_state.setdefault(P + "sub_mode", "drop")
        mode = st.radio(tr("alloc.ops.sub_mode"), ("drop", "capacity"), key=P + "sub_mode", horizontal=True,
                        format_func=lambda m: tr(f"alloc.ops.sub_mode.{m}"))
        if mode == "capacity":
            row = agencies_table.set_index("agency_id").loc[agency_id]
            st.session_state.setdefault(P + "sub_capacity", float(np.floor(row["capacity"] / 2)))
            kwargs["new_capacity"] = float(st.number_input(
                tr("alloc.ops.new_capacity", capacity=float(row["capacity"]), demand=float(row["demand"])),
                min_value=0.0, step=1.0, key=P + "sub_capacity"))
    elif op == "reduce":
        st.session_state.setdefault(P + "red_by", "units")
        by = st.radio(tr("alloc.ops.red_by"), ("units", "share"), key=P + "red_by", horizontal=True,
                      format_func=lambda b: tr(f"alloc.ops.red_by.{b}"))
        if by == "units":
            st.session_state.setdefault(P + "red_units", 1)
            kwargs["n_units"] = int(st.number_input(tr("alloc.ops.red_units"), min_value=1, step=1,
                                                    key=P + "red_units"))
        else:
            st.session_state.setdefault(P + "red_share", 20)
            kwargs["demand_share"] = st.slider(tr("alloc.ops.red_share"), 5, 95, step=5, key=P + "red_share") / 100
    st.text_input(tr("alloc.ops.why"), key=P + "op_why", placeholder=tr("alloc.ops.why_placeholder"))
    why = (st.session_state.get(P + "op_why") or "").strip() or default_reason(op, agency_id, names, **kwargs)
    if st.button(tr("alloc.ops.run"), key=P + "op_run", type="primary", icon=":material/swap_horiz:"):
        with friendly_errors():
            with st.spinner(tr("alloc.ops.running")):
                new, new_overrides = run_operation(op, plan, region, matrix, adjacency, params, overrides,
                                                   agency_id=agency_id, why=why, **kwargs)
            _push(new, new_overrides, source=op, params=params)
            st.session_state[P + "flash"] = ("success", tr("alloc.ops.done", op=tr(f"alloc.ops.{op}"),
                                                           n=len(new.changes), version=new.version))
            st.rerun()
    flash = st.session_state.pop(P + "flash", None)
    if flash:
        getattr(st, flash[0])(flash[1])
    if entry["source"] in OPERATIONS:
        st.markdown(f"**{tr('alloc.ops.moved', n=len(plan.changes), version=plan.version)}**")
        if plan.changes:
            unit_names = dict(zip(region.units["unit_id"].astype(str), region.units["name"].astype(str)))
            st.table(changes_display(plan.changes_frame(), unit_names, names), hide_index=True,
                     border="horizontal")
    if len(_history()) > 1:
        if st.button(tr("alloc.ops.reset"), key=P + "op_reset", icon=":material/undo:"):
            del _history()[1:]
            st.rerun()


def default_reason(op: str, agency_id: str | None, names: dict, **kwargs) -> str:
    """The change log's reason when the user gives none, in the session's language."""
    who = f"{names.get(agency_id, agency_id)} ({agency_id})" if agency_id else ""
    if op == "substitute" and kwargs.get("new_capacity") is not None:
        return tr("alloc.why.capacity", agency=who, capacity=float(kwargs["new_capacity"]))
    return tr(f"alloc.why.{op}", agency=who)


def run_operation(op: str, plan: Plan, region, matrix, adjacency, params: dict, overrides: dict, *,
                  agency_id: str | None, why: str | None = None, **kwargs) -> tuple[Plan, dict]:
    """Apply one operation to ``plan``; returns the new plan version and the registry overrides it implies.

    Raises InputError/PlanningError without touching ``plan`` (the plan ops never modify their input).
    """
    overrides = json.loads(json.dumps(overrides or {}))
    agencies = effective_agencies(region.agencies, params, overrides)
    options = dict(adjacency=adjacency, time_limit_s=float(params["time_limit_s"]),
                   clients_per_caregiver=float(params["clients_per_caregiver"]),
                   solver=str(params.get("solver", "auto")))
    if op == "substitute":
        new = substitute_shortfall(plan, region.units, agencies, matrix, agency_id=agency_id,
                                   new_capacity=kwargs.get("new_capacity"), why=why, **options)
        if kwargs.get("new_capacity") is None:
            overrides.setdefault("dropped", []).append(agency_id)
        else:
            overrides.setdefault("capacity", {})[agency_id] = float(kwargs["new_capacity"])
    elif op == "reduce":
        new = reduce_service_area(plan, region.units, agencies, matrix, agency_id=agency_id,
                                  n_units=kwargs.get("n_units"), demand_share=kwargs.get("demand_share"),
                                  **({"why": why} if why else {}), **options)
    elif op == "suspend":
        new = suspend_agency(plan, agency_id, **({"why": why} if why else {}))
        overrides.setdefault("suspended", []).append(agency_id)
    elif op == "replan":
        new = replan(plan, region.units, agencies, matrix, why=why or "re-plan", **options)
    else:
        raise InputError("unknown operation", [Problem(f"operation must be one of {OPERATIONS}", value=op)])
    return new, overrides


def _save_tab(region, plan: Plan, units_frame: pd.DataFrame, history_plans: list[Plan]) -> None:
    store = get_workspace()
    st.caption(tr("alloc.save.intro"))
    st.session_state.setdefault(P + "plan_id", tr("alloc.save.default_name"))
    plan_id = st.text_input(tr("alloc.save.name"), key=P + "plan_id").strip()
    planner = is_planner()
    if not planner:
        planner_notice()
    if st.button(tr("alloc.save.go"), key=P + "save", type="primary", disabled=not planner or not plan_id,
                 icon=":material/save:"):
        with friendly_errors():
            saved = None
            if plan_id in set(store.list_plans()["plan_id"]):
                saved = store.load_plan(plan_id).assignments
            changes = changes_since(saved, plan, history_plans)
            parameters = dict(plan.parameters, page_overrides=current_entry().get("overrides", {}),
                              session_version=plan.version)
            version = store.save_plan(plan_id, assignments_for_store(plan, units_frame), parameters=parameters,
                                      summary=plan.summary, changes=changes, actor=current_actor())
            # Show the version just saved in the history below.
            st.session_state[P + "history_plan"] = plan_id
            st.session_state[P + "history_version"] = int(version.version)
            st.session_state[P + "save_flash"] = tr("alloc.save.done", plan=plan_id, version=version.version,
                                                    n=len(changes))
            st.rerun()
    flash = st.session_state.pop(P + "save_flash", None)
    if flash:
        st.success(flash)

    st.markdown(f"**{tr('alloc.history.session')}**")
    st.table(pd.DataFrame({
        tr("alloc.history.version"): [p.version for p in history_plans],
        tr("alloc.history.created"): [p.created_at for p in history_plans],
        tr("alloc.history.event"): ["; ".join(p.events) for p in history_plans],
        tr("alloc.history.moved"): [len(p.changes) for p in history_plans],
    }), hide_index=True, border="horizontal")

    plans = store.list_plans()
    st.markdown(f"**{tr('alloc.history.saved')}**")
    if plans.empty:
        st.info(tr("alloc.history.none"))
        return
    if st.session_state.get(P + "history_plan") not in list(plans["plan_id"]):
        st.session_state[P + "history_plan"] = plan_id if plan_id in list(plans["plan_id"]) else plans["plan_id"].iloc[0]
    chosen = st.selectbox(tr("alloc.history.plan"), list(plans["plan_id"]), key=P + "history_plan")
    versions = store.list_plan_versions(chosen)
    st.table(pd.DataFrame({
        tr("alloc.history.version"): versions["version"].astype(int).to_numpy(),
        tr("alloc.history.created"): versions["created_at"].to_numpy(),
        tr("alloc.history.by"): versions["created_by"].to_numpy(),
        tr("alloc.history.parent"): versions["parent_version"].astype("Int64").astype(str).replace("<NA>", "—").to_numpy(),
        tr("alloc.history.units"): versions["n_units"].to_numpy(),
        tr("alloc.history.gap"): [f"{100 * float(s.get('mip_gap')):.3f}%" if s.get("mip_gap") is not None else "—"
                                  for s in versions["summary"]],
    }), hide_index=True, border="horizontal")
    numbers = [int(v) for v in versions["version"]][::-1]
    version = st.selectbox(tr("alloc.history.show_version"), numbers, key=P + "history_version")
    loaded = store.load_plan(chosen, int(version))
    names = _registry_names(region)
    unit_names = dict(zip(region.units["unit_id"].astype(str), region.units["name"].astype(str)))
    if len(loaded.changes):
        st.markdown(tr("alloc.history.changes", n=len(loaded.changes), version=version))
        st.table(changes_display(loaded.changes, unit_names, names), hide_index=True, border="horizontal")
    else:
        st.caption(tr("alloc.history.no_changes", version=version))


def _districts_tab(region, adjacency, rid: str) -> None:
    st.caption(tr("alloc.od.intro"))
    c1, c2, c3 = st.columns(3)
    st.session_state.setdefault(P + "od_k", 4)
    st.session_state.setdefault(P + "od_tolerance", 10)
    st.session_state.setdefault(P + "od_time", 20)
    k = int(c1.number_input(tr("alloc.od.k"), min_value=1, max_value=max(1, len(region.units)), step=1,
                            key=P + "od_k"))
    tolerance = c2.slider(tr("alloc.od.tolerance"), 1, 50, step=1, key=P + "od_tolerance") / 100
    time_limit = float(c3.number_input(tr("alloc.od.time_limit"), min_value=1, max_value=600, step=5,
                                       key=P + "od_time"))
    with st.spinner(tr("alloc.od.solving", k=k)):
        model, error = _cached_districts(region.units, adjacency, rid, k, tolerance, time_limit)
    if error is not None:
        show_error(error)
        return
    cols = st.columns(4)
    cols[0].metric(tr("alloc.od.balance"), f"{model.balance_ratio:.2f}", help=tr("alloc.od.balance_help"), border=True)
    cols[1].metric(tr("alloc.od.compactness"), f"{model.compactness:.2f}", help=tr("alloc.od.compactness_help"),
                   border=True)
    cols[2].metric(tr("alloc.od.distance"), f"{model.mean_distance_km:.2f} km", border=True)
    cols[3].metric(tr("alloc.metric.gap"), f"{100 * model.mip_gap:.2f}%",
                   help=tr("alloc.od.status_help", status=model.status, seconds=model.solve_time), border=True)
    unit_names = dict(zip(region.units["unit_id"].astype(str), region.units["name"].astype(str)))
    district_names = {str(i): tr("alloc.od.name", i=i + 1) for i in range(k)}
    frame = pd.DataFrame({"unit_id": model.labels.index.astype(str),
                          "agency_id": [str(v) for v in model.labels.to_numpy()]})
    frame["reason"] = ""
    frame["tip"] = [f"{unit_names.get(u, u)} · {district_names[d]}" for u, d in zip(frame["unit_id"],
                                                                                   frame["agency_id"])]
    colors = {str(i): ZONE_COLORS[i % len(ZONE_COLORS)] for i in range(k)}
    table = model.table
    labels = {str(r.district): f"{district_names[str(r.district)]} · {r.units}" for r in table.itertuples()}
    map_col, table_col = st.columns([3, 2], gap="medium")
    with map_col:
        st_folium(zone_map(region, frame, pd.DataFrame(columns=["agency_id"]), colors, agencies=region.agencies,
                           labels=labels, title=tr("alloc.od.legend"), markers=False),
                  key=P + "od_map", height=480, use_container_width=True, returned_objects=[])
    with table_col:
        shown = pd.DataFrame({
            tr("alloc.od.col.district"): [district_names[str(d)] for d in table["district"]],
            tr("alloc.od.col.centre"): [unit_names.get(c, c) for c in table["centre_unit_id"]],
            tr("alloc.col.units"): table["units"].to_numpy(),
            tr("alloc.col.demand"): table["demand"].round(1).to_numpy(),
            tr("alloc.od.col.share"): [f"{100 * s:.0f}%" for s in table["share_of_mean"]],
            tr("alloc.od.col.area"): table["area_km2"].round(1).to_numpy(),
            tr("alloc.od.col.pp"): table["polsby_popper"].round(2).to_numpy(),
        })
        st.table(shown, hide_index=True, border="horizontal")
        download_buttons(shown, basename="operating_districts", key=P + "od_dl")
        units_out = gpd.GeoDataFrame(
            region.units[["unit_id", "name", "township", "demand", "geometry"]].assign(
                unit_id=region.units["unit_id"].astype(str),
                district=model.labels.reindex(region.units["unit_id"].astype(str)).to_numpy() + 1),
            geometry="geometry", crs=region.units.crs)
        download_buttons(units_out, basename="operating_district_units", formats=("gpkg",), key=P + "od_units_dl")
    if model.islands:
        st.caption(tr("alloc.od.islands", units=", ".join(unit_names.get(u, u) for u in model.islands)))


# ----------------------------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------------------------
def _solve(region, matrix, adjacency, rid: str, params: dict):
    key = params_key(params)
    with st.spinner(tr("alloc.solving", seconds=params["time_limit_s"])):
        model, error = _cached_solve(region, matrix, adjacency, rid, _agency_key(region.agencies), key)
    if st.session_state.get(P + "solved_key") == (rid, key):
        return model, error
    if model is not None:
        entry = current_entry()
        previous = _entry_plan(entry) if entry is not None and st.session_state.get(P + "solved_rid") == rid else None
        if previous is None:
            st.session_state[P + "history"] = []
        plan = model.to_plan(previous=previous, why=tr("alloc.why.initial") if previous is None else
                             tr("alloc.why.resolve"))
        _push(plan, {}, source="solve", params=params)
        st.session_state[P + "solved_key"] = (rid, key)
        st.session_state[P + "solved_rid"] = rid
    return model, error


@friendly_errors()
def render() -> None:
    region = get_region()
    rid = _region_id(region)
    st.title(tr("alloc.title"))
    st.caption(tr("alloc.intro"))
    with st.expander(tr("alloc.params.title"), expanded=False):
        params = parameter_form(region)

    matrix = get_travel_matrix(region)
    adjacency = _cached_adjacency(region.units, rid)
    model, error = _solve(region, matrix, adjacency, rid, params)
    if error is not None:
        show_error(error)
    entry = current_entry() if st.session_state.get(P + "solved_rid") == rid else None
    if model is not None and model.warnings:
        for warning in model.warnings:
            st.caption(warning)
    if model is not None and model.islands:
        st.info(tr("alloc.islands", units=", ".join(model.islands)))

    tabs = st.tabs([tr("alloc.tab.results"), tr("alloc.tab.operations"), tr("alloc.tab.save"),
                    tr("alloc.tab.districts")])
    if entry is not None:
        plan = _entry_plan(entry)
        plan_params = entry["params"]  # the plan's own parameters, not a form submission that failed
        agencies = effective_agencies(region.agencies, plan_params, entry.get("overrides"))
        frame = PlanFrame(plan.assignment, plan.backup, region.units, agencies, matrix,
                          clients_per_caregiver=float(plan_params["clients_per_caregiver"]), adjacency=adjacency)
        units_frame = unit_table(frame, plan.reasons)
        agencies_table = agency_table(frame)
        comparison = comparison_display(frame.metrics(frame.owner), frame.metrics(frame.nearest_owner()))
        colors = zone_colors(region.agencies["agency_id"].astype(str))
        history_plans = [_entry_plan(e) for e in _history()]
        with tabs[0]:
            if error is not None:
                st.warning(tr("alloc.kept", version=plan.version))
            _headline(plan, entry)
            with friendly_errors():
                _results_tab(region, plan, frame, units_frame, agencies_table, colors, comparison, agencies,
                             history_plans)
        with tabs[1]:
            with friendly_errors():
                _operations_tab(region, matrix, adjacency, entry, plan, plan_params, agencies_table)
        with tabs[2]:
            with friendly_errors():
                _save_tab(region, plan, units_frame, history_plans)
    else:
        for tab in tabs[:3]:
            with tab:
                st.info(tr("alloc.no_plan"))
    with tabs[3]:
        with friendly_errors():
            _districts_tab(region, adjacency, rid)


# Streamlit runs a page as ``__main__``; importing the module (tests of its helpers) draws nothing.
if __name__ == "__main__":
    render()
