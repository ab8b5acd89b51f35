"""Siting new agencies: where the next agencies should go, given the ones already there.

Four models answer the planner's three questions ("where should the next 3 agencies go?", "how few new agencies bring
every village within 30 minutes?", "what does adding this candidate change?"):

* :class:`LSCP` – the fewest (or cheapest) new sites so that every unit, or a chosen share of demand, is within T min;
* :class:`MCLP` – the demand covered within T min with p new sites, maximised;
* :class:`PMedian` – demand-weighted travel time with p new sites, minimised;
* :class:`Greedy` – AccessMod's scale-up heuristic (add the site with the greatest marginal gain), a comparison row.

Existing active agencies are always kept as fixed facilities: they cover what they cover, and the models choose only
among candidates. Passing ``candidate_capacity`` turns LSCP, MCLP and p-median into their capacitated variants, where
demand beyond an agency's capacity is not counted as covered. A unit's demand may split between sites (a flow):
LTCI clients of one village are individuals and go to different agencies. spopt's capacitated p-median assigns whole
units instead, so only the uncapacitated objectives are checked against spopt.

Matrices follow :class:`geo.traveltime.TravelMatrix`: rows are sites (candidates or existing agencies), columns are
units, values are minutes with ``inf`` for unreachable. spopt uses the transpose (clients × facilities).

The exact models are built in bulk from numpy / scipy.sparse arrays and solved with HiGHS (highspy). The p-median uses
the compact "radius" formulation (Elloumi 2010, chained form): per unit, one variable per distinct candidate travel
time shorter than the nearest existing agency, instead of one assignment variable per candidate × unit pair. It has
the same LP bound as the classical assignment model and a fraction of its size, because candidates farther than an
existing agency can never serve the unit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from geo.errors import InputError, PlanningError, Problem
from planning.mip import HighsMip

__all__ = ["LSCP", "MCLP", "PMedian", "Greedy"]


# --------------------------------------------------------------------------------------------------------------------
# HiGHS


@dataclass
class _MipOutcome:
    values: np.ndarray
    objective: float
    mip_gap: float
    status: str


def _solve_mip(
    *,
    cost: np.ndarray,
    col_lower: np.ndarray,
    col_upper: np.ndarray,
    integer: np.ndarray,
    rows: sp.csr_matrix,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    maximize: bool,
    time_limit: float,
    mip_gap: float,
    infeasible_message: str,
    start: np.ndarray | None = None,
) -> _MipOutcome:
    """Pass one MIP to HiGHS (:class:`planning.mip.HighsMip`) and return its best feasible solution with the gap.

    A feasible ``start`` (the greedy scale-up) means a time limit never returns worse than the heuristic."""
    mip = HighsMip(cost, col_lower, col_upper, integer, rows, row_lower, row_upper, mip_rel_gap=mip_gap,
                   maximize=maximize)
    result = mip.solve(time_limit_s=time_limit, start=start)
    if "nfeasible" in result.status:
        raise PlanningError(infeasible_message)
    if not result.feasible:
        raise PlanningError(
            f"HiGHS found no feasible solution ({result.status}) within time_limit={time_limit:g} s; "
            "raise time_limit or shrink the candidate set"
        )
    return _MipOutcome(values=result.values, objective=result.objective, mip_gap=result.gap, status=result.status)


# --------------------------------------------------------------------------------------------------------------------
# Shared inputs, validation and results


def _as_ids(ids, n: int, prefix: str, label: str, problems: list[Problem]) -> np.ndarray:
    if ids is None:
        return np.array([f"{prefix}{i}" for i in range(n)], dtype=object)
    out = np.asarray(list(ids), dtype=object).astype(str)
    if len(out) != n:
        problems.append(Problem(f"{label} has {len(out)} ids for {n} matrix rows/columns", column=label))
    elif len(set(out)) != len(out):
        dup = pd.Series(out).loc[lambda s: s.duplicated()].unique()[:5].tolist()
        problems.append(Problem(f"{label} repeats ids {dup}; every id must be unique", column=label))
    return out


def _as_vector(values, n: int, label: str, problems: list[Problem], *, default: float | None,
               allow_inf: bool = False, positive: bool = False) -> np.ndarray | None:
    if values is None:
        return None if default is None else np.full(n, default, dtype=np.float64)
    arr = np.asarray(values, dtype=np.float64).ravel()
    if len(arr) != n:
        problems.append(Problem(f"{label} has {len(arr)} values for {n} rows; give one per row", column=label))
        return arr
    bad_nan = np.flatnonzero(np.isnan(arr) | (~allow_inf & np.isinf(arr)))
    if len(bad_nan):
        problems.append(Problem(f"{label} must be finite numbers; positions {bad_nan[:5].tolist()} are not",
                                column=label))
    low = np.flatnonzero(arr <= 0) if positive else np.flatnonzero(arr < 0)
    if len(low):
        need = "positive" if positive else "zero or more"
        problems.append(Problem(f"{label} must be {need}; positions {low[:5].tolist()} are not", column=label))
    return arr


def _check_matrix(matrix, label: str, problems: list[Problem]) -> np.ndarray:
    arr = np.asarray(matrix, dtype=np.float64)
    if arr.ndim != 2:
        problems.append(Problem(f"{label} must be 2-D (sites × units), got {arr.ndim}-D", column=label))
        return np.zeros((0, 0))
    if np.isnan(arr).any():
        r, c = np.argwhere(np.isnan(arr))[0]
        problems.append(Problem(f"{label} holds NaN (first at site {r}, unit {c}); use inf for unreachable",
                                column=label))
    if (arr < 0).any():
        r, c = np.argwhere(arr < 0)[0]
        problems.append(Problem(f"{label} holds negative minutes (first at site {r}, unit {c})", column=label))
    return arr


class _SitingModel:
    """Common inputs and results of every siting model (not used directly)."""

    name = "siting"

    def __init__(
        self,
        cost_matrix,
        *,
        demand=None,
        existing_matrix=None,
        candidate_ids=None,
        unit_ids=None,
        existing_ids=None,
        setup_cost=None,
        candidate_capacity=None,
        existing_capacity=None,
        candidate_group=None,
        min_new_by_group: dict | None = None,
        threshold_min: float | None = None,
        p: int | None = None,
        budget: float | None = None,
    ):
        problems: list[Problem] = []
        self.cost_matrix = _check_matrix(cost_matrix, "cost_matrix", problems)
        n_cand, n_units = self.cost_matrix.shape if self.cost_matrix.ndim == 2 else (0, 0)
        if existing_matrix is None:
            self.existing_matrix = np.zeros((0, n_units))
        else:
            self.existing_matrix = _check_matrix(existing_matrix, "existing_matrix", problems)
            if self.existing_matrix.ndim == 2 and self.existing_matrix.shape[1] != n_units:
                problems.append(Problem(
                    f"existing_matrix has {self.existing_matrix.shape[1]} unit columns, cost_matrix has {n_units}; "
                    "both must list the same units in the same order", column="existing_matrix"))
        n_exist = self.existing_matrix.shape[0] if self.existing_matrix.ndim == 2 else 0
        self.candidate_ids = _as_ids(candidate_ids, n_cand, "c", "candidate_ids", problems)
        self.unit_ids = _as_ids(unit_ids, n_units, "u", "unit_ids", problems)
        self.existing_ids = _as_ids(existing_ids, n_exist, "e", "existing_ids", problems)
        self.demand = _as_vector(demand, n_units, "demand", problems, default=1.0)
        self.setup_cost = _as_vector(setup_cost, n_cand, "setup_cost", problems, default=1.0, positive=True)
        self.candidate_capacity = _as_vector(candidate_capacity, n_cand, "candidate_capacity", problems,
                                             default=None)
        self.existing_capacity = _as_vector(existing_capacity, n_exist, "existing_capacity", problems,
                                            default=None, allow_inf=True)
        self.capacitated = self.candidate_capacity is not None
        if self.capacitated and n_exist and self.existing_capacity is None:
            problems.append(Problem(
                "candidate_capacity is given but existing_capacity is not; give each existing agency's spare "
                "capacity (np.inf for unlimited) so both sides are capacitated the same way",
                column="existing_capacity"))
        if not self.capacitated and self.existing_capacity is not None:
            problems.append(Problem("existing_capacity needs candidate_capacity too (the capacitated variant)",
                                    column="candidate_capacity"))
        self.threshold_min = None if threshold_min is None else float(threshold_min)
        if threshold_min is not None and not (np.isfinite(self.threshold_min) and self.threshold_min > 0):
            problems.append(Problem(f"threshold_min must be a positive number of minutes, got {threshold_min!r}",
                                    column="threshold_min"))
        self.p = p
        if p is not None and (isinstance(p, bool) or int(p) != p or p < 1):
            problems.append(Problem(f"p must be a whole number of new sites ≥ 1, got {p!r}", column="p"))
        self.budget = None if budget is None else float(budget)
        if budget is not None and not (self.budget > 0):
            problems.append(Problem(f"budget must be positive, got {budget!r}", column="budget"))
        self.candidate_group = None
        self.min_new_by_group = dict(min_new_by_group or {})
        if candidate_group is not None:
            self.candidate_group = np.asarray(list(candidate_group), dtype=object).astype(str)
            if len(self.candidate_group) != n_cand:
                problems.append(Problem(f"candidate_group has {len(self.candidate_group)} labels for {n_cand} "
                                        "candidates", column="candidate_group"))
        if self.min_new_by_group and self.candidate_group is None:
            problems.append(Problem("min_new_by_group needs candidate_group (the group of each candidate)",
                                    column="candidate_group"))
        for group, need in self.min_new_by_group.items():
            if int(need) != need or need < 0:
                problems.append(Problem(f"min_new_by_group[{group!r}] must be a whole number ≥ 0, got {need!r}",
                                        column="min_new_by_group"))
        if problems:
            raise InputError(f"{self.name} inputs cannot be used", problems)
        self._check_planning()
        self._clear_results()

    # -- checks that need consistent inputs; they name the binding constraint ---------------------------------------

    def _check_planning(self) -> None:
        n_cand = self.cost_matrix.shape[0]
        if n_cand == 0:
            raise PlanningError(
                "no candidate sites are left (after exclusions); relax the minimum distance to existing agencies "
                "or add candidates")
        outside = np.flatnonzero(~np.isfinite(self.cost_matrix).any(axis=1))
        if len(outside):
            raise InputError(
                "candidates lie outside the road network extent (unreachable from every unit)",
                [Problem(f"candidate {self.candidate_ids[j]} reaches no unit; move it onto the network or remove it",
                         row=int(j) + 1, column="candidate_id", value=self.candidate_ids[j]) for j in outside])
        if self.p is not None and self.p > n_cand:
            raise PlanningError(f"p={self.p} new sites asked for but only {n_cand} candidates exist; lower p or "
                                "add candidates")
        if self.threshold_min is not None and not getattr(self, "_threshold_optional", False):
            nearest = float(np.min(self.cost_matrix))
            if nearest > self.threshold_min:
                raise PlanningError(
                    f"threshold_min={self.threshold_min:g} min is so small that no candidate covers any unit (the "
                    f"closest candidate–unit pair is {nearest:.1f} min); raise the threshold")
        if self.min_new_by_group:
            labels, counts = np.unique(self.candidate_group, return_counts=True)
            available = dict(zip(labels.tolist(), counts.tolist()))
            short = {g: (int(k), available.get(str(g), 0)) for g, k in self.min_new_by_group.items()
                     if available.get(str(g), 0) < k}
            if short:
                detail = ", ".join(f"{g}: needs {k}, has {a}" for g, (k, a) in short.items())
                raise PlanningError(f"groups ask for more new sites than they have candidates ({detail})")
            total = int(sum(self.min_new_by_group.values()))
            if self.p is not None and total > self.p:
                raise PlanningError(f"the group minimums add up to {total} new sites, more than p={self.p}")
        if self.capacitated:
            total_cap = float(self.candidate_capacity.sum()) + float(
                0.0 if self.existing_capacity is None else self.existing_capacity.sum())
            if total_cap <= 0 and self.demand.sum() > 0:
                raise PlanningError("every capacity is zero: no demand can be served")

    def _clear_results(self) -> None:
        self.selected = np.zeros(0, dtype=np.int64)
        self.selected_ids: list[str] = []
        self.objective = float("nan")
        self.mip_gap = float("nan")
        self.solve_time_s = float("nan")
        self.status = "not solved"
        self.unit_coverage: pd.DataFrame | None = None
        self.assignment: pd.Series | None = None
        self.allocation: pd.DataFrame | None = None

    @classmethod
    def from_travel_matrix(cls, candidates, *, existing=None, demand=None, **options):
        """Build the model from :class:`geo.traveltime.TravelMatrix` objects.

        Parameters
        ----------
        candidates : geo.traveltime.TravelMatrix
            Candidate sites × units.
        existing : geo.traveltime.TravelMatrix, optional
            Existing active agencies × units; reordered to the candidates' unit order.
        demand : pandas.Series or array-like, optional
            Demand per unit; a Series is aligned on ``unit_id`` (every unit must be present).
        **options
            Passed to the model (``threshold_min``, ``p``, capacities, ...).
        """
        unit_ids = list(candidates.unit_ids)
        existing_matrix = existing_ids = None
        if existing is not None:
            aligned = existing.subset(unit_ids=unit_ids)
            existing_matrix, existing_ids = aligned.minutes, aligned.agency_ids
        if isinstance(demand, pd.Series):
            index = demand.index.astype(str)
            missing = [u for u in unit_ids if u not in set(index)]
            if missing:
                raise InputError("demand does not cover every unit of the matrix",
                                 [Problem(f"unit {u} has no demand value", column="demand", value=u)
                                  for u in missing])
            demand = pd.Series(demand.to_numpy(), index=index).loc[unit_ids].to_numpy(dtype=np.float64)
        return cls(candidates.minutes, demand=demand, existing_matrix=existing_matrix,
                   candidate_ids=candidates.agency_ids, unit_ids=unit_ids, existing_ids=existing_ids, **options)

    # -- shared model pieces ----------------------------------------------------------------------------------------

    @property
    def existing_best(self) -> np.ndarray:
        """Minutes from each unit to its nearest existing agency (inf where none)."""
        if self.existing_matrix.shape[0] == 0:
            return np.full(self.cost_matrix.shape[1], np.inf)
        return self.existing_matrix.min(axis=0)

    def _side_rows(self, n_col: int, kept: np.ndarray | None = None):
        """Rows on the site columns (the first ``len(kept)`` columns): p, budget and group minimums."""
        kept = np.arange(self.cost_matrix.shape[0]) if kept is None else kept
        n_site = len(kept)
        blocks, lower, upper = [], [], []

        def row(columns, values=None):
            values = np.ones(len(columns)) if values is None else values
            return sp.csr_matrix((values, (np.zeros(len(columns), int), columns)), shape=(1, n_col))

        if self.p is not None:
            blocks.append(row(np.arange(n_site)))
            lower.append(float(self.p))
            upper.append(float(self.p))
        if self.budget is not None:
            blocks.append(row(np.arange(n_site), self.setup_cost[kept]))
            lower.append(-np.inf)
            upper.append(self.budget)
        for group, need in self.min_new_by_group.items():
            blocks.append(row(np.flatnonzero(self.candidate_group[kept] == str(group))))
            lower.append(float(need))
            upper.append(np.inf)
        return blocks, lower, upper

    def _reduce_cover(self, cover: sp.csr_matrix, weight: np.ndarray, *, keep_p: int | None):
        """Shrink a units × candidates cover matrix without changing the optimum of LSCP / MCLP.

        * Units with the same set of covering candidates become one row carrying their summed weight (found by two
          random projections of each row, so it stays one sparse product).
        * A candidate whose covered set is contained in a no-dearer candidate's set is dominated and dropped: any
          solution using it does at least as well with its dominator instead. Skipped when side constraints (groups,
          budget) could make the dearer-looking candidate necessary, or when fewer than ``keep_p`` would remain.

        Returns the reduced matrix, the weights of its rows, and the kept candidate indices.
        """
        n_cand = cover.shape[1]
        kept = np.arange(n_cand)
        if cover.shape[0]:
            rng = np.random.default_rng(12345)
            keys = cover @ rng.random((n_cand, 2))
            keys = np.column_stack([keys, np.diff(cover.indptr)])
            _, first, inverse = np.unique(np.round(keys, 9), axis=0, return_index=True, return_inverse=True)
            weight = np.bincount(inverse.ravel(), weights=weight, minlength=len(first))
            cover = cover[first]
        if self.min_new_by_group or self.budget is not None:
            return cover, weight, kept
        size = np.diff(cover.tocsc().indptr)
        overlap = (cover.T @ cover).tocoo()
        j, k = overlap.row, overlap.col
        cost = self.setup_cost
        contained = (overlap.data == size[j]) & (j != k) & (cost[k] <= cost[j])
        # equal sets at equal cost: keep the lower index only, so one of them survives
        strict = (size[k] > size[j]) | (cost[k] < cost[j]) | (k < j)
        dominated = np.zeros(n_cand, bool)
        dominated[j[contained & strict]] = True
        dominated |= size == 0
        if keep_p is not None and (~dominated).sum() < keep_p:
            return cover, weight, kept
        kept = np.flatnonzero(~dominated)
        return cover[:, kept].tocsr(), weight, kept

    def _coverage_pairs(self):
        """Candidate × unit and existing × unit pairs within the threshold, as index arrays."""
        cj, ci = np.nonzero(self.cost_matrix <= self.threshold_min)
        ej, ei = np.nonzero(self.existing_matrix <= self.threshold_min)
        return cj, ci, ej, ei

    def _capacitated_flow(self, *, cj, ci, ej, ei, units: np.ndarray):
        """The flow block of the capacitated variants.

        Columns: ``x`` (one per candidate), then ``w`` (one per candidate pair, then one per existing pair), the
        share of the unit's demand served by that site. Rows: each unit's shares sum to ≤ 1; each site serves at
        most its capacity (candidates only when opened); and ``w ≤ x``, which keeps the LP bound tight.
        """
        n_cand = self.cost_matrix.shape[0]
        keep_c = np.isin(ci, units)
        keep_e = np.isin(ei, units)
        cj, ci, ej, ei = cj[keep_c], ci[keep_c], ej[keep_e], ei[keep_e]
        n_wc, n_we = len(cj), len(ej)
        n_col = n_cand + n_wc + n_we
        w_unit = np.concatenate([ci, ei])
        w_col = n_cand + np.arange(n_wc + n_we)
        unit_pos = np.full(self.cost_matrix.shape[1], -1)
        unit_pos[units] = np.arange(len(units))
        d = self.demand
        share_rows = sp.csr_matrix((np.ones(len(w_col)), (unit_pos[w_unit], w_col)), shape=(len(units), n_col))
        cand_cap = sp.csr_matrix(
            (np.concatenate([d[ci], -self.candidate_capacity]),
             (np.concatenate([cj, np.arange(n_cand)]), np.concatenate([w_col[:n_wc], np.arange(n_cand)]))),
            shape=(n_cand, n_col))
        n_exist = self.existing_matrix.shape[0]
        exist_cap = sp.csr_matrix((d[ei], (ej, w_col[n_wc:])), shape=(n_exist, n_col))
        link = sp.csr_matrix(
            (np.concatenate([np.ones(n_wc), -np.ones(n_wc)]),
             (np.concatenate([np.arange(n_wc)] * 2), np.concatenate([w_col[:n_wc], cj]))),
            shape=(n_wc, n_col))
        e_cap = np.zeros(n_exist) if self.existing_capacity is None else self.existing_capacity
        rows = [share_rows, cand_cap, exist_cap, link]
        lower = [np.full(len(units), -np.inf), np.full(n_cand, -np.inf), np.full(n_exist, -np.inf),
                 np.full(n_wc, -np.inf)]
        upper = [np.ones(len(units)), np.zeros(n_cand), e_cap, np.zeros(n_wc)]
        pairs = (np.concatenate([cj, -1 - ej]), w_unit)  # site index: candidates ≥ 0, existing as -1 - index
        return n_col, rows, lower, upper, pairs

    def _read_flow(self, values: np.ndarray, pairs) -> None:
        """Turn solved shares into the allocation table and each unit's served demand."""
        n_cand = self.cost_matrix.shape[0]
        site, unit = pairs
        share = values[n_cand:n_cand + len(site)]
        used = share > 1e-9
        site, unit, share = site[used], unit[used], share[used]
        site_id = np.where(site >= 0, self.candidate_ids[np.maximum(site, 0)],
                           self.existing_ids[np.maximum(-1 - site, 0)] if len(self.existing_ids) else "")
        minutes = np.where(site >= 0, self.cost_matrix[np.maximum(site, 0), unit],
                           self.existing_matrix[np.maximum(-1 - site, 0), unit] if len(self.existing_ids) else np.nan)
        self.allocation = pd.DataFrame({
            "unit_id": self.unit_ids[unit], "site_id": site_id, "share": share,
            "demand": share * self.demand[unit], "minutes": minutes,
        })
        self._served_share = np.bincount(unit, weights=share, minlength=self.cost_matrix.shape[1]).clip(0, 1)

    def _finish(self, selected: np.ndarray, started: float, *, objective: float, gap: float, status: str) -> None:
        self.selected = np.sort(np.asarray(selected, dtype=np.int64))
        self.selected_ids = self.candidate_ids[self.selected].tolist()
        self.objective = float(objective)
        self.mip_gap = float(gap)
        self.status = status
        self.solve_time_s = time.perf_counter() - started
        self._tabulate()

    def _tabulate(self) -> None:
        """Per-unit travel and coverage before and after adding the selected sites."""
        before = self.existing_best
        sites = np.vstack([self.existing_matrix, self.cost_matrix[self.selected]])
        site_ids = np.concatenate([self.existing_ids, self.candidate_ids[self.selected]])
        if len(site_ids):
            nearest = sites.argmin(axis=0)
            after = sites[nearest, np.arange(sites.shape[1])]
            nearest_id = np.where(np.isfinite(after), site_ids[nearest], None)
        else:
            after = np.full(self.cost_matrix.shape[1], np.inf)
            nearest_id = np.full(self.cost_matrix.shape[1], None)
        table = pd.DataFrame({
            "unit_id": self.unit_ids, "demand": self.demand, "travel_before_min": before,
            "travel_min": after, "nearest_id": nearest_id,
        })
        if self.threshold_min is not None:
            table["covered_before"] = before <= self.threshold_min
            if self.capacitated and getattr(self, "_served_share", None) is not None:
                table["served_share"] = self._served_share
                # a unit without demand has nothing to overflow: it is covered when a site lies within reach
                table["covered"] = (self._served_share >= 1 - 1e-6) | ((self.demand == 0) & (after <= self.threshold_min))
            else:
                table["covered"] = after <= self.threshold_min
            table["newly_covered"] = table["covered"] & ~table["covered_before"]
        self.unit_coverage = table.set_index("unit_id")
        if self.allocation is not None:
            self.assignment = (self.allocation.sort_values("share", ascending=False)
                               .drop_duplicates("unit_id").set_index("unit_id")["site_id"]
                               .reindex(self.unit_ids))
        else:
            self.assignment = pd.Series(nearest_id, index=pd.Index(self.unit_ids, name="unit_id"), name="site_id")

    def summary(self) -> dict:
        """The headline figures of the solved model, JSON-ready."""
        out = {
            "model": self.name, "units": int(self.cost_matrix.shape[1]),
            "candidates": int(self.cost_matrix.shape[0]), "existing": int(self.existing_matrix.shape[0]),
            "p": self.p, "threshold_min": self.threshold_min, "capacitated": self.capacitated,
            "selected_ids": list(self.selected_ids), "n_new_sites": len(self.selected_ids),
            "objective": self.objective, "mip_gap": self.mip_gap, "solve_time_s": self.solve_time_s,
            "status": self.status,
        }
        if self.unit_coverage is not None and "covered" in self.unit_coverage:
            total = float(self.demand.sum())
            covered = float((self.unit_coverage["demand"] * self.unit_coverage.get(
                "served_share", self.unit_coverage["covered"].astype(float))).sum())
            out["covered_demand"] = covered
            out["covered_share"] = covered / total if total else 1.0
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(units={self.cost_matrix.shape[1]}, candidates={self.cost_matrix.shape[0]}, "
                f"existing={self.existing_matrix.shape[0]}, status={self.status!r}, objective={self.objective:g})")


