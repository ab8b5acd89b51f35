"""Capacity-aware accessibility: the enhanced two-step floating catchment area method (E2SFCA).

Coverage (:mod:`planning.coverage`) asks whether *some* agency is near; E2SFCA also asks whether that agency
has places left for everyone near it. Following Luo & Qi (2009), with travel time :math:`t_{ij}` from agency
:math:`j` to unit :math:`i` and a distance-decay weight :math:`W(t)`:

1. for each agency, the supply-to-demand ratio over its catchment
   :math:`R_j = S_j / \\sum_i W(t_{ij})\\, D_i`;
2. for each unit, the score :math:`A_i = \\sum_j W(t_{ij})\\, R_j` — care places per LTCI client within reach.

Supply :math:`S_j` is the agency's ``capacity``, or ``certified_caregivers`` × ``geo.settings.clients_per_caregiver``
where no capacity is given; only active agencies (``geo.schema.ACTIVE_STATUSES``) supply. Demand :math:`D_i` is
the unit's ``demand`` (expected LTCI clients).

Distance decay (``decay=``), with catchment :math:`d_0` (``catchment_min``, default 30 minutes):

``"stepped"`` (default)
    Luo & Qi's three travel-time zones, each a third of the catchment: :math:`W = 1` for :math:`t \\le d_0/3`,
    0.68 for :math:`d_0/3 < t \\le 2d_0/3`, 0.22 for :math:`2d_0/3 < t \\le d_0`, 0 beyond. With
    :math:`d_0 = 30` these are the paper's 0–10/10–20/20–30 minute zones, and the same function as
    ``access.weights.step_fn({10: 1, 20: 0.68, 30: 0.22})``.
``"gaussian"``
    :math:`W = \\exp(-t^2 / 2\\sigma^2)` with :math:`\\sigma = d_0/3` for :math:`t \\le d_0` (so
    :math:`W(d_0) \\approx 0.011`), 0 beyond; as ``access.weights.gaussian(sigma)`` with ``max_cost=d0``.
callable
    Any vectorised ``f(minutes) -> weights``; weights beyond the catchment are set to 0.

Since :math:`\\sum_i D_i A_i = \\sum_j S_j` over agencies that have demand in their catchment, the
demand-weighted mean score equals the region's overall supply/demand ratio
:math:`\\bar R = \\sum_j S_j / \\sum_i D_i` when every agency is reachable. A unit is **well served** when
:math:`A_i \\ge \\bar R`, **under-served** when :math:`0 < A_i < \\bar R`, and has **no access** when no active
agency is within the catchment.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pandas as pd

from geo import settings
from geo.errors import InputError, Problem
from geo.schema import ACTIVE_STATUSES, CARE_TYPES
from geo.traveltime import TravelMatrix

#: Luo & Qi (2009) zone weights for the three thirds of the catchment.
LUO_QI_WEIGHTS: tuple[float, float, float] = (1.0, 0.68, 0.22)

ACCESS_CLASSES: tuple[str, ...] = ("well_served", "under_served", "no_access")


def stepped_decay(minutes: np.ndarray, *, catchment_min: float = 30.0,
                  weights: tuple[float, float, float] = LUO_QI_WEIGHTS) -> np.ndarray:
    """Luo & Qi's stepped weights over three equal zones of the catchment (upper bounds inclusive)."""
    t = np.asarray(minutes, dtype=np.float64)
    edges = np.array([1.0, 2.0, 3.0]) * catchment_min / 3.0
    zone = np.searchsorted(edges, t, side="left")  # t == edge stays in the lower zone, as in access.step_fn
    return np.append(np.asarray(weights, dtype=np.float64), 0.0)[np.minimum(zone, 3)]


def gaussian_decay(minutes: np.ndarray, *, catchment_min: float = 30.0) -> np.ndarray:
    """Gaussian weights with σ = catchment/3, cut to 0 beyond the catchment."""
    t = np.asarray(minutes, dtype=np.float64)
    sigma = catchment_min / 3.0
    with np.errstate(over="ignore", invalid="ignore"):
        w = np.exp(-(t * t) / (2.0 * sigma * sigma))
    return np.where(t <= catchment_min, w, 0.0)


def agency_supply(agencies: pd.DataFrame) -> pd.Series:
    """Care places per agency: ``capacity``, else ``certified_caregivers`` × ``settings.clients_per_caregiver``.

    Raises
    ------
    InputError
        Listing every agency with neither a usable capacity nor a caregiver count.
    """
    n = len(agencies)
    capacity = (pd.to_numeric(agencies["capacity"], errors="coerce") if "capacity" in agencies
                else pd.Series(np.nan, index=agencies.index))
    caregivers = (pd.to_numeric(agencies["certified_caregivers"], errors="coerce") if "certified_caregivers" in agencies
                  else pd.Series(np.nan, index=agencies.index))
    from_caregivers = caregivers * settings.clients_per_caregiver
    supply = capacity.where(capacity > 0, from_caregivers)
    problems = []
    values = supply.to_numpy(dtype=float, na_value=np.nan)
    for i in np.flatnonzero(~np.isfinite(values) | (values < 0)):
        problems.append(Problem("agency needs a capacity or a certified_caregivers count ≥ 0", row=int(i) + 1,
                                column="capacity", value=agencies["agency_id"].iloc[i] if "agency_id" in agencies else None))
    if problems:
        raise InputError(f"{len(problems)} of {n} agencies have no usable supply", problems)
    return pd.Series(values, index=agencies.index, name="supply")


