"""Coverage: who is within reach of the nearest active agency, at each travel-time threshold.

:class:`CoverageModel` is built once from a :class:`geo.traveltime.TravelMatrix` (agencies × units minutes)
and the agencies and units frames. Building it aligns the matrix to both frames and checks every input.
:meth:`CoverageModel.solve` then takes, per care type, the minimum over the *active* agencies' rows
(``geo.schema.ACTIVE_STATUSES``), and the overall nearest as the minimum of those per-type minima.

Everything interactive is a cheap numpy reduction over those arrays; no shortest path is ever recomputed:

* a threshold change (:meth:`CoverageModel.table`, :meth:`CoverageModel.uncovered_units`) only compares the
  per-unit minima with the new thresholds and sums weights with one small matrix product;
* toggling one agency (:meth:`CoverageModel.toggle`) recomputes only the minimum over the rows of that
  agency's care type, and reuses the other care types' minima unchanged.

Shares are of units, of population and of LTCI ``demand``; a unit is covered at threshold *t* when its travel
time to the nearest active agency is ``<= t`` minutes. Per care type, a unit is covered when an active agency
*of that type* is within reach; per township, by any active agency.

Exports (:func:`coverage_to_xlsx`, :func:`coverage_to_gpkg`) write the tables and the units with their metrics
to a path and return the file's bytes for a download button.
"""

from __future__ import annotations

import tempfile
from io import BytesIO
from pathlib import Path
from typing import Iterable

import geopandas as gpd
import numpy as np
import pandas as pd

from geo import settings
from geo.errors import InputError, Problem
from geo.schema import ACTIVE_STATUSES, CARE_TYPES, CRS, STATUSES
from geo.traveltime import TravelMatrix

#: Measures reported per threshold: (column prefix, weight).
MEASURES: tuple[str, ...] = ("units", "population", "demand")

TABLE_COLUMNS: tuple[str, ...] = (
    "scope", "group", "threshold_min",
    "units_total", "units_covered", "share_units",
    "population_total", "population_covered", "share_population",
    "demand_total", "demand_covered", "share_demand",
)


def _threshold_label(minutes: float) -> str:
    return f"{float(minutes):g}"


def _as_thresholds(thresholds: Iterable[float] | None) -> np.ndarray:
    values = np.asarray(list(settings.coverage_thresholds_min if thresholds is None else thresholds), dtype=float)
    problems = []
    if values.size == 0:
        problems.append(Problem("give at least one threshold", column="thresholds"))
    for v in values:
        if not np.isfinite(v) or v <= 0:
            problems.append(Problem(f"threshold must be a positive number of minutes, got {v!r}",
                                    column="thresholds", value=v))
    if problems:
        raise InputError("invalid coverage thresholds", problems)
    return values