# --------------------------------------------------------------------------------------------------------------------
# Models


class LSCP(_SitingModel):
    """Location set covering: the fewest (or cheapest) new sites that bring demand within ``threshold_min``.

    Minimises the total ``setup_cost`` of new sites (their number when every cost is 1) such that every unit is
    within ``threshold_min`` minutes of an existing agency or a new site — or, with ``coverage_share`` < 1, such that
    at least that share of total demand is. Existing agencies are fixed. With ``candidate_capacity`` a unit counts as
    covered only for the part of its demand that a site within reach can still take.

    Parameters
    ----------
    cost_matrix : array-like, shape (candidates, units)
        Minutes from each candidate site to each unit (``inf`` = unreachable).
    threshold_min : float
        The service standard T in minutes.
    coverage_share : float, default 1.0
        Share of total demand that must be covered (1.0 = every unit, whatever its demand).
    demand, existing_matrix, candidate_ids, unit_ids, existing_ids, setup_cost, candidate_capacity,
    existing_capacity, candidate_group, min_new_by_group
        See :class:`MCLP`.

    Attributes (after :meth:`solve`)
    ---------------------------------
    selected, selected_ids, objective (total setup cost), mip_gap, solve_time_s, status, unit_coverage,
    assignment, allocation (capacitated only).
    """

    name = "LSCP"

    def __init__(self, cost_matrix, *, threshold_min: float, coverage_share: float = 1.0, **options):
        self.coverage_share = float(coverage_share)
        if not 0 < self.coverage_share <= 1:
            raise InputError("LSCP inputs cannot be used",
                             [Problem(f"coverage_share must be in (0, 1], got {coverage_share!r}",
                                      column="coverage_share")])
        super().__init__(cost_matrix, threshold_min=threshold_min, **options)
        self._check_reachable()

    def _check_reachable(self) -> None:
        T = self.threshold_min
        reach = (self.cost_matrix <= T).any(axis=0) | (self.existing_best <= T)
        if self.coverage_share >= 1 and not self.capacitated:
            unreachable = np.flatnonzero(~reach)
            if len(unreachable):
                nearest = self.cost_matrix[:, unreachable].min(axis=0)
                listed = ", ".join(f"{self.unit_ids[i]} ({m:.1f} min)" for i, m in zip(unreachable[:8], nearest[:8]))
                raise PlanningError(
                    f"{len(unreachable)} units cannot be brought within {T:g} min by any candidate or existing "
                    f"agency: {listed}; raise the threshold, add candidates near them or set coverage_share < 1")
        else:
            total = float(self.demand.sum())
            reachable = float(self.demand[reach].sum())
            if total > 0 and reachable < self.coverage_share * total - 1e-9:
                raise PlanningError(
                    f"at most {reachable / total:.1%} of demand lies within {T:g} min of any candidate or existing "
                    f"agency, below coverage_share={self.coverage_share:.1%}; lower the share or raise the threshold")

    def solve(self, *, time_limit: float = 60.0, mip_gap: float = 0.0) -> "LSCP":
        """Solve with HiGHS; returns self. ``mip_gap`` is HiGHS's relative gap (0 = prove optimality)."""
        started = time.perf_counter()
        self._clear_results()
        T = self.threshold_min
        covered_before = self.existing_best <= T
        total = float(self.demand.sum())
        if self.capacitated:
            self._solve_capacitated(started, time_limit, mip_gap)
            return self
        if self.coverage_share >= 1:
            open_units = np.flatnonzero(~covered_before)
            if len(open_units) == 0 and not self.min_new_by_group:
                self._finish(np.zeros(0, int), started, objective=0.0, gap=0.0, status="Optimal")
                return self
            sub = sp.csr_matrix(self.cost_matrix[:, open_units] <= T, dtype=np.float64).T.tocsr()
            sub, _, kept = self._reduce_cover(sub, np.ones(len(open_units)), keep_p=None)
            n_site = n_col = len(kept)
            rows, lower, upper = [sub], [np.ones(sub.shape[0])], [np.full(sub.shape[0], np.inf)]
            col_lower, col_upper = np.zeros(n_col), np.ones(n_col)
            integer = np.ones(n_col, bool)
            cost = self.setup_cost[kept]
        else:
            need = self.coverage_share * total - float(self.demand[covered_before].sum())
            open_units = np.flatnonzero(~covered_before & (self.demand > 0)
                                        & (self.cost_matrix <= T).any(axis=0))
            if need <= 1e-9 and not self.min_new_by_group:
                self._finish(np.zeros(0, int), started, objective=0.0, gap=0.0, status="Optimal")
                return self
            cover = sp.csr_matrix(self.cost_matrix[:, open_units] <= T, dtype=np.float64).T.tocsr()
            cover, weight, kept = self._reduce_cover(cover, self.demand[open_units], keep_p=None)
            n_site, n_open = len(kept), cover.shape[0]
            n_col = n_site + n_open
            # y_i ≤ Σ_j a_ij x_j : a unit counts only if a chosen site reaches it
            link = sp.hstack([-cover, sp.identity(n_open)], format="csr")
            share = sp.csr_matrix(np.concatenate([np.zeros(n_site), weight])[None, :])
            rows, lower, upper = [link, share], [np.full(n_open, -np.inf), [need]], [np.zeros(n_open), [np.inf]]
            col_lower, col_upper = np.zeros(n_col), np.ones(n_col)
            integer = np.concatenate([np.ones(n_site, bool), np.zeros(n_open, bool)])
            cost = np.concatenate([self.setup_cost[kept], np.zeros(n_open)])
        side, side_lo, side_up = self._side_rows(n_col, kept)
        outcome = _solve_mip(
            cost=cost, col_lower=col_lower, col_upper=col_upper, integer=integer,
            rows=sp.vstack(rows + side, format="csr"),
            row_lower=np.concatenate([np.asarray(v, float) for v in lower] + [np.asarray(side_lo, float)]),
            row_upper=np.concatenate([np.asarray(v, float) for v in upper] + [np.asarray(side_up, float)]),
            maximize=False, time_limit=time_limit, mip_gap=mip_gap,
            infeasible_message=f"no set of candidates brings the required demand within {T:g} min",
        )
        chosen = kept[outcome.values[:n_site] > 0.5]
        self._finish(chosen, started, objective=float(self.setup_cost[chosen].sum()), gap=outcome.mip_gap,
                     status=outcome.status)
        return self

    def _solve_capacitated(self, started: float, time_limit: float, mip_gap: float) -> None:
        n_cand = self.cost_matrix.shape[0]
        T = self.threshold_min
        cj, ci, ej, ei = self._coverage_pairs()
        units = np.flatnonzero(self.demand > 0)
        n_col, rows, lower, upper, pairs = self._capacitated_flow(cj=cj, ci=ci, ej=ej, ei=ei, units=units)
        served = sp.csr_matrix((self.demand[pairs[1]], (np.zeros(len(pairs[1]), int),
                                                        n_cand + np.arange(len(pairs[1])))), shape=(1, n_col))
        need = self.coverage_share * float(self.demand.sum())
        side, side_lo, side_up = self._side_rows(n_col)
        outcome = _solve_mip(
            cost=np.concatenate([self.setup_cost, np.zeros(n_col - n_cand)]),
            col_lower=np.zeros(n_col), col_upper=np.ones(n_col),
            integer=np.arange(n_col) < n_cand,
            rows=sp.vstack(rows + [served] + side, format="csr"),
            row_lower=np.concatenate(lower + [[need], np.asarray(side_lo, float)]),
            row_upper=np.concatenate(upper + [[np.inf], np.asarray(side_up, float)]),
            maximize=False, time_limit=time_limit, mip_gap=mip_gap,
            infeasible_message=(f"even opening every candidate cannot serve {self.coverage_share:.0%} of demand within "
                                f"{T:g} min: the capacities within reach are too small; add capacity or lower "
                                "coverage_share"),
        )
        chosen = np.flatnonzero(outcome.values[:n_cand] > 0.5)
        self._read_flow(outcome.values, pairs)
        self._finish(chosen, started, objective=float(self.setup_cost[chosen].sum()), gap=outcome.mip_gap,
                     status=outcome.status)


