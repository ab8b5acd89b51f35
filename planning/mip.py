"""Mixed-integer programmes passed whole as arrays, solved by HiGHS or by Google OR-Tools' CP-SAT.

Both wrappers take the same column-wise description (costs, column bounds, integrality, a sparse matrix and row
bounds), accept a partial start, can take extra rows between solves, and return a :class:`MipResult` holding the
best feasible solution found within the time limit, its objective, the proven bound and the relative gap.

Why two solvers. HiGHS is the default MIP solver. The allocation models with contiguity
(``planning.allocation``) are 0-1 assignment models with ordered-contiguity implications and lumpy capacity
knapsacks: their LP relaxation is weak (about 11% below the optimum on the demo region), so LP-based branch and
bound spends most of its time proving. CP-SAT combines an LP bound with clause learning over the implications
and a portfolio of search workers, and proves such models several times faster: on the demo region's full model
(1,190 candidate pairs) HiGHS needs about 19 s and SCIP 21 s, CP-SAT about 3 s on two cores
(``bench/districts.py`` runs both). Where the LP is tight HiGHS wins instead: allocation without contiguity
(CP-SAT still 1.3% from optimal after 60 s on the demo, HiGHS optimal in 5 s), allocation on grids whose LP
relaxation is nearly integral (HiGHS up to 2 times faster), the p-median-style operating districts, and large
models (thousands of pairs). Each model picks with its ``solver="auto"`` (the allocation looks at how many
units its LP relaxation splits); :func:`make_mip` takes the name it picked.

CP-SAT works on integers, so :class:`CpSatMip` solves the model in fixed point: continuous columns in steps of
``1 / scale`` (default 1e-6), fractional row coefficients and the objective scaled by ``scale``. Row coefficients
are rounded outwards on each finite side (all columns are non-negative), so every plan it returns satisfies the
floating-point rows. The objective reported is the plan's floating-point cost; bound and gap come from the
fixed-point model (they differ from floating point by less than 1e-6 relative on the allocation models).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: Solver names the planning models accept; ``"auto"`` lets the model pick (see the module notes).
SOLVERS: tuple[str, ...] = ("auto", "highs", "cpsat")
#: Models with more columns than this go to HiGHS under ``"auto"``.
CPSAT_MAX_COLUMNS = 4000
#: Upper bound given to unbounded continuous columns in CP-SAT (in units of ``1 / scale``).
_CPSAT_BIG = 2 ** 40
_banner_lock = threading.Lock()
_banner_silenced = False


def new_highs():
    """A ``highspy.Highs`` with output off.

    HiGHS prints its banner on the C-level stdout when a process makes its first instance, before any option can
    be set; on the command line that line would precede the JSON result. The first instance is therefore made
    with file descriptor 1 pointed at /dev/null (C buffers flushed before it is restored).
    """
    global _banner_silenced
    import ctypes

    import highspy

    with _banner_lock:
        if _banner_silenced:
            h = highspy.Highs()
        else:
            sys.stdout.flush()
            libc = ctypes.CDLL(None)
            saved = os.dup(1)
            try:
                with open(os.devnull, "w") as null:
                    os.dup2(null.fileno(), 1)
                    h = highspy.Highs()
                    libc.fflush(None)
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            _banner_silenced = True
    h.setOptionValue("output_flag", False)
    return h


@dataclass
class MipResult:
    """What a solver run returned: status text, solution vector, objective, bound, gap and wall time.

    ``status`` uses HiGHS's words for both solvers (\"Optimal\", \"Infeasible\", \"Time limit reached\").
    """

    status: str
    values: np.ndarray | None
    objective: float
    bound: float
    gap: float
    solve_s: float
    feasible: bool


class HighsMip:
    """One MIP held by a HiGHS instance: passed whole (column-wise arrays), solvable again after adding rows.

    ``solve()`` returns the best feasible solution found within the time limit with its relative gap.
    """

    name = "HiGHS"

    def __init__(self, cost, lower, upper, integer, matrix, row_lower, row_upper, *, mip_rel_gap: float,
                 threads: int | None = None, maximize: bool = False):
        import highspy

        self._hs = highspy
        a = sp.csc_matrix(matrix)
        a.sort_indices()
        lp = highspy.HighsLp()
        lp.num_col_ = int(a.shape[1])
        lp.num_row_ = int(a.shape[0])
        lp.col_cost_ = np.asarray(cost, dtype=np.float64)
        lp.col_lower_ = np.asarray(lower, dtype=np.float64)
        lp.col_upper_ = np.asarray(upper, dtype=np.float64)
        lp.row_lower_ = np.asarray(row_lower, dtype=np.float64)
        lp.row_upper_ = np.asarray(row_upper, dtype=np.float64)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr.astype(np.int32)
        lp.a_matrix_.index_ = a.indices.astype(np.int32)
        lp.a_matrix_.value_ = a.data.astype(np.float64)
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                           for i in np.asarray(integer, dtype=bool)]
        if maximize:
            lp.sense_ = highspy.ObjSense.kMaximize
        h = new_highs()
        h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
        h.setOptionValue("random_seed", 0)
        if threads:
            h.setOptionValue("threads", int(threads))
        h.passModel(lp)
        self.highs = h
        self.mip_rel_gap = float(mip_rel_gap)
        self.n_col = int(a.shape[1])

    def add_rows(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, lower: np.ndarray,
                 upper: np.ndarray) -> None:
        """Append rows given as COO triples (row numbers local to the new block), all at once."""
        m = sp.csr_matrix((vals, (rows, cols)), shape=(len(lower), self.n_col))
        m.sort_indices()
        self.highs.addRows(len(lower), np.asarray(lower, np.float64), np.asarray(upper, np.float64), int(m.nnz),
                           m.indptr[:-1].astype(np.int32), m.indices.astype(np.int32), m.data.astype(np.float64))

    def solve(self, *, time_limit_s: float, start: np.ndarray | None = None,
              start_columns: np.ndarray | None = None) -> MipResult:
        """Run HiGHS; ``start`` seeds an incumbent (values of ``start_columns`` only, HiGHS completes the rest)."""
        hs, h = self._hs, self.highs
        h.setOptionValue("time_limit", max(float(time_limit_s), 0.1))
        if start is not None:
            cols = np.arange(self.n_col) if start_columns is None else np.asarray(start_columns)
            h.setSolution(len(cols), cols.astype(np.int32), np.asarray(start, dtype=np.float64))
        t0 = time.perf_counter()
        h.run()
        elapsed = time.perf_counter() - t0
        status = h.getModelStatus()
        info = h.getInfo()
        feasible = info.primal_solution_status == 2
        values = np.asarray(h.getSolution().col_value, dtype=np.float64) if feasible else None
        gap = float(info.mip_gap) if feasible else float("inf")
        if status == hs.HighsModelStatus.kOptimal and feasible:
            gap = max(0.0, min(gap, self.mip_rel_gap))
        return MipResult(h.modelStatusToString(status), values,
                         float(info.objective_function_value) if feasible else float("nan"),
                         float(info.mip_dual_bound), gap, elapsed, feasible)


class CpSatMip:
    """One MIP held as a CP-SAT model in fixed point (see the module notes); same interface as :class:`HighsMip`.

    Parameters
    ----------
    cost, lower, upper, integer, matrix, row_lower, row_upper
        The model, column-wise as for :class:`HighsMip`. Column lower bounds must be ≥ 0.
    mip_rel_gap : float
        Stop when the relative gap is at most this.
    threads : int, optional
        CP-SAT search workers; default ``max(4, cores)`` capped at 8 (its portfolio gains from several workers
        even on two cores).
    scale : float
        Fixed-point resolution: continuous values in steps of ``1 / scale``.
    """

    name = "CP-SAT"

    def __init__(self, cost, lower, upper, integer, matrix, row_lower, row_upper, *, mip_rel_gap: float,
                 threads: int | None = None, scale: float = 1e6):
        self.cost = np.asarray(cost, dtype=np.float64)
        self.lower = np.asarray(lower, dtype=np.float64)
        self.upper = np.asarray(upper, dtype=np.float64)
        self.integer = np.asarray(integer, dtype=bool)
        if (self.lower < 0).any():
            raise ValueError("CpSatMip needs columns with lower bounds ≥ 0")
        self.matrix = sp.csr_matrix(matrix)
        self.row_lower = np.asarray(row_lower, dtype=np.float64)
        self.row_upper = np.asarray(row_upper, dtype=np.float64)
        self.mip_rel_gap = float(mip_rel_gap)
        self.threads = int(threads) if threads else min(8, max(4, os.cpu_count() or 1))
        self.scale = float(scale)
        self.n_col = int(self.matrix.shape[1])
        # A column's value is var × unit: integers count as is, continuous columns in steps of 1 / scale.
        self.unit = np.where(self.integer, 1.0, 1.0 / self.scale)

    def add_rows(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, lower: np.ndarray,
                 upper: np.ndarray) -> None:
        """Append rows given as COO triples (row numbers local to the new block); used by the next solve."""
        block = sp.csr_matrix((vals, (rows, cols)), shape=(len(lower), self.n_col))
        self.matrix = sp.vstack([self.matrix, block]).tocsr()
        self.row_lower = np.concatenate([self.row_lower, np.asarray(lower, np.float64)])
        self.row_upper = np.concatenate([self.row_upper, np.asarray(upper, np.float64)])

    def _model(self):
        from ortools.sat.python import cp_model

        model = cp_model.CpModel()
        proto = model.proto
        s = self.scale
        lo = np.where(self.integer, np.ceil(self.lower - 1e-9), np.ceil(self.lower * s - 1e-9))
        hi = np.where(self.integer, np.floor(self.upper + 1e-9),
                      np.floor(np.minimum(self.upper * s, _CPSAT_BIG) + 1e-9))
        for a, b in zip(lo.astype(np.int64).tolist(), hi.astype(np.int64).tolist()):
            proto.variables.add().domain.extend([a, b])
        m = self.matrix
        m.sort_indices()
        for i in range(m.shape[0]):
            idx = m.indices[m.indptr[i]:m.indptr[i + 1]]
            raw = m.data[m.indptr[i]:m.indptr[i + 1]] * self.unit[idx]
            r_lo, r_hi = self.row_lower[i], self.row_upper[i]
            exact = np.all(np.abs(raw - np.round(raw)) < 1e-9) and all(
                not np.isfinite(b) or abs(b - round(b)) < 1e-9 for b in (r_lo, r_hi))
            factor = 1.0 if exact else s
            scaled = raw * factor
            sides = []
            if exact:
                sides.append((np.round(scaled), r_lo, r_hi))
            else:
                # Outward rounding per side keeps fixed-point solutions feasible in floating point.
                if np.isfinite(r_hi):
                    sides.append((np.ceil(scaled - 1e-9), -np.inf, r_hi))
                if np.isfinite(r_lo):
                    sides.append((np.floor(scaled + 1e-9), r_lo, np.inf))
            for coef, b_lo, b_hi in sides:
                c = proto.constraints.add()
                c.linear.vars.extend(idx.tolist())
                c.linear.coeffs.extend(coef.astype(np.int64).tolist())
                low = int(np.ceil(b_lo * factor - 1e-9)) if np.isfinite(b_lo) else -(2 ** 62)
                high = int(np.floor(b_hi * factor + 1e-9)) if np.isfinite(b_hi) else 2 ** 62
                c.linear.domain.extend([low, high])
        obj = np.round(self.cost * self.unit * s).astype(np.int64)
        nz = np.flatnonzero(obj)
        proto.objective.vars.extend(nz.tolist())
        proto.objective.coeffs.extend(obj[nz].tolist())
        return model

    def solve(self, *, time_limit_s: float, start: np.ndarray | None = None,
              start_columns: np.ndarray | None = None) -> MipResult:
        """Run CP-SAT; ``start`` is a hint for the values of ``start_columns`` (all columns by default)."""
        from ortools.sat.python import cp_model

        model = self._model()
        if start is not None:
            cols = np.arange(self.n_col) if start_columns is None else np.asarray(start_columns)
            hint = np.round(np.asarray(start, dtype=np.float64) / self.unit[cols]).astype(np.int64)
            model.proto.solution_hint.vars.extend(cols.tolist())
            model.proto.solution_hint.values.extend(hint.tolist())
        solver = cp_model.CpSolver()
        params = solver.parameters
        params.num_workers = self.threads
        params.max_time_in_seconds = max(float(time_limit_s), 0.1)
        # Run to a zero gap: stopping at the tolerance would let the parallel workers return a different plan
        # within it from run to run. A plan stopped by the time limit within the tolerance still counts as optimal.
        params.relative_gap_limit = 0.0
        params.random_seed = 0
        t0 = time.perf_counter()
        code = solver.solve(model)
        elapsed = time.perf_counter() - t0
        name = solver.status_name(code)
        if name == "MODEL_INVALID":
            raise ValueError(f"CP-SAT rejected the model: {model.validate()}")
        feasible = name in ("OPTIMAL", "FEASIBLE")
        status = {"OPTIMAL": "Optimal", "INFEASIBLE": "Infeasible"}.get(name, "Time limit reached")
        if not feasible:
            return MipResult(status, None, float("nan"), float("nan"), float("inf"), elapsed, False)
        values = np.asarray(solver.response_proto.solution, dtype=np.float64) * self.unit
        scaled_obj = solver.objective_value
        scaled_bound = solver.best_objective_bound
        gap = max(0.0, (scaled_obj - scaled_bound) / max(abs(scaled_obj), 1e-9))
        if gap <= self.mip_rel_gap:
            status = "Optimal"
        return MipResult(status, values, float(self.cost @ values), scaled_bound / self.scale, gap, elapsed, True)


def make_mip(cost, lower, upper, integer, matrix, row_lower, row_upper, *, mip_rel_gap: float,
             solver: str = "highs", threads: int | None = None):
    """A :class:`HighsMip` (``solver="highs"``) or a :class:`CpSatMip` (``"cpsat"``) holding the model."""
    if solver not in ("highs", "cpsat"):
        raise ValueError(f"solver must be 'highs' or 'cpsat', not {solver!r}")
    cls = CpSatMip if solver == "cpsat" else HighsMip
    return cls(cost, lower, upper, integer, matrix, row_lower, row_upper, mip_rel_gap=mip_rel_gap, threads=threads)