def _sum_rows(mask: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``mask @ weights`` for a few mask rows, without BLAS.

    A (4 × 30,000) · (30,000 × 21) product is a few milliseconds in a plain loop, but multithreaded BLAS can take
    seconds on it when the machine is busy (measured 1.5–3 s on 2 loaded cores); einsum without ``optimize``
    never calls BLAS.
    """
    return np.einsum("tu,um->tm", mask, weights, optimize=False)


class CoverageModel:
    """Coverage of planning units by the nearest active agency, recomputed cheaply after every change.

    Parameters
    ----------
    matrix : geo.traveltime.TravelMatrix
        Agencies × units minutes (``inf`` = unreachable). Extra rows or columns not in the frames are ignored.
    units : GeoDataFrame
        ``unit_id``, ``population``, ``demand``, optionally ``name`` and ``township`` (the units contract).
    agencies : GeoDataFrame
        ``agency_id``, ``care_type``, ``status``, optionally ``name``.
    active_agency_ids : iterable of str, optional
        The agencies counted as supply. Defaults to those whose ``status`` is in ``geo.schema.ACTIVE_STATUSES``.

    Attributes
    ----------
    nearest_minutes : numpy.ndarray
        Per unit, minutes to the nearest active agency (``inf`` when none is reachable). Set by :meth:`solve`.
    nearest_agency_id : numpy.ndarray
        Per unit, that agency's id (``""`` when none).
    minutes_by_care_type : dict[str, numpy.ndarray]
        Per care type, minutes to the nearest active agency of that type.
    message : str
        A plain statement of anything a planner must know (no active agency, a care type without agencies,
        units no active agency can reach); ``""`` when there is nothing to say.
    """

    def __init__(self, matrix: TravelMatrix, units: gpd.GeoDataFrame, agencies: pd.DataFrame, *,
                 active_agency_ids: Iterable[str] | None = None):
        self._validate(matrix, units, agencies)
        self.units = units.reset_index(drop=True)
        self.agencies = agencies.reset_index(drop=True)
        self.unit_ids = self.units["unit_id"].astype(str).to_numpy()
        self.agency_ids = self.agencies["agency_id"].astype(str).to_numpy()
        aligned = matrix.subset(agency_ids=self.agency_ids, unit_ids=self.unit_ids).minutes
        self._minutes = np.where(np.isnan(aligned), np.inf, aligned).astype(np.float32)
        self._care_type = self.agencies["care_type"].astype(str).to_numpy()
        self._type_rows = {t: np.flatnonzero(self._care_type == t) for t in CARE_TYPES}
        self._agency_names = (self.agencies["name"].astype(str).to_numpy() if "name" in self.agencies
                              else self.agency_ids)
        self._unit_names = (self.units["name"].astype(str).to_numpy(dtype=object) if "name" in self.units
                            else self.unit_ids)
        self._precompute_weights()
        if active_agency_ids is None:
            self.active = self.agencies["status"].isin(ACTIVE_STATUSES).to_numpy()
        else:
            self.active = self._active_mask(active_agency_ids)
        self.minutes_by_care_type: dict[str, np.ndarray] = {}
        self._nearest_row_by_type: dict[str, np.ndarray] = {}
        self.nearest_minutes: np.ndarray | None = None
        self.nearest_agency_id: np.ndarray | None = None
        self.message = ""

    # ------------------------------------------------------------------------------------------- checks
    @staticmethod
    def _validate(matrix: TravelMatrix, units, agencies) -> None:
        problems: list[Problem] = []
        if not isinstance(matrix, TravelMatrix):
            raise InputError("coverage needs a geo.traveltime.TravelMatrix",
                             [Problem(f"got {type(matrix).__name__}", code="matrix_type")])
        for col in ("unit_id", "population", "demand"):
            if col not in units.columns:
                problems.append(Problem(f"units need a {col!r} column", column=col, code="missing_column"))
        for col in ("agency_id", "care_type", "status"):
            if col not in agencies.columns:
                problems.append(Problem(f"agencies need a {col!r} column", column=col, code="missing_column"))
        if problems:
            raise InputError("coverage inputs are missing columns", problems)
        unit_ids = units["unit_id"].astype(str)
        for i in np.flatnonzero(unit_ids.duplicated().to_numpy()):
            problems.append(Problem("duplicate unit_id", row=int(i) + 1, column="unit_id", value=unit_ids.iloc[i]))
        agency_ids = agencies["agency_id"].astype(str)
        for i in np.flatnonzero(agency_ids.duplicated().to_numpy()):
            problems.append(Problem("duplicate agency_id", row=int(i) + 1, column="agency_id",
                                    value=agency_ids.iloc[i]))
        for col in ("population", "demand"):
            values = pd.to_numeric(units[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            for i in np.flatnonzero(~np.isfinite(values) | (values < 0)):
                problems.append(Problem(f"{col} must be a number ≥ 0", row=int(i) + 1, column=col,
                                        value=units[col].iloc[i]))
        for i, t in enumerate(agencies["care_type"].astype(str)):
            if t not in CARE_TYPES:
                problems.append(Problem(f"care_type must be one of {CARE_TYPES}", row=i + 1, column="care_type", value=t))
        for i, s in enumerate(agencies["status"].astype(str)):
            if s not in STATUSES:
                problems.append(Problem(f"status must be one of {STATUSES}", row=i + 1, column="status", value=s))
        in_matrix_units = set(matrix.unit_ids.tolist())
        missing_units = [u for u in unit_ids if u not in in_matrix_units]
        if missing_units:
            problems.append(Problem(f"{len(missing_units)} units are not in the travel matrix (e.g. "
                                    f"{missing_units[:3]}); recompute the matrix for these units",
                                    column="unit_id", code="unit_not_in_matrix"))
        in_matrix_agencies = set(matrix.agency_ids.tolist())
        missing_agencies = [a for a in agency_ids if a not in in_matrix_agencies]
        if missing_agencies:
            problems.append(Problem(f"{len(missing_agencies)} agencies are not in the travel matrix (e.g. "
                                    f"{missing_agencies[:3]}); recompute the matrix for these agencies",
                                    column="agency_id", code="agency_not_in_matrix"))
        if matrix.minutes.size and np.nanmin(matrix.minutes) < 0:
            problems.append(Problem("travel matrix has negative minutes", code="negative_minutes"))
        if problems:
            raise InputError("coverage inputs cannot be used", problems)

    def _active_mask(self, agency_ids: Iterable[str]) -> np.ndarray:
        wanted = {str(a) for a in agency_ids}
        unknown = sorted(wanted - set(self.agency_ids.tolist()))
        if unknown:
            raise InputError("unknown agencies in the active set",
                             [Problem("agency_id not among the agencies", column="agency_id", value=a) for a in unknown])
        return np.isin(self.agency_ids, list(wanted))

    def _precompute_weights(self) -> None:
        population = pd.to_numeric(self.units["population"]).to_numpy(dtype=float)
        demand = pd.to_numeric(self.units["demand"]).to_numpy(dtype=float)
        # one column per measure: the covered totals at every threshold are then one matrix product
        self._weights = np.column_stack([np.ones(len(self.units)), population, demand])
        townships = (self.units["township"].fillna("").astype(str) if "township" in self.units
                     else pd.Series([""] * len(self.units)))
        codes, self._townships = pd.factorize(townships, sort=True)
        self._townships = np.asarray(self._townships, dtype=object)
        self._unit_township = self._townships[codes] if len(codes) else np.array([], dtype=object)
        onehot = np.zeros((len(self.units), len(self._townships)))
        onehot[np.arange(len(self.units)), codes] = 1.0
        # (units × townships·measures): column k·3+m is measure m restricted to township k
        self._township_weights = (onehot[:, :, None] * self._weights[:, None, :]).reshape(len(self.units), -1)

    # ------------------------------------------------------------------------------------------- solving
    def _solve_care_type(self, care_type: str) -> None:
        rows = self._type_rows[care_type]
        rows = rows[self.active[rows]]
        n = len(self.unit_ids)
        if rows.size == 0:
            self.minutes_by_care_type[care_type] = np.full(n, np.inf, dtype=np.float32)
            self._nearest_row_by_type[care_type] = np.full(n, -1, dtype=np.int64)
            return
        block = self._minutes[rows]
        best = block.argmin(axis=0)
        minutes = block[best, np.arange(n)]
        self.minutes_by_care_type[care_type] = minutes
        self._nearest_row_by_type[care_type] = np.where(np.isfinite(minutes), rows[best], -1)

    def _combine(self) -> None:
        stacked = np.vstack([self.minutes_by_care_type[t] for t in CARE_TYPES])
        rows = np.vstack([self._nearest_row_by_type[t] for t in CARE_TYPES])
        which = stacked.argmin(axis=0)
        cols = np.arange(stacked.shape[1])
        self.nearest_minutes = stacked[which, cols]
        self._nearest_row = rows[which, cols]
        ids = np.append(self.agency_ids, "")
        self.nearest_agency_id = ids[self._nearest_row]  # row -1 picks the trailing ""
        self._compose_message()

    def _compose_message(self) -> None:
        n_active = int(self.active.sum())
        if n_active == 0:
            total = self._weights.sum(axis=0)
            self.message = (f"No active agency (status {' or '.join(ACTIVE_STATUSES)}): all {int(total[0]):,} units, "
                            f"{total[1]:,.0f} people and {total[2]:,.1f} LTCI demand are uncovered.")
            return
        notes = []
        missing_types = [t for t in CARE_TYPES if not self.active[self._type_rows[t]].any()]
        if missing_types:
            notes.append(f"No active {', '.join(missing_types)} agency: every unit is uncovered for that care type.")
        unreachable = ~np.isfinite(self.nearest_minutes)
        if unreachable.any():
            notes.append(f"{int(unreachable.sum()):,} units ({self._weights[unreachable, 1].sum():,.0f} people) "
                         f"cannot reach any active agency by road.")
        self.message = " ".join(notes)

    def solve(self) -> "CoverageModel":
        """Compute the nearest active agency of each care type and overall, for every unit.

        Returns
        -------
        CoverageModel
            ``self``, with ``nearest_minutes``, ``nearest_agency_id``, ``minutes_by_care_type`` and ``message``.
        """
        for care_type in CARE_TYPES:
            self._solve_care_type(care_type)
        self._combine()
        return self

    def _derived(self, active: np.ndarray) -> "CoverageModel":
        clone = object.__new__(CoverageModel)
        clone.__dict__.update(self.__dict__)  # shares the (read-only) matrix and weights, no copy
        clone.active = active
        clone.minutes_by_care_type = dict(self.minutes_by_care_type)
        clone._nearest_row_by_type = dict(self._nearest_row_by_type)
        return clone

    def with_active(self, agency_ids: Iterable[str]) -> "CoverageModel":
        """A solved model where exactly ``agency_ids`` are active (this model is left unchanged)."""
        return self._derived(self._active_mask(agency_ids)).solve()

    def toggle(self, agency_id: str, *, active: bool | None = None) -> "CoverageModel":
        """A solved model with one agency switched off or on; only its care type's minimum is recomputed.

        Parameters
        ----------
        agency_id : str
        active : bool, optional
            The new state; by default the opposite of the current one.
        """
        position = np.flatnonzero(self.agency_ids == str(agency_id))
        if position.size == 0:
            raise InputError("cannot toggle an unknown agency",
                             [Problem("agency_id not among the agencies", column="agency_id", value=agency_id)])
        if self.nearest_minutes is None:
            self.solve()
        mask = self.active.copy()
        row = int(position[0])
        mask[row] = (not mask[row]) if active is None else bool(active)
        clone = self._derived(mask)
        clone._solve_care_type(self._care_type[row])
        clone._combine()
        return clone

    # ------------------------------------------------------------------------------------------- results
    def _require_solved(self) -> None:
        if self.nearest_minutes is None:
            self.solve()

    def table(self, *, thresholds: Iterable[float] | None = None) -> pd.DataFrame:
        """Coverage shares at each threshold: overall, per care type and per township.

        Parameters
        ----------
        thresholds : iterable of float, optional
            Minutes; defaults to ``geo.settings.coverage_thresholds_min``.

        Returns
        -------
        pandas.DataFrame
            Long format with :data:`TABLE_COLUMNS`: ``scope`` ∈ {overall, care_type, township}, ``group``
            (``"all"``, the care type or the township), ``threshold_min``, and for units, population and demand
            the total, the covered amount and the share (``NaN`` where the total is 0).
        """
        self._require_solved()
        th = _as_thresholds(thresholds)
        totals = self._weights.sum(axis=0)
        blocks = []

        def block(scope: str, groups: list[str], covered: np.ndarray, group_totals: np.ndarray) -> None:
            # covered: (thresholds, groups, 3); group_totals: (groups, 3)
            g, t = np.meshgrid(np.arange(len(groups)), np.arange(len(th)))
            frame = {"scope": scope, "group": np.asarray(groups, dtype=object)[g.ravel()],
                     "threshold_min": th[t.ravel()]}
            for m, name in enumerate(MEASURES):
                tot = np.broadcast_to(group_totals[:, m], covered.shape[:2]).ravel()
                cov = covered[:, :, m].ravel()
                frame[f"{name}_total"] = tot
                frame[f"{name}_covered"] = cov
                frame[f"share_{name}"] = np.divide(cov, tot, out=np.full(cov.shape, np.nan), where=tot > 0)
            blocks.append(pd.DataFrame(frame))

        within = (self.nearest_minutes[None, :] <= th[:, None]).astype(np.float64)
        block("overall", ["all"], _sum_rows(within, self._weights)[:, None, :], totals[None, :])
        by_type = np.stack([_sum_rows((self.minutes_by_care_type[t][None, :] <= th[:, None]).astype(np.float64),
                                      self._weights) for t in CARE_TYPES], axis=1)
        block("care_type", list(CARE_TYPES), by_type, np.broadcast_to(totals, (len(CARE_TYPES), 3)))
        k = len(self._townships)
        by_town = _sum_rows(within, self._township_weights).reshape(len(th), k, 3)
        block("township", list(self._townships), by_town, self._township_weights.sum(axis=0).reshape(k, 3))
        out = pd.concat(blocks, ignore_index=True)
        out["units_total"] = out["units_total"].astype(np.int64)
        out["units_covered"] = out["units_covered"].astype(np.int64)
        return out[list(TABLE_COLUMNS)]

    def uncovered_units(self, *, threshold: float | None = None) -> pd.DataFrame:
        """Units beyond ``threshold`` minutes of every active agency, the largest demand first.

        Parameters
        ----------
        threshold : float, optional
            Minutes; defaults to the largest of ``geo.settings.coverage_thresholds_min`` (units out of reach at
            every reported threshold).

        Returns
        -------
        pandas.DataFrame
            ``unit_id``, ``name``, ``township``, ``population``, ``demand``, ``nearest_minutes`` (``inf`` when no
            active agency is reachable), ``reachable``, ``nearest_agency_id`` and ``nearest_agency_name``.
        """
        self._require_solved()
        limit = float(_as_thresholds([threshold] if threshold is not None else None).max())
        rows = np.flatnonzero(~(self.nearest_minutes <= limit))
        # largest demand first, then population, then the longest trip; sorted in numpy before any frame is built
        order = np.lexsort((-self.nearest_minutes[rows].astype(float), -self._weights[rows, 1], -self._weights[rows, 2]))
        rows = rows[order]
        return pd.DataFrame({
            "unit_id": self.unit_ids[rows],
            "name": self._unit_names[rows],
            "township": self._unit_township[rows],
            "population": self._weights[rows, 1],
            "demand": self._weights[rows, 2],
            "nearest_minutes": self.nearest_minutes[rows].astype(float),
            "reachable": np.isfinite(self.nearest_minutes[rows]),
            "nearest_agency_id": self.nearest_agency_id[rows],
            "nearest_agency_name": np.append(self._agency_names, "")[self._nearest_row[rows]],
        })

    def unit_metrics(self, *, thresholds: Iterable[float] | None = None) -> gpd.GeoDataFrame:
        """The units with their coverage metrics, ready to map or export.

        Adds ``nearest_minutes``, ``nearest_agency_id``, ``minutes_<care_type>`` for each care type and a boolean
        ``covered_<t>`` per threshold.
        """
        self._require_solved()
        th = _as_thresholds(thresholds)
        out = self.units.copy()
        out["nearest_minutes"] = self.nearest_minutes.astype(float)
        out["nearest_agency_id"] = self.nearest_agency_id
        out["nearest_agency_name"] = np.append(self._agency_names, "")[self._nearest_row]
        for t in CARE_TYPES:
            out[f"minutes_{t}"] = self.minutes_by_care_type[t].astype(float)
        for t in th:
            out[f"covered_{_threshold_label(t)}"] = self.nearest_minutes <= t
        return out

    @property
    def active_agency_ids(self) -> np.ndarray:
        """Ids of the agencies counted as supply."""
        return self.agency_ids[self.active]


# ----------------------------------------------------------------------------------------------- export
def _finite_for_export(frame: pd.DataFrame) -> pd.DataFrame:
    """Excel has no infinity: unreachable minutes become blank, with ``reachable`` saying why."""
    out = frame.copy()
    for col in out.columns:
        if col != "geometry" and pd.api.types.is_float_dtype(out[col]):
            values = out[col].to_numpy(dtype=float)
            if np.isinf(values).any():
                out[col] = np.where(np.isinf(values), np.nan, values)
    if "nearest_minutes" in frame.columns and "reachable" not in out.columns:
        out["reachable"] = np.isfinite(frame["nearest_minutes"].to_numpy(dtype=float))
    return out


def _units_with_metrics(model: CoverageModel, thresholds, accessibility) -> gpd.GeoDataFrame:
    units = model.unit_metrics(thresholds=thresholds)
    if accessibility is not None:
        scores = accessibility.unit_scores()
        units = units.merge(scores.drop(columns=[c for c in ("demand", "population") if c in scores]),
                            on="unit_id", how="left", validate="1:1")
    return units


def coverage_to_xlsx(model: CoverageModel, *, thresholds: Iterable[float] | None = None,
                     uncovered_threshold: float | None = None, accessibility=None,
                     path: str | Path | None = None) -> bytes:
    """Write the coverage tables and the units with their metrics to an Excel workbook.

    Sheets: ``coverage`` (the long table), ``uncovered`` (sorted by demand), ``units`` (metrics, no geometry,
    with ``rep_lon``/``rep_lat`` where present), ``accessibility`` per agency when an
    :class:`planning.accessibility.AccessibilityModel` is given, and ``notes`` (the model's message).

    Returns
    -------
    bytes
        The workbook, also written to ``path`` when given.
    """
    buffer = BytesIO()
    units = _units_with_metrics(model, thresholds, accessibility)
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        model.table(thresholds=thresholds).to_excel(writer, sheet_name="coverage", index=False)
        _finite_for_export(model.uncovered_units(threshold=uncovered_threshold)).to_excel(
            writer, sheet_name="uncovered", index=False)
        _finite_for_export(pd.DataFrame(units.drop(columns="geometry", errors="ignore"))).to_excel(
            writer, sheet_name="units", index=False)
        if accessibility is not None:
            accessibility.agency_ratios().to_excel(writer, sheet_name="accessibility", index=False)
        pd.DataFrame({"note": [model.message or "All inputs used; nothing to report."]}).to_excel(
            writer, sheet_name="notes", index=False)
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def coverage_to_gpkg(model: CoverageModel, *, thresholds: Iterable[float] | None = None, accessibility=None,
                     path: str | Path | None = None) -> bytes:
    """Write the units with their coverage (and accessibility) metrics and the agencies to a GeoPackage.

    Layers: ``units`` (polygons, EPSG:4326), ``agencies`` (points, with an ``active`` flag) when the agencies
    frame has geometry, and ``coverage`` (the long table, no geometry).

    Returns
    -------
    bytes
        The GeoPackage file, also written to ``path`` when given.
    """
    import pyogrio

    units = gpd.GeoDataFrame(_finite_for_export(_units_with_metrics(model, thresholds, accessibility)),
                             geometry="geometry", crs=model.units.crs or CRS)
    for col in units.columns:  # GPKG has no boolean-object mix; keep types plain
        if units[col].dtype == bool:
            units[col] = units[col].astype(np.int8)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "coverage.gpkg"
        pyogrio.write_dataframe(units, target, layer="units", driver="GPKG")
        if isinstance(model.agencies, gpd.GeoDataFrame) and model.agencies.geometry is not None:
            agencies = model.agencies.copy()
            agencies["active"] = model.active.astype(np.int8)
            for col in agencies.columns:
                if agencies[col].dtype == bool:
                    agencies[col] = agencies[col].astype(np.int8)
            pyogrio.write_dataframe(agencies, target, layer="agencies", driver="GPKG", append=False)
        table = model.table(thresholds=thresholds)
        pyogrio.write_dataframe(table, target, layer="coverage", driver="GPKG")
        data = target.read_bytes()
    if path is not None:
        Path(path).write_bytes(data)
    return data