class MCLP(_SitingModel):
    """Maximal covering: the demand within ``threshold_min`` of an agency, maximised with ``p`` new sites.

    Parameters
    ----------
    cost_matrix : array-like, shape (candidates, units)
        Minutes from each candidate site to each unit (``inf`` = unreachable).
    threshold_min : float
        The service standard T in minutes.
    p : int
        Number of new sites to open.
    demand : array-like, shape (units,), optional
        Demand of each unit (default 1 each).
    existing_matrix : array-like, shape (existing, units), optional
        Minutes from each existing active agency; these are always kept.
    candidate_ids, unit_ids, existing_ids : sequence of str, optional
        Ids of rows and columns, carried into the results.
    setup_cost : array-like, shape (candidates,), optional
        Setup-cost weight of each candidate (default 1); used with ``budget``.
    budget : float, optional
        Upper bound on the total setup cost of the new sites.
    candidate_capacity, existing_capacity : array-like, optional
        Planned capacity of each candidate and spare capacity of each existing agency (same unit as demand). Given,
        the capacitated variant runs: demand beyond a site's capacity is not covered.
    candidate_group : sequence of str, optional
        A label per candidate (e.g. its township), used by ``min_new_by_group``.
    min_new_by_group : dict, optional
        Minimum number of new sites per group (e.g. from the urban residents-per-agency preset).

    Attributes (after :meth:`solve`)
    ---------------------------------
    selected : numpy.ndarray
        Indices of the chosen candidates.
    selected_ids : list of str
    objective : float
        Total demand covered within T, existing coverage included (spopt's MCLP objective).
    added_demand : float
        The part of it the new sites bring.
    mip_gap, solve_time_s, status
    unit_coverage : pandas.DataFrame
        Per unit: demand, travel before/after, nearest site, covered before/after, newly covered.
    assignment : pandas.Series
        The site each unit goes to (nearest, or largest share in the capacitated variant).
    allocation : pandas.DataFrame or None
        Capacitated only: unit, site, share, demand, minutes.
    """

    name = "MCLP"

    def __init__(self, cost_matrix, *, threshold_min: float, p: int, **options):
        super().__init__(cost_matrix, threshold_min=threshold_min, p=p, **options)
        self.added_demand = float("nan")

    def solve(self, *, time_limit: float = 60.0, mip_gap: float = 0.0) -> "MCLP":
        """Solve with HiGHS; returns self. ``mip_gap`` is HiGHS's relative gap (0 = prove optimality)."""
        started = time.perf_counter()
        self._clear_results()
        n_cand = self.cost_matrix.shape[0]
        T = self.threshold_min
        covered_before = self.existing_best <= T
        base = float(self.demand[covered_before].sum())
        if self.capacitated:
            cj, ci, ej, ei = self._coverage_pairs()
            units = np.flatnonzero(self.demand > 0)
            n_col, rows, lower, upper, pairs = self._capacitated_flow(cj=cj, ci=ci, ej=ej, ei=ei, units=units)
            cost = np.zeros(n_col)
            cost[n_cand:] = self.demand[pairs[1]]
            base = 0.0
        else:
            # units already covered by an existing agency or out of every candidate's reach cannot change
            open_units = np.flatnonzero(~covered_before & (self.demand > 0) & (self.cost_matrix <= T).any(axis=0))
            cover = sp.csr_matrix(self.cost_matrix[:, open_units] <= T, dtype=np.float64).T.tocsr()
            cover, weight, kept = self._reduce_cover(cover, self.demand[open_units], keep_p=self.p)
            n_site, n_open = len(kept), cover.shape[0]
            n_col = n_site + n_open
            rows = [sp.hstack([-cover, sp.identity(n_open)], format="csr")]
            lower, upper = [np.full(n_open, -np.inf)], [np.zeros(n_open)]
            cost = np.concatenate([np.zeros(n_site), weight])
        if self.capacitated:
            kept, n_site = np.arange(n_cand), n_cand
        side, side_lo, side_up = self._side_rows(n_col, kept)
        outcome = _solve_mip(
            cost=cost, col_lower=np.zeros(n_col), col_upper=np.ones(n_col), integer=np.arange(n_col) < n_site,
            rows=sp.vstack(rows + side, format="csr"),
            row_lower=np.concatenate(lower + [np.asarray(side_lo, float)]),
            row_upper=np.concatenate(upper + [np.asarray(side_up, float)]),
            maximize=True, time_limit=time_limit, mip_gap=mip_gap,
            infeasible_message="the p / budget / group-minimum constraints contradict each other",
        )
        chosen = kept[outcome.values[:n_site] > 0.5]
        if self.capacitated:
            self._read_flow(outcome.values, pairs)
            objective = outcome.objective
            self.added_demand = objective - self._existing_only_served()
        else:
            reach = (self.cost_matrix[chosen] <= T).any(axis=0) if len(chosen) else np.zeros(len(self.demand), bool)
            objective = float(self.demand[covered_before | reach].sum())
            self.added_demand = objective - base
        self._finish(chosen, started, objective=objective, gap=outcome.mip_gap, status=outcome.status)
        return self

    def _existing_only_served(self) -> float:
        """Demand the existing agencies alone serve within T and capacity (an LP), for ``added_demand``."""
        if self.existing_matrix.shape[0] == 0:
            return 0.0
        ej, ei = np.nonzero(self.existing_matrix <= self.threshold_min)
        keep = self.demand[ei] > 0
        ej, ei = ej[keep], ei[keep]
        if len(ej) == 0:
            return 0.0
        n = len(ej)
        units = sp.csr_matrix((np.ones(n), (ei, np.arange(n))), shape=(self.cost_matrix.shape[1], n))
        caps = sp.csr_matrix((self.demand[ei], (ej, np.arange(n))), shape=(self.existing_matrix.shape[0], n))
        outcome = _solve_mip(
            cost=self.demand[ei], col_lower=np.zeros(n), col_upper=np.ones(n), integer=np.zeros(n, bool),
            rows=sp.vstack([units, caps], format="csr"),
            row_lower=np.full(units.shape[0] + caps.shape[0], -np.inf),
            row_upper=np.concatenate([np.ones(units.shape[0]), self.existing_capacity]),
            maximize=True, time_limit=60.0, mip_gap=0.0, infeasible_message="existing-only flow is infeasible")
        return outcome.objective