class AccessibilityModel:
    """E2SFCA scores per unit from a travel matrix, agency supply and unit demand.

    Parameters
    ----------
    matrix : geo.traveltime.TravelMatrix
        Agencies × units minutes.
    units : DataFrame
        ``unit_id`` and ``demand`` (optionally ``name``, ``township``, ``population``).
    agencies : DataFrame
        ``agency_id``, ``status``, ``care_type`` and ``capacity`` or ``certified_caregivers``.
    decay : {"stepped", "gaussian"} or callable
        The distance-decay function (see the module documentation).
    catchment_min : float
        Catchment :math:`d_0` in minutes.
    active_agency_ids : iterable of str, optional
        Agencies that supply; default: status in ``ACTIVE_STATUSES``.
    care_types : iterable of str, optional
        Only agencies of these care types supply (e.g. ``["home"]`` for home-care access).

    Attributes
    ----------
    scores : numpy.ndarray
        :math:`A_i` per unit (places per LTCI client within reach). Set by :meth:`solve`.
    agency_ratio : numpy.ndarray
        :math:`R_j` per agency (0 for inactive agencies and those with no demand in reach).
    weighted_demand : numpy.ndarray
        :math:`\\sum_i W_{ij} D_i` per agency.
    regional_ratio : float
        Total active supply / total demand, the yardstick for well- and under-served.
    classes : numpy.ndarray
        Per unit one of :data:`ACCESS_CLASSES`.
    message : str
        Anything a planner must know (no supply, agencies with no one in reach); ``""`` otherwise.
    """

    def __init__(self, matrix: TravelMatrix, units: pd.DataFrame, agencies: pd.DataFrame, *,
                 decay: str | Callable[[np.ndarray], np.ndarray] = "stepped", catchment_min: float = 30.0,
                 active_agency_ids: Iterable[str] | None = None, care_types: Iterable[str] | None = None):
        self._validate(matrix, units, agencies, decay, catchment_min, care_types)
        self.units = units.reset_index(drop=True)
        self.agencies = agencies.reset_index(drop=True)
        self.unit_ids = self.units["unit_id"].astype(str).to_numpy()
        self.agency_ids = self.agencies["agency_id"].astype(str).to_numpy()
        minutes = matrix.subset(agency_ids=self.agency_ids, unit_ids=self.unit_ids).minutes.astype(np.float64)
        self._minutes = np.where(np.isnan(minutes), np.inf, minutes)
        self.decay = decay
        self.catchment_min = float(catchment_min)
        self.demand = pd.to_numeric(self.units["demand"]).to_numpy(dtype=float)
        self.supply = agency_supply(self.agencies).to_numpy(dtype=float)
        if active_agency_ids is None:
            active = self.agencies["status"].astype(str).isin(ACTIVE_STATUSES).to_numpy()
        else:
            wanted = {str(a) for a in active_agency_ids}
            unknown = sorted(wanted - set(self.agency_ids.tolist()))
            if unknown:
                raise InputError("unknown agencies in the active set",
                                 [Problem("agency_id not among the agencies", column="agency_id", value=a) for a in unknown])
            active = np.isin(self.agency_ids, list(wanted))
        if care_types is not None:
            active = active & self.agencies["care_type"].astype(str).isin(list(care_types)).to_numpy()
        self.active = active
        self.scores: np.ndarray | None = None
        self.message = ""

    @staticmethod
    def _validate(matrix, units, agencies, decay, catchment_min, care_types) -> None:
        problems: list[Problem] = []
        if not isinstance(matrix, TravelMatrix):
            problems.append(Problem(f"matrix must be a geo.traveltime.TravelMatrix, got {type(matrix).__name__}"))
        for col in ("unit_id", "demand"):
            if col not in units.columns:
                problems.append(Problem(f"units need a {col!r} column", column=col, code="missing_column"))
        for col in ("agency_id", "status"):
            if col not in agencies.columns:
                problems.append(Problem(f"agencies need a {col!r} column", column=col, code="missing_column"))
        if not (callable(decay) or decay in ("stepped", "gaussian")):
            problems.append(Problem(f"decay must be 'stepped', 'gaussian' or a function, got {decay!r}", column="decay"))
        if not np.isfinite(catchment_min) or catchment_min <= 0:
            problems.append(Problem(f"catchment must be a positive number of minutes, got {catchment_min!r}",
                                    column="catchment_min"))
        for t in care_types or ():
            if t not in CARE_TYPES:
                problems.append(Problem(f"care type must be one of {CARE_TYPES}", column="care_types", value=t))
        if not problems:
            demand = pd.to_numeric(units["demand"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            for i in np.flatnonzero(~np.isfinite(demand) | (demand < 0)):
                problems.append(Problem("demand must be a number ≥ 0", row=int(i) + 1, column="demand",
                                        value=units["demand"].iloc[i]))
            for label, ids, axis in (("units", units["unit_id"], matrix.unit_ids),
                                     ("agencies", agencies["agency_id"], matrix.agency_ids)):
                have = set(axis.tolist())
                missing = [v for v in ids.astype(str) if v not in have]
                if missing:
                    problems.append(Problem(f"{len(missing)} {label} are not in the travel matrix (e.g. {missing[:3]})",
                                            code="not_in_matrix"))
                dup = ids.astype(str).duplicated()
                for i in np.flatnonzero(dup.to_numpy()):
                    problems.append(Problem(f"duplicate id in {label}", row=int(i) + 1, value=ids.iloc[i]))
        if problems:
            raise InputError("accessibility inputs cannot be used", problems)

    def weights(self) -> np.ndarray:
        """Decay weight of every agency–unit pair, shape (agencies, units); 0 beyond the catchment."""
        t = self._minutes
        if self.decay == "stepped":
            w = stepped_decay(t, catchment_min=self.catchment_min)
        elif self.decay == "gaussian":
            w = gaussian_decay(t, catchment_min=self.catchment_min)
        else:
            w = np.asarray(self.decay(np.where(np.isfinite(t), t, self.catchment_min * 1e6)), dtype=np.float64)
        return np.where(np.isfinite(t) & (t <= self.catchment_min), w, 0.0)

    def solve(self) -> "AccessibilityModel":
        """Run both E2SFCA steps and classify every unit.

        Returns
        -------
        AccessibilityModel
            ``self`` with ``scores``, ``agency_ratio``, ``weighted_demand``, ``regional_ratio``, ``classes``.
        """
        w = self.weights()
        w[~self.active] = 0.0
        # einsum, not BLAS: threaded BLAS stalls for seconds on a busy 2-core machine for these thin products
        self.weighted_demand = np.einsum("au,u->a", w, self.demand, optimize=False)
        supply = np.where(self.active, self.supply, 0.0)
        # an agency with no demand in reach has no ratio to hand out; 0 keeps its idle places out of every score
        self.agency_ratio = np.divide(supply, self.weighted_demand, out=np.zeros_like(supply),
                                      where=self.weighted_demand > 0)
        self.scores = np.einsum("au,a->u", w, self.agency_ratio, optimize=False)
        total_demand = self.demand.sum()
        self.regional_ratio = float(supply.sum() / total_demand) if total_demand > 0 else float("nan")
        reach = (w > 0).any(axis=0)
        self.classes = np.where(~reach, "no_access",
                                np.where(self.scores >= self.regional_ratio * (1 - 1e-9), "well_served", "under_served"))
        notes = []
        if not self.active.any():
            notes.append("No active agency supplies care: every unit has no access.")
        else:
            idle = self.active & (self.weighted_demand <= 0)
            if idle.any():
                notes.append(f"{int(idle.sum())} active agencies have no demand within {self.catchment_min:g} minutes "
                             f"({supply[idle].sum():,.0f} places unused): {', '.join(self.agency_ids[idle][:5])}.")
            if (~reach).any():
                notes.append(f"{int((~reach).sum()):,} units have no active agency within "
                             f"{self.catchment_min:g} minutes.")
        self.message = " ".join(notes)
        return self

    def unit_scores(self) -> pd.DataFrame:
        """Per unit: ``unit_id``, ``demand``, ``e2sfca_score``, ``relative_access`` (score / regional ratio) and
        ``access_class``."""
        if self.scores is None:
            self.solve()
        relative = self.scores / self.regional_ratio if self.regional_ratio and np.isfinite(self.regional_ratio) \
            else np.full(len(self.scores), np.nan)
        return pd.DataFrame({"unit_id": self.unit_ids, "demand": self.demand, "e2sfca_score": self.scores,
                             "relative_access": relative, "access_class": self.classes})

    def agency_ratios(self) -> pd.DataFrame:
        """Per agency: supply, demand weighted by decay within its catchment, and the ratio :math:`R_j`."""
        if self.scores is None:
            self.solve()
        return pd.DataFrame({
            "agency_id": self.agency_ids,
            "name": self.agencies["name"].astype(str).to_numpy() if "name" in self.agencies else self.agency_ids,
            "care_type": self.agencies["care_type"].astype(str).to_numpy() if "care_type" in self.agencies else "",
            "active": self.active,
            "supply": np.where(self.active, self.supply, 0.0),
            "weighted_demand": self.weighted_demand,
            "supply_demand_ratio": self.agency_ratio,
        })
