"""Scenarios: an agency set plus the parameters that produced it, compared side by side and promoted to the registry.

A :class:`Scenario` keeps what a planner needs to judge it without re-solving: the new sites, the whole active agency
set, the parameters (model, threshold, p, candidate rules...), and every unit's demand and minutes to its nearest
agency. :func:`compare_scenarios` puts two of them side by side (coverage at each threshold, mean/max travel,
uncovered demand, units that became covered); :func:`promote_to_registry` turns a chosen scenario's new sites into
registry rows with status ``"planned"`` so district allocation can use them. ``to_dict`` / ``from_dict`` give a
JSON-ready form; saving it to disk is the workspace package's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.errors import InputError, PlanningError, Problem
from geo.schema import ACTIVE_STATUSES, AGENCY_COLUMNS, CARE_TYPES, CRS

__all__ = ["Scenario", "ScenarioComparison", "coverage_table", "compare_scenarios", "promote_to_registry",
           "active_ids"]

#: Columns kept for a scenario's new sites.
NEW_SITE_COLUMNS: tuple[str, ...] = ("agency_id", "name", "source", "setup_cost", "capacity", "township")


def _thresholds(thresholds) -> tuple[float, ...]:
    if thresholds is None:
        from geo import settings

        thresholds = settings.coverage_thresholds_min
    return tuple(float(t) for t in thresholds)


def _json_number(x):
    x = float(x)
    return x if np.isfinite(x) else None


@dataclass
class Scenario:
    """One planning option: an agency set, the parameters behind it, and what it gives each unit.

    Attributes
    ----------
    name : str
    new_sites : GeoDataFrame
        The agencies the scenario adds (:data:`NEW_SITE_COLUMNS`, WGS84 points); empty for the status quo.
    existing_ids : list of str
        Active agencies the scenario keeps.
    parameters : dict
        Model name, threshold, p, candidate rules and anything else needed to reproduce it.
    unit_travel_min : pandas.Series
        Minutes from each unit (index ``unit_id``) to its nearest agency in the scenario (``inf`` = unreachable).
    unit_demand : pandas.Series
        Demand of each unit, same index.
    summary : dict
        Headline figures of the solve (objective, gap, time) when the scenario came from a model.
    created_at : str
        ISO-8601 UTC time.
    """

    name: str
    new_sites: gpd.GeoDataFrame
    existing_ids: list[str]
    parameters: dict
    unit_travel_min: pd.Series
    unit_demand: pd.Series
    summary: dict = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        problems = []
        if not str(self.name).strip():
            problems.append(Problem("a scenario needs a name", column="name"))
        if not self.unit_travel_min.index.equals(self.unit_demand.index):
            problems.append(Problem("unit_travel_min and unit_demand must list the same units in the same order",
                                    column="unit_travel_min"))
        if self.unit_travel_min.index.has_duplicates:
            problems.append(Problem("unit ids repeat", column="unit_id"))
        if (self.unit_demand < 0).any() or self.unit_demand.isna().any():
            problems.append(Problem("demand must be zero or more for every unit", column="demand"))
        if self.unit_travel_min.isna().any():
            problems.append(Problem("travel minutes are missing for some units (use inf for unreachable)",
                                    column="unit_travel_min"))
        if problems:
            raise InputError(f"scenario {self.name!r} cannot be built", problems)

    # -- construction -----------------------------------------------------------------------------------------------

    @classmethod
    def from_model(cls, model, *, name: str, candidates: gpd.GeoDataFrame, parameters: dict | None = None,
                   capacity=None) -> "Scenario":
        """A scenario from a solved siting model: existing agencies plus the model's selected candidates.

        Parameters
        ----------
        model : planning.siting.LSCP, MCLP, PMedian or Greedy
            Solved.
        candidates : GeoDataFrame
            The candidate table the model was built from (``candidate_id`` + point geometry).
        parameters : dict, optional
            Extra parameters to record (candidate sources, exclusion distance...).
        capacity : float or array-like, optional
            Planned capacity of each new site; defaults to the model's ``candidate_capacity`` when it had one.
        """
        if model.unit_coverage is None:
            raise PlanningError("the model is not solved yet: call solve() before making a scenario")
        by_id = candidates.set_index(candidates["candidate_id"].astype(str))
        missing = [c for c in model.selected_ids if c not in by_id.index]
        if missing:
            raise InputError("selected sites are not in the candidate table",
                             [Problem(f"candidate {c} missing", column="candidate_id", value=c) for c in missing])
        chosen = by_id.loc[list(model.selected_ids)]
        if capacity is None and model.candidate_capacity is not None:
            capacity = model.candidate_capacity[model.selected]
        cap = np.full(len(chosen), np.nan) if capacity is None else np.broadcast_to(
            np.asarray(capacity, dtype=float), (len(chosen),))
        sites = gpd.GeoDataFrame({
            "agency_id": [f"plan-{c}" for c in model.selected_ids],
            "name": chosen["name"].astype(str).to_numpy() if "name" in chosen else list(model.selected_ids),
            "source": chosen["source"].to_numpy() if "source" in chosen else "candidate",
            "setup_cost": model.setup_cost[model.selected],
            "capacity": cap,
            "township": chosen["township"].to_numpy() if "township" in chosen else "",
        }, geometry=chosen.geometry.to_numpy(), crs=CRS)
        recorded = {"model": model.name, "threshold_min": model.threshold_min, "p": model.p,
                    "capacitated": model.capacitated, "candidates": int(model.cost_matrix.shape[0])}
        for extra in ("coverage_share", "goal", "budget"):
            if getattr(model, extra, None) is not None:
                recorded[extra] = getattr(model, extra)
        recorded.update(parameters or {})
        table = model.unit_coverage
        summary = {k: v for k, v in model.summary().items() if k != "selected_ids"}
        return cls(name=name, new_sites=sites, existing_ids=[str(i) for i in model.existing_ids],
                   parameters=recorded, unit_travel_min=table["travel_min"].astype(float),
                   unit_demand=table["demand"].astype(float), summary=summary)

    @classmethod
    def from_matrix(cls, matrix, *, name: str, demand, agency_ids=None, parameters: dict | None = None
                    ) -> "Scenario":
        """A scenario of existing agencies only (e.g. the status quo) from a :class:`~geo.traveltime.TravelMatrix`.

        ``agency_ids`` restricts the matrix rows (default: all); ``demand`` is a Series by ``unit_id`` or an array
        in the matrix's unit order.
        """
        sub = matrix if agency_ids is None else matrix.subset(agency_ids=agency_ids)
        units = pd.Index(sub.unit_ids, name="unit_id")
        minutes = sub.minutes.min(axis=0).astype(float) if len(sub.agency_ids) else np.full(len(units), np.inf)
        if isinstance(demand, pd.Series):
            demand = demand.copy()
            demand.index = demand.index.astype(str)
            missing = units.difference(demand.index)
            if len(missing):
                raise InputError("demand lacks units of the matrix",
                                 [Problem(f"unit {u} has no demand", value=u) for u in missing])
            demand = demand.loc[units].to_numpy(float)
        empty = gpd.GeoDataFrame({c: [] for c in NEW_SITE_COLUMNS}, geometry=[], crs=CRS)
        return cls(name=name, new_sites=empty, existing_ids=list(sub.agency_ids), parameters=dict(parameters or {}),
                   unit_travel_min=pd.Series(minutes, index=units, name="travel_min"),
                   unit_demand=pd.Series(np.asarray(demand, float), index=units, name="demand"))

    @classmethod
    def from_sites(cls, site_ids, *, name: str, candidates: gpd.GeoDataFrame, candidate_matrix, existing_matrix,
                   demand, parameters: dict | None = None, capacity=None) -> "Scenario":
        """Existing agencies plus hand-picked candidates: "what does adding this candidate change?".

        Parameters
        ----------
        site_ids : sequence of str
            Candidate ids to add (rows of ``candidate_matrix``).
        candidates : GeoDataFrame
            The candidate table (``candidate_id`` + point geometry).
        candidate_matrix, existing_matrix : geo.traveltime.TravelMatrix
            Candidates × units and existing active agencies × units.
        demand : pandas.Series or array-like
            Per unit (Series by ``unit_id``, or in the candidate matrix's unit order).
        """
        site_ids = [str(s) for s in site_ids]
        if not site_ids:
            raise PlanningError("pick at least one candidate to add")
        known = set(candidate_matrix.agency_ids)
        by_id = candidates.set_index(candidates["candidate_id"].astype(str))
        unknown = [s for s in site_ids if s not in known or s not in by_id.index]
        if unknown:
            raise InputError("picked sites are not in the candidate table and matrix",
                             [Problem(f"candidate {s} unknown", column="candidate_id", value=s) for s in unknown])
        units = list(candidate_matrix.unit_ids)
        picked = candidate_matrix.subset(agency_ids=site_ids).minutes.astype(float)
        base = cls.from_matrix(existing_matrix.subset(unit_ids=units), name=name, demand=demand)
        travel = np.minimum(base.unit_travel_min.to_numpy(float), picked.min(axis=0))
        chosen = by_id.loc[site_ids]
        cap = np.full(len(site_ids), np.nan) if capacity is None else np.broadcast_to(
            np.asarray(capacity, dtype=float), (len(site_ids),))
        sites = gpd.GeoDataFrame({
            "agency_id": [f"plan-{c}" for c in site_ids],
            "name": chosen["name"].astype(str).to_numpy() if "name" in chosen else site_ids,
            "source": chosen["source"].to_numpy() if "source" in chosen else "candidate",
            "setup_cost": chosen["setup_cost"].to_numpy(float) if "setup_cost" in chosen else np.ones(len(site_ids)),
            "capacity": cap,
            "township": chosen["township"].to_numpy() if "township" in chosen else "",
        }, geometry=chosen.geometry.to_numpy(), crs=CRS)
        return cls(name=name, new_sites=sites, existing_ids=base.existing_ids,
                   parameters={"model": "manual", **(parameters or {})},
                   unit_travel_min=pd.Series(travel, index=base.unit_travel_min.index, name="travel_min"),
                   unit_demand=base.unit_demand)

    # -- figures ----------------------------------------------------------------------------------------------------

    def coverage(self, thresholds=None) -> pd.DataFrame:
        """Coverage at each threshold; see :func:`coverage_table`."""
        return coverage_table(self, thresholds=thresholds)

    @property
    def mean_travel_min(self) -> float:
        """Demand-weighted mean minutes over reachable units."""
        t, d = self.unit_travel_min.to_numpy(float), self.unit_demand.to_numpy(float)
        ok = np.isfinite(t)
        return float(np.sum(t[ok] * d[ok]) / d[ok].sum()) if d[ok].sum() > 0 else float("nan")

    @property
    def max_travel_min(self) -> float:
        """The longest minutes of any unit with demand (``inf`` if one is unreachable)."""
        t = self.unit_travel_min.to_numpy(float)[self.unit_demand.to_numpy(float) > 0]
        return float(t.max()) if len(t) else float("nan")

    # -- persistence (JSON-ready) -----------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """A JSON-ready dict (no numpy types, ``inf`` as ``None``)."""
        sites = []
        for row in self.new_sites.itertuples(index=False):
            sites.append({
                "agency_id": str(row.agency_id), "name": str(row.name), "source": str(row.source),
                "setup_cost": _json_number(row.setup_cost), "capacity": _json_number(row.capacity),
                "township": "" if pd.isna(row.township) else str(row.township),
                "lon": float(row.geometry.x), "lat": float(row.geometry.y),
            })
        return {
            "name": self.name, "created_at": self.created_at, "parameters": _jsonable(self.parameters),
            "existing_ids": list(map(str, self.existing_ids)), "new_sites": sites,
            "units": {
                "unit_id": [str(u) for u in self.unit_travel_min.index],
                "travel_min": [_json_number(x) for x in self.unit_travel_min],
                "demand": [float(x) for x in self.unit_demand],
            },
            "summary": _jsonable(self.summary),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Scenario":
        """Rebuild a scenario written by :meth:`to_dict`."""
        missing = [k for k in ("name", "new_sites", "existing_ids", "units") if k not in data]
        if missing:
            raise InputError("scenario data is incomplete", [Problem(f"missing key {k!r}", column=k)
                                                             for k in missing])
        sites = data["new_sites"]
        frame = gpd.GeoDataFrame(
            {c: [s.get(c) for s in sites] for c in NEW_SITE_COLUMNS},
            geometry=gpd.points_from_xy([s["lon"] for s in sites], [s["lat"] for s in sites]), crs=CRS)
        for c in ("setup_cost", "capacity"):
            frame[c] = pd.to_numeric(frame[c]).astype(float)
        units = pd.Index([str(u) for u in data["units"]["unit_id"]], name="unit_id")
        travel = np.array([np.inf if x is None else x for x in data["units"]["travel_min"]], dtype=float)
        return cls(name=data["name"], new_sites=frame, existing_ids=list(data["existing_ids"]),
                   parameters=dict(data.get("parameters", {})),
                   unit_travel_min=pd.Series(travel, index=units, name="travel_min"),
                   unit_demand=pd.Series(np.asarray(data["units"]["demand"], float), index=units, name="demand"),
                   summary=dict(data.get("summary", {})), created_at=data.get("created_at", ""))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _json_number(value)
    return value


# --------------------------------------------------------------------------------------------------------------------
# Figures and comparison


def coverage_table(scenario: Scenario, *, thresholds=None) -> pd.DataFrame:
    """Demand and units within each threshold (default :data:`geo.settings.coverage_thresholds_min`).

    Returns
    -------
    DataFrame
        One row per threshold: ``threshold_min``, ``covered_units``, ``covered_demand``, ``covered_share``,
        ``uncovered_demand``.
    """
    t = scenario.unit_travel_min.to_numpy(float)
    d = scenario.unit_demand.to_numpy(float)
    total = float(d.sum())
    rows = []
    for limit in _thresholds(thresholds):
        within = t <= limit
        covered = float(d[within].sum())
        rows.append({"threshold_min": limit, "covered_units": int(within.sum()), "covered_demand": covered,
                     "covered_share": covered / total if total else 1.0, "uncovered_demand": total - covered})
    return pd.DataFrame(rows)


@dataclass
class ScenarioComparison:
    """Two scenarios side by side.

    Attributes
    ----------
    coverage : DataFrame
        Per threshold: covered share and uncovered demand of ``a`` and ``b``, and the change.
    travel : DataFrame
        Rows ``mean_travel_min``, ``max_travel_min``, ``unreachable_units``, ``new_sites``; columns a, b, change.
    units : DataFrame
        Per unit: demand, minutes in a and b, change, and for each threshold whether it became covered in b
        (``became_covered_<T>``) or lost coverage (``lost_<T>``).
    """

    a: Scenario
    b: Scenario
    coverage: pd.DataFrame
    travel: pd.DataFrame
    units: pd.DataFrame

    def became_covered(self, threshold_min: float) -> list[str]:
        """Units within ``threshold_min`` in ``b`` that were not in ``a`` (to highlight on the map)."""
        t_a, t_b = self.units["travel_a_min"], self.units["travel_b_min"]
        return self.units.index[(t_b <= threshold_min) & ~(t_a <= threshold_min)].tolist()

    def to_dict(self) -> dict:
        """JSON-ready tables."""
        return {
            "a": self.a.name, "b": self.b.name,
            "coverage": _jsonable(self.coverage.to_dict(orient="records")),
            "travel": _jsonable(self.travel.reset_index().to_dict(orient="records")),
            "units": _jsonable(self.units.reset_index().to_dict(orient="records")),
        }


def compare_scenarios(a: Scenario, b: Scenario, *, thresholds=None) -> ScenarioComparison:
    """Compare scenario ``b`` against ``a`` (typically a plan against the status quo).

    Both must describe the same units; their order may differ.
    """
    ua, ub = a.unit_travel_min.index, b.unit_travel_min.index
    if set(ua) != set(ub):
        only_a, only_b = sorted(set(ua) - set(ub))[:5], sorted(set(ub) - set(ua))[:5]
        raise InputError("scenarios describe different units; compare scenarios of the same region and grid", [
            Problem(f"only in {a.name!r}: {only_a}", column="unit_id"),
            Problem(f"only in {b.name!r}: {only_b}", column="unit_id")])
    thresholds = _thresholds(thresholds)
    ta = a.unit_travel_min.astype(float)
    tb = b.unit_travel_min.astype(float).loc[ua]
    demand = a.unit_demand.astype(float)
    if not np.allclose(demand.to_numpy(), b.unit_demand.astype(float).loc[ua].to_numpy()):
        raise InputError("scenarios use different demand per unit; rebuild them from the same units",
                         [Problem("demand differs", column="demand")])
    cov_a = coverage_table(a, thresholds=thresholds)
    cov_b = coverage_table(b, thresholds=thresholds)
    coverage = pd.DataFrame({
        "threshold_min": cov_a["threshold_min"],
        "covered_share_a": cov_a["covered_share"], "covered_share_b": cov_b["covered_share"],
        "covered_share_change": cov_b["covered_share"] - cov_a["covered_share"],
        "uncovered_demand_a": cov_a["uncovered_demand"], "uncovered_demand_b": cov_b["uncovered_demand"],
        "covered_units_a": cov_a["covered_units"], "covered_units_b": cov_b["covered_units"],
    })
    figures = {
        "mean_travel_min": (a.mean_travel_min, b.mean_travel_min),
        "max_travel_min": (a.max_travel_min, b.max_travel_min),
        "unreachable_units": (float((~np.isfinite(ta)).sum()), float((~np.isfinite(tb)).sum())),
        "new_sites": (float(len(a.new_sites)), float(len(b.new_sites))),
    }
    travel = pd.DataFrame(figures, index=["a", "b"]).T
    with np.errstate(invalid="ignore"):
        travel["change"] = travel["b"] - travel["a"]
    units = pd.DataFrame({"demand": demand, "travel_a_min": ta, "travel_b_min": tb})
    with np.errstate(invalid="ignore"):
        units["change_min"] = tb - ta
    for limit in thresholds:
        units[f"became_covered_{limit:g}"] = (tb <= limit) & ~(ta <= limit)
        units[f"lost_{limit:g}"] = (ta <= limit) & ~(tb <= limit)
    return ScenarioComparison(a=a, b=b, coverage=coverage, travel=travel, units=units)


# --------------------------------------------------------------------------------------------------------------------
# Promotion


def promote_to_registry(scenario: Scenario, registry: gpd.GeoDataFrame, *, care_type: str = "home",
                        default_capacity: float | None = None) -> gpd.GeoDataFrame:
    """The registry with the scenario's new sites added as agencies of status ``"planned"``.

    Planned agencies count as active supply (:data:`geo.schema.ACTIVE_STATUSES`), so coverage and district
    allocation use them at once. Nothing already in the registry changes.

    Parameters
    ----------
    registry : GeoDataFrame
        The current agencies (:data:`geo.schema.AGENCY_COLUMNS`).
    care_type : str
        Care type of the planned agencies (one of :data:`geo.schema.CARE_TYPES`).
    default_capacity : float, optional
        Capacity for sites whose scenario gives none; without it such sites get capacity 0 and a clear error is
        raised, because allocation would send them no clients.
    """
    problems = []
    if care_type not in CARE_TYPES:
        problems.append(Problem(f"care_type must be one of {CARE_TYPES}, got {care_type!r}", column="care_type"))
    sites = scenario.new_sites
    if len(sites) == 0:
        raise PlanningError(f"scenario {scenario.name!r} adds no new sites: nothing to promote")
    capacity = sites["capacity"].to_numpy(float)
    if default_capacity is not None:
        capacity = np.where(np.isnan(capacity), float(default_capacity), capacity)
    no_cap = np.flatnonzero(np.isnan(capacity))
    problems += [Problem(f"site {sites['agency_id'].iloc[i]} has no planned capacity; pass default_capacity",
                         row=int(i) + 1, column="capacity") for i in no_cap]
    existing = set(registry["agency_id"].astype(str)) if "agency_id" in registry else set()
    clash = [i for i in sites["agency_id"].astype(str) if i in existing]
    problems += [Problem(f"agency_id {i} is already in the registry (promoted before?)", column="agency_id",
                         value=i) for i in clash]
    if problems:
        raise InputError(f"scenario {scenario.name!r} cannot be promoted", problems)
    n = len(sites)
    rows = gpd.GeoDataFrame({
        "agency_id": sites["agency_id"].astype(str).to_numpy(),
        "name": sites["name"].astype(str).to_numpy(),
        "care_type": np.full(n, care_type, dtype=object),
        "status": np.full(n, "planned", dtype=object),
        "address": np.full(n, "", dtype=object), "phone": np.full(n, "", dtype=object),
        "photo": np.full(n, "", dtype=object),
        "certified_caregivers": np.zeros(n, dtype=int),
        "capacity": np.round(capacity).astype(int),
        "clients_served": np.zeros(n, dtype=int),
        "quality_score": np.full(n, np.nan),
        "leading": np.zeros(n, dtype=bool),
        "service_modes": np.full(n, "home_visit" if care_type == "home" else "", dtype=object),
        "township": sites["township"].fillna("").astype(str).to_numpy(),
        "demo": np.zeros(n, dtype=bool),
    }, geometry=sites.geometry.to_numpy(), crs=CRS)
    rows = rows[list(AGENCY_COLUMNS) + ["geometry"]]
    # which plan a planned agency came from, so a later plan can be withdrawn as a whole
    rows["plan_scenario"] = scenario.name
    base = registry.to_crs(CRS) if registry.crs is not None and not registry.crs.equals(CRS) else registry
    out = pd.concat([base, rows], ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=CRS)


def active_ids(registry: pd.DataFrame) -> list[str]:
    """Ids of agencies that count as supply (designated or planned)."""
    return registry.loc[registry["status"].isin(ACTIVE_STATUSES), "agency_id"].astype(str).tolist()