class PMedian(_SitingModel):
    """p-median: demand-weighted travel time to the nearest agency, minimised with ``p`` new sites.

    Every unit goes to its nearest agency, existing or new. Existing agencies are fixed; candidates with no finite
    time to a unit cannot serve it, and a unit no agency or candidate reaches is an error.

    Parameters
    ----------
    cost_matrix : array-like, shape (candidates, units)
        Minutes from each candidate site to each unit (``inf`` = unreachable).
    p : int
        Number of new sites to open.
    threshold_min : float, optional
        Only used to report coverage in ``unit_coverage``; it does not constrain the model.
    demand, existing_matrix, ids, setup_cost, budget, candidate_capacity, existing_capacity, candidate_group,
    min_new_by_group
        See :class:`MCLP`. With capacities, units may split their demand between sites (capacitated p-median).

    Attributes (after :meth:`solve`)
    ---------------------------------
    objective : float
        Σ demand × minutes to the assigned agency (spopt's PMedian objective).
    mean_travel_min : float
        Demand-weighted mean minutes.
    selected, selected_ids, mip_gap, solve_time_s, status, unit_coverage, assignment, allocation.
    """

    name = "PMedian"
    _threshold_optional = True

    def __init__(self, cost_matrix, *, p: int, threshold_min: float | None = None, **options):
        super().__init__(cost_matrix, p=p, threshold_min=threshold_min, **options)
        self.mean_travel_min = float("nan")
        reachable = np.isfinite(self.cost_matrix).any(axis=0) | np.isfinite(self.existing_best)
        lost = np.flatnonzero(~reachable)
        if len(lost):
            raise PlanningError(
                f"{len(lost)} units are reachable from no existing agency and no candidate "
                f"({', '.join(self.unit_ids[lost[:8]])}); fix their access to the road network or drop them")
        if self.capacitated:
            e_cap = 0.0 if self.existing_capacity is None else float(self.existing_capacity.sum())
            best_new = float(np.sort(self.candidate_capacity)[::-1][: self.p].sum())
            if e_cap + best_new < float(self.demand.sum()) - 1e-9:
                raise PlanningError(
                    f"total demand {self.demand.sum():g} exceeds what existing agencies ({e_cap:g}) and the {self.p} "
                    f"largest candidates ({best_new:g}) can take; raise p or the planned capacities")

    def solve(self, *, time_limit: float = 60.0, mip_gap: float = 0.0) -> "PMedian":
        """Solve with HiGHS; returns self. ``mip_gap`` is HiGHS's relative gap (0 = prove optimality)."""
        started = time.perf_counter()
        self._clear_results()
        if self.capacitated:
            return self._solve_capacitated(started, time_limit, mip_gap)
        n_cand, n_units = self.cost_matrix.shape
        cap = self.existing_best
        # Only candidates strictly closer than the nearest existing agency can change a unit's travel time.
        useful = np.isfinite(self.cost_matrix) & (self.cost_matrix < cap[None, :])
        site, unit = np.nonzero(useful)
        minutes = self.cost_matrix[site, unit]
        order = np.lexsort((minutes, unit))
        site, unit, minutes = site[order], unit[order], minutes[order]
        # one "level" per distinct (unit, minutes): z_level = 1 when the unit is not served within that time
        new_level = np.ones(len(unit), bool)
        new_level[1:] = (unit[1:] != unit[:-1]) | (minutes[1:] != minutes[:-1])
        level = np.cumsum(new_level) - 1
        n_level = int(level[-1]) + 1 if len(level) else 0
        level_unit = unit[new_level]
        level_min = minutes[new_level]
        first = np.ones(n_level, bool)
        first[1:] = level_unit[1:] != level_unit[:-1]
        last = np.ones(n_level, bool)
        last[:-1] = level_unit[1:] != level_unit[:-1]
        next_min = np.empty(n_level)
        next_min[:-1] = level_min[1:]
        next_min[last] = cap[level_unit[last]]
        step = next_min - level_min
        d = self.demand
        # cost_i = D_1 + Σ_k (D_{k+1} − D_k) z_k; when no existing agency reaches the unit the last step is
        # infinite, so its z is fixed at 0 (some candidate must serve the unit)
        z_cost = np.where(np.isfinite(step), d[level_unit] * np.where(np.isfinite(step), step, 0.0), 0.0)
        z_upper = np.where(np.isfinite(step), 1.0, 0.0)
        offset = float(np.sum(d[level_unit[first]] * level_min[first]))
        no_levels = np.ones(n_units, bool)
        no_levels[level_unit] = False
        offset += float(np.sum(d[no_levels] * cap[no_levels]))
        n_col = n_cand + n_level
        # row per level: z_k − z_{k−1} + Σ_{j at D_k} x_j ≥ 0 (z_0 ≡ 1 moves to the right-hand side as 1)
        prev_rows = np.flatnonzero(~first)
        rows = sp.csr_matrix(
            (np.concatenate([np.ones(len(site)), np.ones(n_level), -np.ones(len(prev_rows))]),
             (np.concatenate([level, np.arange(n_level), prev_rows]),
              np.concatenate([site, n_cand + np.arange(n_level), n_cand + prev_rows - 1]))),
            shape=(n_level, n_col))
        row_lower = np.where(first, 1.0, 0.0)
        side, side_lo, side_up = self._side_rows(n_col)
        outcome = _solve_mip(
            cost=np.concatenate([np.zeros(n_cand), z_cost]),
            col_lower=np.zeros(n_col), col_upper=np.concatenate([np.ones(n_cand), z_upper]),
            integer=np.arange(n_col) < n_cand,
            rows=sp.vstack([rows] + side, format="csr"),
            row_lower=np.concatenate([row_lower, np.asarray(side_lo, float)]),
            row_upper=np.concatenate([np.full(n_level, np.inf), np.asarray(side_up, float)]),
            maximize=False, time_limit=time_limit, mip_gap=mip_gap,
            infeasible_message=(f"with p={self.p} new sites some unit reachable only by candidates stays unserved; "
                                "raise p or add candidates near the units no existing agency reaches"),
            start=self._greedy_start(n_cand, level_unit, level_min) if not self.min_new_by_group
            and self.budget is None else None,
        )
        chosen = np.flatnonzero(outcome.values[:n_cand] > 0.5)
        best = np.minimum(cap, self.cost_matrix[chosen].min(axis=0)) if len(chosen) else cap
        objective = float(np.sum(d * best))
        self._finish(chosen, started, objective=objective, gap=outcome.mip_gap, status=outcome.status)
        self.mean_travel_min = objective / float(d.sum()) if d.sum() > 0 else float("nan")
        return self

    def _greedy_start(self, n_cand: int, level_unit: np.ndarray, level_min: np.ndarray) -> np.ndarray:
        """The greedy scale-up's sites as a full start vector (x, then each level's "not served yet" flag)."""
        greedy = Greedy(self.cost_matrix, goal="median", p=self.p, demand=self.demand,
                        existing_matrix=self.existing_matrix).solve()
        chosen = list(greedy.selected)
        if len(chosen) < self.p:  # the scale-up stopped early: fill up to p with any other candidates
            rest = np.setdiff1d(np.arange(n_cand), chosen)[: self.p - len(chosen)]
            chosen += rest.tolist()
        x = np.zeros(n_cand)
        x[chosen] = 1.0
        best = self.cost_matrix[chosen].min(axis=0)
        return np.concatenate([x, (best[level_unit] > level_min).astype(np.float64)])

    def _solve_capacitated(self, started: float, time_limit: float, mip_gap: float) -> "PMedian":
        n_cand = self.cost_matrix.shape[0]
        cj, ci = np.nonzero(np.isfinite(self.cost_matrix))
        ej, ei = np.nonzero(np.isfinite(self.existing_matrix))
        units = np.flatnonzero(self.demand > 0)
        n_col, rows, lower, upper, pairs = self._capacitated_flow(cj=cj, ci=ci, ej=ej, ei=ei, units=units)
        site, unit = pairs
        minutes = np.where(site >= 0, self.cost_matrix[np.maximum(site, 0), unit],
                           self.existing_matrix[np.maximum(-1 - site, 0), unit] if len(self.existing_ids) else 0.0)
        lower[0] = np.ones(len(units))  # every unit's demand is served in full
        side, side_lo, side_up = self._side_rows(n_col)
        outcome = _solve_mip(
            cost=np.concatenate([np.zeros(n_cand), self.demand[unit] * minutes]),
            col_lower=np.zeros(n_col), col_upper=np.ones(n_col), integer=np.arange(n_col) < n_cand,
            rows=sp.vstack(rows + side, format="csr"),
            row_lower=np.concatenate(lower + [np.asarray(side_lo, float)]),
            row_upper=np.concatenate(upper + [np.asarray(side_up, float)]),
            maximize=False, time_limit=time_limit, mip_gap=mip_gap,
            infeasible_message=(f"no choice of {self.p} new sites serves all demand within capacity; raise p or the "
                                "planned capacities"),
        )
        chosen = np.flatnonzero(outcome.values[:n_cand] > 0.5)
        self._read_flow(outcome.values, pairs)
        self._finish(chosen, started, objective=outcome.objective, gap=outcome.mip_gap, status=outcome.status)
        self.mean_travel_min = outcome.objective / float(self.demand.sum()) if self.demand.sum() > 0 else np.nan
        return self


class Greedy(_SitingModel):
    """AccessMod-style scale-up: repeatedly add the candidate with the greatest marginal gain.

    Parameters
    ----------
    cost_matrix : array-like, shape (candidates, units)
    goal : {"coverage", "median", "cover_all"}
        ``coverage``: gain = demand newly within ``threshold_min`` (compare with :class:`MCLP`);
        ``median``: gain = reduction of demand-weighted minutes (compare with :class:`PMedian`);
        ``cover_all``: gain = number of units newly within ``threshold_min``, until every reachable unit is covered
        (compare with :class:`LSCP`).
    p : int, optional
        Number of sites to add (required unless ``goal="cover_all"``). The scale-up stops early when no candidate
        adds anything.
    threshold_min : float, optional
        Required for the coverage goals.
    demand, existing_matrix, candidate_ids, unit_ids, existing_ids
        As for :class:`MCLP`.

    Attributes (after :meth:`solve`)
    ---------------------------------
    selected (in the order added), selected_ids, objective (in the matching exact model's terms), gains, status,
    solve_time_s, unit_coverage, assignment. ``mip_gap`` is NaN: a heuristic proves nothing.
    """

    name = "Greedy"

    def __init__(self, cost_matrix, *, goal: str = "coverage", p: int | None = None,
                 threshold_min: float | None = None, **options):
        problems = []
        if goal not in ("coverage", "median", "cover_all"):
            problems.append(Problem(f"goal must be 'coverage', 'median' or 'cover_all', got {goal!r}", column="goal"))
        if goal in ("coverage", "cover_all") and threshold_min is None:
            problems.append(Problem(f"goal={goal!r} needs threshold_min", column="threshold_min"))
        if goal != "cover_all" and p is None:
            problems.append(Problem(f"goal={goal!r} needs p", column="p"))
        for unsupported in ("candidate_capacity", "existing_capacity", "budget", "min_new_by_group"):
            if options.get(unsupported) is not None:
                problems.append(Problem(f"the greedy heuristic does not take {unsupported}; use the exact models",
                                        column=unsupported))
        if problems:
            raise InputError("Greedy inputs cannot be used", problems)
        self.goal = goal
        self._threshold_optional = goal == "median"
        super().__init__(cost_matrix, p=p, threshold_min=threshold_min, **options)
        self.gains: list[float] = []

    def solve(self, *, time_limit: float | None = None) -> "Greedy":
        """Run the scale-up; returns self. ``time_limit`` is accepted for symmetry and ignored (it is fast)."""
        started = time.perf_counter()
        self._clear_results()
        self.gains = []
        d = self.demand
        n_cand = self.cost_matrix.shape[0]
        chosen: list[int] = []
        available = np.ones(n_cand, bool)
        if self.goal == "median":
            best = self.existing_best.copy()
            # units nobody reaches yet weigh as if just beyond the worst finite time, so reaching them pays most
            finite = np.concatenate([self.cost_matrix[np.isfinite(self.cost_matrix)], best[np.isfinite(best)]])
            penalty = 10.0 * (float(finite.max()) + 1.0)
            best = np.where(np.isfinite(best), best, penalty)
            times = np.where(np.isfinite(self.cost_matrix), self.cost_matrix, penalty)
            for _ in range(self.p):
                gain = np.maximum(best[None, :] - times, 0.0) @ d
                gain[~available] = -1.0
                j = int(np.argmax(gain))
                if gain[j] <= 0:
                    break
                chosen.append(j)
                available[j] = False
                self.gains.append(float(gain[j]))
                best = np.minimum(best, times[j])
            final = np.minimum(self.existing_best, self.cost_matrix[chosen].min(axis=0)) if chosen \
                else self.existing_best
            objective = float(np.sum(d * final))
        else:
            cover = sp.csr_matrix(self.cost_matrix <= self.threshold_min, dtype=np.float64)
            uncovered = ~(self.existing_best <= self.threshold_min)
            weight = d if self.goal == "coverage" else np.ones_like(d)
            limit = self.p if self.p is not None else n_cand
            for _ in range(limit):
                gain = cover @ (weight * uncovered)
                gain[~available] = -1.0
                j = int(np.argmax(gain))
                if gain[j] <= 0:
                    break
                chosen.append(j)
                available[j] = False
                self.gains.append(float(gain[j]))
                uncovered &= ~(self.cost_matrix[j] <= self.threshold_min)
            if self.goal == "coverage":
                objective = float(d[~uncovered].sum())
            else:
                if uncovered.any() and self.p is None:
                    lost = np.flatnonzero(uncovered)
                    raise PlanningError(
                        f"{len(lost)} units cannot be brought within {self.threshold_min:g} min by any candidate "
                        f"({', '.join(self.unit_ids[lost[:8]])}); raise the threshold or add candidates")
                objective = float(len(chosen))
        order = np.asarray(chosen, dtype=np.int64)
        self._finish(order, started, objective=objective, gap=float("nan"), status="heuristic")
        self.selected = order  # keep the order of addition: it is the scale-up's ranking
        self.selected_ids = self.candidate_ids[order].tolist()
        return self
