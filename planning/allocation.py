"""District allocation (分片包干): every planning unit goes to exactly one active care agency.

The model is an exact mixed-integer programme solved by CP-SAT (small models with contiguity whose LP bound is
weak) or HiGHS (the rest), through :mod:`planning.mip`:

* ``x[a, u]`` is 1 when agency ``a`` serves unit ``u``; every unit that some agency can serve is served by
  exactly one. Suspended agencies keep the units they held in the previous plan and get no new ones;
  terminated agencies get nothing.
* The objective is demand-weighted travel time plus weighted terms for Yuyao's principles
  (:class:`AllocationWeights`): a volunteering bonus on preferred units, a merit term that lets the better
  agency win contested units, a penalty when an agency holding urban units takes less than its share of
  mountain demand (or a hard rule), and a move penalty against a previous plan (used by re-plans).
* Capacity (certified caregivers × clients per caregiver where no capacity is given), an optional
  load-balance band around each agency's share of capacity, an optional travel cap, locks and forbidden
  pairs.
* Contiguity: each agency's zone grows from its root, its own unit (the unit containing its door, or the
  nearest unit). When several agencies share an own unit, merit decides: the higher quality score keeps it
  and the others are rooted at their nearest free unit. A root is optional (an agency may end with no
  units) but nothing else can be held without it. Small models use single-commodity flows (every unit of a
  zone consumes one unit of flow that travels only through the zone); large ones (more than
  ``flow_max_pairs`` candidate pairs) use connectivity cuts added round by round, each round seeded with a
  contiguous plan (zones grown greedily from the roots, or a fix-and-solve on the flow model) whose
  objective against the round's bound gives the reported gap.

**Candidate pruning.** A pair ``(a, u)`` exists only when ``u`` is reachable within the travel cap, not
forbidden, among the ``candidates_k`` nearest agencies of ``u`` (plus locks, preferences, roots and the
previous plan's pairs), and connected to ``a``'s root through other candidates of ``a``. Pruning never
makes the model falsely infeasible: units left without a candidate get a wider set, a capacity max-flow
check on the pruned set widens it before solving, and an infeasible MIP on a pruned set is re-solved on the
full set before anything is reported.

**Island exception rule.** A unit whose adjacency component holds no active agency's own unit (an island,
an exclave, a unit with no neighbours) cannot be reached by any zone through borders. Such units are
*contiguity-exempt*: they are assigned on travel time and capacity like any unit, carry no flow, and are
listed in :attr:`AllocationModel.islands` and in their per-unit ``note``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, shortest_path, maximum_flow

from geo import settings
from geo.errors import InputError, PlanningError, Problem
from geo.schema import ACTIVE_STATUSES, STATUSES

from planning.adjacency import UnitAdjacency, build_adjacency
from planning.mip import CPSAT_MAX_COLUMNS, SOLVERS, HighsMip, MipResult, make_mip

MOUNTAIN_RULES: tuple[str, ...] = ("soft", "hard", "off")
#: ``solver="auto"`` uses CP-SAT when the LP relaxation splits more than this share of the units (see
#: :meth:`AllocationModel._pick_solver`).
LP_SPLIT_SHARE = 0.3
RELAXABLE: tuple[str, ...] = ("mountain rule", "load-balance band", "locks", "contiguity", "travel cap", "capacity")


@dataclass
class AllocationWeights:
    """Objective weights, all in minutes of travel per unit of demand so they compare with travel time.

    Attributes
    ----------
    travel : float
        Weight of demand-weighted travel time.
    volunteer_bonus_min : float
        Bonus for giving an agency a unit it volunteered for (志愿).
    merit_min : float
        Cost gap between quality score 0 and 100 (择优): the better agency wins contested units.
    mountain_penalty_min : float
        Soft urban + mountain rule: penalty per unit of mountain demand an urban-holding agency is short of.
    mountain_share : float
        Fraction of its proportional share of mountain demand an urban-holding agency must take: an agency
        with urban demand ``U_a`` takes at least ``mountain_share × U_a × (mountain demand / urban demand)``.
    move_penalty_min : float
        Stability against the previous plan: cost of moving one unit, in minutes for an average unit.
    unit_floor : float
        Every unit weighs at least this share of the mean demand, so zero-demand units still go near.
    """

    travel: float = 1.0
    volunteer_bonus_min: float = 5.0
    merit_min: float = 3.0
    mountain_penalty_min: float = 30.0
    mountain_share: float = 0.5
    move_penalty_min: float = 0.0
    unit_floor: float = 0.01


def locate_own_units(units, agencies, *, outside_tolerance_m: float = 5000.0) -> tuple[np.ndarray, np.ndarray]:
    """Position of each agency's own unit: the unit containing its point, else the nearest unit.

    Returns
    -------
    own : np.ndarray of int
        Unit position per agency row (-1 where the agency has no point).
    distance_m : np.ndarray of float
        Distance from the agency point to that unit (0 inside it; ``nan`` without a point).
    """
    import geopandas as gpd

    metric_crs = units.estimate_utm_crs() if units.crs.is_geographic else units.crs
    u = gpd.GeoDataFrame({"upos": np.arange(len(units))}, geometry=units.geometry.to_crs(metric_crs).values,
                         crs=metric_crs)
    pts = agencies.geometry.to_crs(metric_crs)
    has = ~(pts.isna() | pts.is_empty).to_numpy()
    own = np.full(len(agencies), -1, dtype=np.int64)
    dist = np.full(len(agencies), np.nan)
    if has.any():
        a = gpd.GeoDataFrame({"apos": np.flatnonzero(has)}, geometry=pts.values[has], crs=metric_crs)
        joined = gpd.sjoin_nearest(a, u, how="left", distance_col="dist_m")
        # A point on a shared border matches both units: keep the first (lowest unit position).
        joined = joined.sort_values(["apos", "dist_m", "upos"]).drop_duplicates("apos")
        own[joined["apos"].to_numpy()] = joined["upos"].to_numpy()
        dist[joined["apos"].to_numpy()] = joined["dist_m"].to_numpy()
    return own, dist


def agency_capacity(agencies, *, clients_per_caregiver: float | None = None) -> np.ndarray:
    """Capacity per agency: the ``capacity`` column, else certified caregivers × clients per caregiver."""
    cpc = settings.clients_per_caregiver if clients_per_caregiver is None else float(clients_per_caregiver)
    cap = pd.to_numeric(agencies["capacity"], errors="coerce") if "capacity" in agencies else \
        pd.Series(np.nan, index=agencies.index)
    care = pd.to_numeric(agencies["certified_caregivers"], errors="coerce") if "certified_caregivers" in agencies \
        else pd.Series(np.nan, index=agencies.index)
    return cap.fillna(care * cpc).to_numpy(dtype=float)


def count_contiguity_violations(owner: np.ndarray, adjacency: sp.csr_matrix, roots: dict[int, int],
                                exempt: np.ndarray | None = None) -> int:
    """Units cut off from their agency's root (or from the zone's largest part where the root is elsewhere).

    ``owner`` holds an agency position per unit (-1 unassigned); exempt units (islands) never count.
    """
    exempt = np.zeros(len(owner), dtype=bool) if exempt is None else exempt
    bad = 0
    for a in np.unique(owner[owner >= 0]):
        members = np.flatnonzero((owner == a) & ~exempt)
        if len(members) <= 1:
            continue
        n_comp, labels = connected_components(adjacency[members][:, members], directed=False)
        if n_comp == 1:
            continue
        root = roots.get(int(a), -1)
        where = np.flatnonzero(members == root)
        keep = labels[where[0]] if len(where) else np.bincount(labels).argmax()
        bad += int((labels != keep).sum())
    return bad


class AllocationModel:
    """Assign planning units to care agencies (分片包干) with an exact MIP (CP-SAT or HiGHS).

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Planning units (``unit_id``, ``demand``, ``population``, ``setting``, ``township``, polygons).
    agencies : geopandas.GeoDataFrame
        Agencies (``agency_id``, ``status``, ``capacity`` and/or ``certified_caregivers``,
        ``quality_score``, ``leading``, points).
    matrix : geo.traveltime.TravelMatrix
        Agencies × units minutes (``inf`` unreachable). Must cover every unit and every non-terminated agency.
    adjacency : UnitAdjacency, optional
        Unit adjacency; built from the polygons (rook) when omitted.
    weights : AllocationWeights, optional
    travel_cap_min : float, optional
        No unit further than this from its agency (locks excepted).
    balance_band : float, optional
        Each active agency's load/capacity stays within ``(1 ± band) ×`` the overall demand/capacity ratio.
    contiguity : bool
        Enforce connected zones rooted at each agency's own unit.
    mountain_rule : str
        ``"soft"`` (penalty), ``"hard"`` (constraint) or ``"off"``.
    locks : dict, optional
        ``unit_id → agency_id`` that must hold.
    forbidden : iterable of (agency_id, unit_id), optional
    preferences : dict, optional
        ``agency_id → [unit_id, ...]`` the agency volunteered for.
    pairs : dict or "auto", optional
        ``ordinary agency_id → leading agency_id`` backup links (领办); ``"auto"`` pairs every ordinary active
        agency with the nearest leading one.
    previous : dict or Plan, optional
        The previous assignment ``unit_id → agency_id``: suspended agencies keep these units and the move
        penalty counts units that change agency.
    suspended : iterable of agency_id, optional
        Agencies to treat as suspended in addition to those whose status says so.
    clients_per_caregiver : float, optional
        Default ``geo.settings.clients_per_caregiver``.
    candidates_k : int
        Nearest agencies kept per unit before widening, when the model is large.
    prune_above_pairs : int
        Candidate pairs are pruned to the ``candidates_k`` nearest agencies only when the full set has more pairs
        than this; smaller models are solved whole, so their optimum is the optimum over every agency.
    solver : str
        ``"auto"`` (CP-SAT for small models with contiguity and a weak LP bound, HiGHS for the rest; see
        :meth:`_pick_solver`), ``"highs"`` or ``"cpsat"``.
    time_limit_s, mip_rel_gap : float
        Solver limits; the best feasible plan found is returned with its gap.
    outside_tolerance_m : float
        Agencies farther than this from every unit are refused as outside the region.
    """

    def __init__(
        self,
        units,
        agencies,
        matrix,
        *,
        adjacency: UnitAdjacency | None = None,
        weights: AllocationWeights | None = None,
        travel_cap_min: float | None = None,
        balance_band: float | None = None,
        contiguity: bool = True,
        mountain_rule: str = "soft",
        locks: dict | None = None,
        forbidden=None,
        preferences: dict | None = None,
        pairs: dict | str | None = None,
        previous=None,
        suspended=None,
        clients_per_caregiver: float | None = None,
        candidates_k: int = 4,
        time_limit_s: float = 60.0,
        mip_rel_gap: float = 1e-4,
        outside_tolerance_m: float = 5000.0,
        contiguity_method: str = "auto",
        flow_max_pairs: int = 3000,
        threads: int | None = None,
        solver: str = "auto",
        prune_above_pairs: int = 2000,
    ):
        self.weights = weights or AllocationWeights()
        self.travel_cap_min = travel_cap_min
        self.balance_band = balance_band
        self.contiguity = contiguity
        self.mountain_rule = mountain_rule
        self.candidates_k = int(candidates_k)
        self.time_limit_s = float(time_limit_s)
        self.mip_rel_gap = float(mip_rel_gap)
        self.threads = threads
        self.contiguity_method = contiguity_method
        self.flow_max_pairs = int(flow_max_pairs)
        self.solver = solver
        self.prune_above_pairs = int(prune_above_pairs)
        self.clients_per_caregiver = clients_per_caregiver
        if previous is not None and hasattr(previous, "assignment"):
            previous = previous.assignment
        self._raw = dict(locks=dict(locks or {}), forbidden=list(forbidden or []),
                         preferences={str(k): [str(u) for u in v] for k, v in (preferences or {}).items()},
                         pairs=pairs, previous={str(k): (None if v is None else str(v))
                                                for k, v in (previous or {}).items()},
                         suspended=[str(s) for s in (suspended or [])])
        self._validate(units, agencies, matrix, adjacency, outside_tolerance_m)
        self.status = "not solved"
        self.root_notes: dict[int, str] = {}
        self.objective = float("nan")
        self.mip_gap = float("nan")
        self.solve_time = 0.0

    # ------------------------------------------------------------------ inputs
    def _validate(self, units, agencies, matrix, adjacency, outside_tolerance_m) -> None:
        problems: list[Problem] = []
        for col in ("unit_id", "demand"):
            if col not in units.columns:
                problems.append(Problem(f"units have no {col!r} column", column=col))
        for col in ("agency_id", "status"):
            if col not in agencies.columns:
                problems.append(Problem(f"agencies have no {col!r} column", column=col))
        if "capacity" not in agencies.columns and "certified_caregivers" not in agencies.columns:
            problems.append(Problem("agencies need a 'capacity' or 'certified_caregivers' column", column="capacity"))
        if self.mountain_rule not in MOUNTAIN_RULES:
            problems.append(Problem(f"mountain_rule must be one of {MOUNTAIN_RULES}", value=self.mountain_rule))
        if self.balance_band is not None and not (0 <= self.balance_band):
            problems.append(Problem("balance_band must be ≥ 0", value=self.balance_band))
        if self.travel_cap_min is not None and not (self.travel_cap_min > 0):
            problems.append(Problem("travel_cap_min must be > 0 minutes", value=self.travel_cap_min))
        if self.contiguity_method not in ("auto", "flow", "cuts"):
            problems.append(Problem("contiguity_method must be 'auto', 'flow' or 'cuts'", value=self.contiguity_method))
        if self.solver not in SOLVERS:
            problems.append(Problem(f"solver must be one of {SOLVERS}", value=self.solver))
        if self.candidates_k < 1:
            problems.append(Problem("candidates_k must be ≥ 1", value=self.candidates_k))
        for name, value in asdict(self.weights).items():
            if not np.isfinite(value) or value < 0:
                problems.append(Problem(f"weight {name} must be a finite number ≥ 0", value=value))
        if problems:
            raise InputError("cannot build the allocation model", problems)

        uid = units["unit_id"].astype(str).to_numpy()
        aid = agencies["agency_id"].astype(str).to_numpy()
        for ids, what in ((uid, "unit"), (aid, "agency")):
            for row in np.flatnonzero(pd.Series(ids).duplicated(keep=False).to_numpy()):
                problems.append(Problem(f"duplicate {what} id", row=int(row) + 1, value=ids[row]))
        demand = pd.to_numeric(units["demand"], errors="coerce").to_numpy(dtype=float)
        for row in np.flatnonzero(~np.isfinite(demand) | (demand < 0)):
            problems.append(Problem("demand must be a number ≥ 0", row=int(row) + 1, column="demand",
                                    value=units["demand"].iloc[row]))
        status = agencies["status"].astype(str).str.strip().str.lower().to_numpy()
        for row in np.flatnonzero(~np.isin(status, STATUSES)):
            problems.append(Problem(f"status must be one of {STATUSES}", row=int(row) + 1, column="status",
                                    value=agencies["status"].iloc[row]))
        status = np.where(np.isin(aid, self._raw["suspended"]) & (status != "terminated"), "suspended", status)
        cap = agency_capacity(agencies, clients_per_caregiver=self.clients_per_caregiver)
        live = status != "terminated"
        for row in np.flatnonzero(live & (~np.isfinite(cap) | (cap < 0))):
            problems.append(Problem("capacity unknown: give capacity or certified_caregivers (≥ 0)",
                                    row=int(row) + 1, column="capacity", value=agencies.get("capacity", pd.Series(
                                        [None] * len(agencies))).iloc[row]))
        # Matrix coverage: every unit, and every agency that may hold units.
        m_units = {u: i for i, u in enumerate(matrix.unit_ids)}
        m_ag = {a: i for i, a in enumerate(matrix.agency_ids)}
        miss_u = [u for u in uid if u not in m_units]
        if miss_u:
            problems.append(Problem(f"{len(miss_u)} units are missing from the travel matrix, e.g. {miss_u[:3]}",
                                    column="unit_id"))
        miss_a = [a for a, s in zip(aid, status) if s != "terminated" and a not in m_ag]
        if miss_a:
            problems.append(Problem(f"{len(miss_a)} agencies are missing from the travel matrix, e.g. {miss_a[:3]}",
                                    column="agency_id"))
        if adjacency is not None and set(adjacency.unit_ids) != set(uid):
            problems.append(Problem("the adjacency does not cover exactly the units given"))
        own, own_dist = locate_own_units(units, agencies, outside_tolerance_m=outside_tolerance_m)
        for row in np.flatnonzero(live & (own < 0)):
            problems.append(Problem("agency has no location", row=int(row) + 1, column="geometry", value=aid[row]))
        for row in np.flatnonzero(live & (own_dist > outside_tolerance_m)):
            problems.append(Problem(f"agency lies {own_dist[row] / 1000:.1f} km outside the region (more than "
                                    f"{outside_tolerance_m / 1000:g} km from every unit); fix its coordinates or "
                                    "mark it terminated", row=int(row) + 1, column="geometry", value=aid[row]))
        uset, aset = set(uid), set(aid)
        locks = {str(k): str(v) for k, v in self._raw["locks"].items()}
        for u, a in locks.items():
            if u not in uset:
                problems.append(Problem(f"lock names unknown unit {u!r}", column="locks", value=u))
            if a not in aset:
                problems.append(Problem(f"lock names unknown agency {a!r}", column="locks", value=a))
        forbidden = set()
        for pair in self._raw["forbidden"]:
            a, u = (str(pair[0]), str(pair[1]))
            if a not in aset or u not in uset:
                problems.append(Problem(f"forbidden pair ({a}, {u}) names an unknown agency or unit",
                                        column="forbidden", value=(a, u)))
            forbidden.add((a, u))
        for u, a in locks.items():
            if (a, u) in forbidden:
                problems.append(Problem(f"unit {u} is both locked to and forbidden for agency {a}",
                                        column="locks", value=(u, a)))
        for a, us in self._raw["preferences"].items():
            bad = [u for u in us if u not in uset]
            if a not in aset or bad:
                problems.append(Problem(f"preferences of {a!r} name unknown agency or units {bad[:3]}",
                                        column="preferences", value=a))
        pairs = self._raw["pairs"]
        if isinstance(pairs, dict):
            for o, lead in pairs.items():
                if str(o) not in aset or str(lead) not in aset:
                    problems.append(Problem(f"pair {o!r} → {lead!r} names an unknown agency", column="pairs"))
        elif pairs not in (None, "auto"):
            problems.append(Problem("pairs must be a dict ordinary → leading agency id, 'auto' or None",
                                    column="pairs", value=pairs))
        for u, a in self._raw["previous"].items():
            if u not in uset or (a is not None and a not in aset):
                problems.append(Problem(f"previous plan names unknown unit {u!r} or agency {a!r}", column="previous"))
        if problems:
            raise InputError("cannot build the allocation model", problems)

        apos = {a: i for i, a in enumerate(aid)}
        upos = {u: i for i, u in enumerate(uid)}
        for u, a in locks.items():
            s = status[apos[a]]
            if s == "terminated":
                problems.append(Problem(f"unit {u} is locked to terminated agency {a}", column="locks"))
            elif s == "suspended" and self._raw["previous"].get(u) != a:
                problems.append(Problem(f"unit {u} is locked to suspended agency {a}, which takes no new units",
                                        column="locks"))
        if problems:
            raise InputError("cannot build the allocation model", problems)

        self.units = units
        self.agencies = agencies
        self.unit_ids = uid
        self.agency_ids = aid
        self.demand = demand
        self.population = pd.to_numeric(units.get("population", pd.Series(0.0, index=units.index)),
                                        errors="coerce").fillna(0.0).to_numpy(dtype=float)
        self.setting = units.get("setting", pd.Series("rural", index=units.index)).astype(str).to_numpy()
        self.township = units.get("township", pd.Series("", index=units.index)).astype(str).to_numpy()
        self.agency_status = status
        self.capacity = np.where(live, cap, 0.0)
        q = pd.to_numeric(agencies.get("quality_score", pd.Series(np.nan, index=agencies.index)), errors="coerce")
        self.quality = q.fillna(q.median() if q.notna().any() else 50.0).clip(0, 100).to_numpy(dtype=float)
        self.leading = agencies.get("leading", pd.Series(False, index=agencies.index)).fillna(False).astype(bool) \
            .to_numpy()
        self.agency_names = agencies.get("name", pd.Series(aid, index=agencies.index)).astype(str).to_numpy()
        t = np.full((len(aid), len(uid)), np.inf)
        rows = np.array([m_ag.get(a, -1) for a in aid])
        cols = np.array([m_units[u] for u in uid])
        t[rows >= 0] = matrix.minutes[np.ix_(rows[rows >= 0], cols)]
        t[~np.isfinite(t)] = np.inf
        self.minutes = t
        self.own_unit = own
        self.own_distance_m = own_dist
        if adjacency is None:
            adjacency = build_adjacency(units)
        self.adjacency = adjacency.reorder(uid)
        self._apos, self._upos = apos, upos
        self.locks = {upos[u]: apos[a] for u, a in locks.items()}
        self.forbidden = {(apos[a], upos[u]) for a, u in forbidden}
        self.preferences = {(apos[a], upos[u]) for a, us in self._raw["preferences"].items() for u in us}
        self.previous = np.full(len(uid), -1, dtype=np.int64)
        for u, a in self._raw["previous"].items():
            if a is not None:
                self.previous[upos[u]] = apos[a]
        self.eligible = np.isin(status, ACTIVE_STATUSES)
        self.pairs = self._resolve_pairs(pairs)
        # Agencies just outside every unit (a border town) keep the nearest unit as their own, with a warning.
        self.warnings = [f"agency {aid[a]} lies {own_dist[a]:.0f} m outside the units; its own unit is the nearest, "
                         f"{uid[own[a]]}" for a in np.flatnonzero(live & (own_dist > 1.0))]

    def _resolve_pairs(self, pairs) -> dict[int, int]:
        if pairs is None:
            return {}
        if pairs == "auto":
            leads = np.flatnonzero(self.eligible & self.leading)
            out = {}
            for a in np.flatnonzero(self.eligible & ~self.leading):
                if len(leads):
                    t = self.minutes[leads, self.own_unit[a]]
                    if np.isfinite(t).any():
                        out[int(a)] = int(leads[np.argmin(t)])
            return out
        return {self._apos[str(o)]: self._apos[str(lead)] for o, lead in pairs.items()}

    # ------------------------------------------------------------------ candidates
    def _fixed_units(self, relax: set) -> np.ndarray:
        """Agency position each unit is fixed to (locks, suspended agencies' kept units), else -1."""
        fixed = np.full(len(self.unit_ids), -1, dtype=np.int64)
        keep = (self.previous >= 0)
        keep &= np.isin(self.agency_status[np.maximum(self.previous, 0)], ["suspended"])
        fixed[keep] = self.previous[keep]
        if "locks" not in relax:
            for u, a in self.locks.items():
                fixed[u] = a
        return fixed

    def _base_pairs(self, fixed: np.ndarray, relax: set) -> np.ndarray:
        t = self.minutes
        base = np.isfinite(t) & self.eligible[:, None]
        if self.travel_cap_min is not None and "travel cap" not in relax:
            base &= t <= self.travel_cap_min
        for a, u in self.forbidden:
            base[a, u] = False
        f = np.flatnonzero(fixed >= 0)
        base[:, f] = False
        base[fixed[f], f] = True
        return base

    def _exempt_units(self) -> np.ndarray:
        labels = self.adjacency.components()
        roots = self.own_unit[self.eligible & (self.own_unit >= 0)]
        rooted = np.zeros(labels.max() + 1 if len(labels) else 0, dtype=bool)
        rooted[labels[roots]] = True
        return ~rooted[labels]

    def _roots(self, base: np.ndarray, fixed: np.ndarray) -> tuple[dict[int, int], list[int]]:
        """Root unit per active agency: its own unit, unless a better agency already holds that (merit: higher
        quality score first); then its nearest unit that it may serve, fits its capacity and is nobody's
        root. Agencies with no such unit get no units (noted). A root is where a zone must grow from, not a
        unit the agency must take: an agency may end with no units. Returns (roots, agencies choosing a root)."""
        roots: dict[int, int] = {}
        taken = np.zeros(len(self.unit_ids), dtype=bool)
        order = sorted(np.flatnonzero(self.eligible), key=lambda a: (-self.quality[a], self.agency_ids[a]))
        for a in order:
            ok = base[a] & (self.demand <= self.capacity[a] + 1e-9) & ~taken & ((fixed < 0) | (fixed == a))
            if not ok.any():
                self.root_notes[int(a)] = "no unit it may serve fits its capacity: it gets no units"
                continue
            own = self.own_unit[a]
            if ok[own]:
                u = own
            else:
                u = int(np.argmin(np.where(ok, self.minutes[a], np.inf)))
                self.root_notes[int(a)] = (f"own unit {self.unit_ids[own]} goes to a higher-quality agency or "
                                           f"does not fit; rooted at {self.unit_ids[u]}")
            roots[int(a)] = int(u)
            taken[u] = True
        return roots, []

    def _prune_connected(self, cand: np.ndarray, fixed_root: dict[int, int], exempt: np.ndarray,
                         fixed: np.ndarray) -> np.ndarray:
        out = cand.copy()
        adj = self.adjacency.matrix
        for a, root in fixed_root.items():
            members = np.flatnonzero(cand[a] & ~exempt)
            if len(members) == 0:
                continue
            _, labels = connected_components(adj[members][:, members], directed=False)
            root_label = labels[np.searchsorted(members, root)]
            drop = members[labels != root_label]
            drop = drop[fixed[drop] != a]  # locks stay; an unreachable lock is diagnosed, not hidden
            out[a, drop] = False
        return out

    def _candidates(self, base: np.ndarray, fixed: np.ndarray, fixed_root: dict[int, int], exempt: np.ndarray,
                    k: int | None) -> np.ndarray:
        n_a, n_u = base.shape
        use_contiguity = self.contiguity
        if use_contiguity:
            rootless = self.eligible.copy()
            rootless[list(fixed_root)] = False
            base = base.copy()
            base[rootless] = base[rootless] & (fixed[None, :] == np.flatnonzero(rootless)[:, None])
        full = self._prune_connected(base, fixed_root, exempt, fixed) if use_contiguity else base
        if k is None or k >= n_a:
            return full
        t = np.where(base, self.minutes, np.inf)
        k_unit = np.full(n_u, k)
        extras = np.zeros_like(base)
        for a, u in self.preferences:
            extras[a, u] = True
        for a, u in fixed_root.items():
            extras[a, u] = True
        prev = np.flatnonzero(self.previous >= 0)
        extras[self.previous[prev], prev] = True
        extras &= base
        order = np.argsort(t, axis=0, kind="stable")
        rank = np.empty_like(order)
        rank[order, np.arange(n_u)[None, :]] = np.arange(n_a)[:, None]
        adj = self.adjacency.matrix
        for _ in range(8):
            cand = (base & (rank < k_unit[None, :])) | extras
            cand = self._prune_connected(cand, fixed_root, exempt, fixed) if use_contiguity else cand
            starving = (cand.sum(axis=0) == 0) & (full.sum(axis=0) > 0)
            if not starving.any():
                return cand
            # Widen the starving units and their neighbours: the path to a root runs through them.
            ring = starving | (adj @ starving.astype(np.int64) > 0)
            k_unit[ring] = np.minimum(k_unit[ring] * 2, n_a)
        return full

    def _capacity_flow_violation(self, cand: np.ndarray, fixed: np.ndarray, relax: set):
        """Hall violator of the transport relaxation (capacity + candidates, no contiguity), or None.

        Max-flow source → units (demand) → agencies (candidates) → sink (capacity); when the flow falls short,
        the units still reachable from the source in the residual graph need more demand than the
        agencies they can reach can hold.
        """
        if "capacity" in relax:
            return None
        scale = 100.0
        kept_by_inactive = (fixed >= 0) & ~self.eligible[np.maximum(fixed, 0)]
        units = np.flatnonzero(cand.any(axis=0) & ~kept_by_inactive)
        agencies = np.flatnonzero(cand.any(axis=1))
        if len(units) == 0:
            return None
        cap = self.capacity.copy()
        n_u, n_a = len(units), len(agencies)
        src, sink = 0, 1 + n_u + n_a
        a_index = np.full(len(self.agency_ids), -1)
        a_index[agencies] = np.arange(n_a)
        sub = cand[np.ix_(agencies, units)]
        ai, ui = np.nonzero(sub)
        d = np.ceil(self.demand[units] * scale).astype(np.int64)
        c = np.floor(np.maximum(cap[agencies], 0) * scale).astype(np.int64)
        big = int(d.sum()) + 1
        tails = np.concatenate([np.zeros(n_u, np.int64), 1 + ui, 1 + n_u + np.arange(n_a)])
        heads = np.concatenate([1 + np.arange(n_u), 1 + n_u + ai, np.full(n_a, sink)])
        caps = np.concatenate([d, np.full(len(ai), big), c])
        g = sp.csr_matrix((caps.astype(np.int32), (tails, heads)), shape=(sink + 1, sink + 1))
        res = maximum_flow(g, src, sink)
        if res.flow_value >= int(d.sum()):
            return None
        flow = res.flow.tocsr()
        residual = (g - flow).tocsr()
        residual.data = np.where(residual.data > 0, 1, 0)
        back = flow.T.tocsr()
        back.data = np.where(back.data > 0, 1, 0)
        reach = (residual + back).tocsr()
        reach.eliminate_zeros()
        from scipy.sparse.csgraph import breadth_first_order

        seen = breadth_first_order(reach, src, directed=True, return_predecessors=False)
        seen = np.asarray(seen)
        s_units = units[seen[(seen >= 1) & (seen <= n_u)] - 1]
        s_agencies = agencies[seen[(seen > n_u) & (seen < sink)] - 1 - n_u]
        return s_units, s_agencies

    def _describe_units(self, us: np.ndarray) -> str:
        settings_here = sorted(set(self.setting[us]))
        towns = sorted(set(self.township[us]) - {""})
        town_txt = ", ".join(towns[:6]) + (" …" if len(towns) > 6 else "")
        kind = f"the {settings_here[0]} " if len(settings_here) == 1 else ""
        return f"in {kind}townships {town_txt}" if towns else f"in {len(us)} {kind}units"

    # ------------------------------------------------------------------ diagnosis
    def _diagnose(self, base: np.ndarray, fixed: np.ndarray, assignable: np.ndarray, relax: set) -> None:
        free = assignable & (fixed < 0)
        if (fixed < 0).any() and not self.eligible.any():
            raise PlanningError(
                f"no active agencies: all {len(self.agency_ids)} agencies are suspended or terminated, so "
                f"{int((fixed < 0).sum())} units have no one to serve them; designate or plan an agency")
        if "capacity" in relax:
            return
        loads = np.bincount(fixed[fixed >= 0], weights=self.demand[fixed >= 0], minlength=len(self.agency_ids))
        over = [(a, loads[a]) for a in np.flatnonzero(loads > self.capacity + 1e-9)
                if self.agency_status[a] != "suspended"]
        if over and "locks" not in relax:
            a, load = over[0]
            raise PlanningError(
                f"locks contradict capacity: units locked to {self.agency_ids[a]} carry demand {load:.0f} > its "
                f"capacity {self.capacity[a]:.0f}" + (f" (and {len(over) - 1} more agencies)" if len(over) > 1 else ""))
        need = self.demand[free].sum()
        spare = np.maximum(self.capacity[self.eligible] - loads[self.eligible], 0).sum()
        if need > spare + 1e-9:
            raise PlanningError(
                f"total capacity {spare:.0f} < demand {need:.0f}: active agencies cannot hold the "
                f"{int(free.sum())} units to assign; raise capacity (caregivers) or add agencies")
        violation = self._capacity_flow_violation(base & assignable[None, :], fixed, relax)
        if violation is not None:
            us, ags = violation
            names = ", ".join(self.agency_ids[ags][:6]) or "no agency"
            raise PlanningError(
                f"total capacity {self.capacity[ags].sum() - 0:.0f} < demand {self.demand[us].sum():.0f} "
                f"{self._describe_units(us)}: its {len(us)} units can only be served by {names}"
                + (" within the travel cap" if self.travel_cap_min is not None and "travel cap" not in relax else ""))

    def _unassignable_reasons(self, full: np.ndarray, base_nocap: np.ndarray, fixed: np.ndarray) -> dict[int, str]:
        reasons = {}
        reach = np.isfinite(self.minutes) & self.eligible[:, None]
        for u in np.flatnonzero(full.sum(axis=0) == 0):
            if not reach[:, u].any():
                reasons[u] = "no active agency can reach it on the road network"
                continue
            t = np.where(reach[:, u], self.minutes[:, u], np.inf)
            a = int(np.argmin(t))
            if self.travel_cap_min is not None and t[a] > self.travel_cap_min:
                reasons[u] = (f"no agency within the travel cap of {self.travel_cap_min:g} min "
                              f"(nearest {self.agency_ids[a]} at {t[a]:.0f} min)")
            elif not base_nocap[:, u].any():
                reasons[u] = "every agency that can reach it is forbidden for this unit"
            else:
                reasons[u] = "no agency can reach it through a contiguous zone within the travel cap"
        return reasons

    # ------------------------------------------------------------------ model
    def _build(self, cand: np.ndarray, fixed: np.ndarray, fixed_root: dict[int, int], variable_root: list[int],
               exempt: np.ndarray, relax: set, mode: str | None = None) -> dict:
        w = self.weights
        n_a, n_u = cand.shape
        pa, pu = np.nonzero(cand)
        n_p = len(pa)
        pair = np.full((n_a, n_u), -1, dtype=np.int64)
        pair[pa, pu] = np.arange(n_p)
        d = self.demand
        mean_d = max(d.mean(), 1e-9) if n_u else 1.0
        weight = np.maximum(d, w.unit_floor * mean_d)
        cost = w.travel * weight[pu] * self.minutes[pa, pu]
        cost += w.merit_min * d[pu] * (1.0 - self.quality[pa] / 100.0)
        if self.preferences:
            pref = np.zeros((n_a, n_u), dtype=bool)
            for a, u in self.preferences:
                pref[a, u] = True
            cost -= w.volunteer_bonus_min * d[pu] * pref[pa, pu]
        if w.move_penalty_min > 0:
            stay = self.previous[pu] == pa
            cost -= w.move_penalty_min * mean_d * stay
        lower = np.zeros(n_p)
        upper = np.ones(n_p)
        fix = fixed[pu] == pa
        lower[fix] = 1.0
        cols_cost = [cost]
        cols_lo, cols_hi, cols_int = [lower], [upper], [np.ones(n_p, dtype=bool)]
        rows, cols, vals = [], [], []
        row_lo, row_hi = [], []
        n_row = 0
        n_col = n_p

        def add_rows(r, c, v, lo, hi):
            nonlocal n_row
            rows.append(np.asarray(r, dtype=np.int64) + n_row)
            cols.append(np.asarray(c, dtype=np.int64))
            vals.append(np.asarray(v, dtype=np.float64))
            row_lo.append(np.asarray(lo, dtype=np.float64))
            row_hi.append(np.asarray(hi, dtype=np.float64))
            n_row += len(lo)

        def add_cols(c, lo, hi, integer):
            nonlocal n_col
            start = n_col
            cols_cost.append(np.asarray(c, dtype=np.float64))
            cols_lo.append(np.asarray(lo, dtype=np.float64))
            cols_hi.append(np.asarray(hi, dtype=np.float64))
            cols_int.append(np.full(len(c), integer, dtype=bool))
            n_col += len(c)
            return start

        # Each assignable unit exactly once.
        units_here = np.flatnonzero(cand.any(axis=0))
        u_row = np.full(n_u, -1)
        u_row[units_here] = np.arange(len(units_here))
        add_rows(u_row[pu], np.arange(n_p), np.ones(n_p), np.ones(len(units_here)), np.ones(len(units_here)))

        # Capacity and the balance band, per agency that holds candidates (suspended ones keep what they have).
        agencies_here = np.flatnonzero(cand.any(axis=1) & self.eligible)
        a_row = np.full(n_a, -1)
        a_row[agencies_here] = np.arange(len(agencies_here))
        cap = self.capacity[agencies_here]
        hi = cap.copy() if "capacity" not in relax else np.full(len(agencies_here), np.inf)
        lo = np.zeros(len(agencies_here))
        if self.balance_band is not None and "load-balance band" not in relax:
            elig_demand = d[units_here].sum() - d[(fixed >= 0) & ~self.eligible[np.maximum(fixed, 0)]].sum()
            ratio = elig_demand / max(self.capacity[self.eligible].sum(), 1e-9)
            lo = np.maximum(0.0, (1 - self.balance_band) * ratio * cap)
            hi = np.minimum(hi, (1 + self.balance_band) * ratio * cap)
        sel = a_row[pa] >= 0
        add_rows(a_row[pa[sel]], np.flatnonzero(sel), d[pu[sel]], lo, hi)

        # Urban + mountain: mountain demand ≥ share × ratio × urban demand, per urban-capable agency.
        mountain_rows = None
        rule = self.mountain_rule if "mountain rule" not in relax else "off"
        urban, mountain = self.setting == "urban", self.setting == "mountain"
        tot_u, tot_m = d[urban & cand.any(axis=0)].sum(), d[mountain & cand.any(axis=0)].sum()
        if rule != "off" and tot_u > 0 and tot_m > 0 and w.mountain_share > 0:
            rho = w.mountain_share * tot_m / tot_u
            holders = np.flatnonzero(self.eligible & (cand & urban[None, :]).any(axis=1))
            h_row = np.full(n_a, -1)
            h_row[holders] = np.arange(len(holders))
            coef = np.where(mountain[pu], d[pu], 0.0) - np.where(urban[pu], rho * d[pu], 0.0)
            sel = (h_row[pa] >= 0) & (coef != 0)
            r = list(h_row[pa[sel]])
            c = list(np.flatnonzero(sel))
            v = list(coef[sel])
            if rule == "soft":
                start = add_cols(np.full(len(holders), w.mountain_penalty_min), np.zeros(len(holders)),
                                 np.full(len(holders), np.inf), False)
                r += list(range(len(holders)))
                c += list(start + np.arange(len(holders)))
                v += [1.0] * len(holders)
            add_rows(r, c, v, np.zeros(len(holders)), np.full(len(holders), np.inf))
            mountain_rows = holders

        # Contiguity: single-commodity flow per agency through its candidate units.
        if not self.contiguity or "contiguity" in relax:
            mode = "none"
        elif mode is None:
            mode = self._contiguity_mode(n_p)
        if mode != "none":
            tail_all, head_all = self.adjacency.edges()
            ok = ~exempt[tail_all] & ~exempt[head_all]
            tail_all, head_all = tail_all[ok], head_all[ok]
            var_set = set(variable_root)
            flow_agencies = [a for a in np.flatnonzero(self.eligible) if a in fixed_root or a in var_set]
            arc_tail, arc_head = [], []
            big_m = np.zeros(n_a)
            for a in flow_agencies:
                members = cand[a]
                keep = members[tail_all] & members[head_all]
                root = fixed_root.get(a, -1)
                keep &= head_all != root
                arc_tail.append(pair[a, tail_all[keep]])
                arc_head.append(pair[a, head_all[keep]])
                dem = np.sort(d[members])
                room = self.capacity[a] if "capacity" not in relax else np.inf
                fits = int(np.searchsorted(np.cumsum(dem), room + 1e-9, side="right"))
                big_m[a] = max(1, min(int(members.sum()), fits))
            arc_tail = np.concatenate(arc_tail) if arc_tail else np.zeros(0, np.int64)
            arc_head = np.concatenate(arc_head) if arc_head else np.zeros(0, np.int64)
            n_arc = len(arc_tail)
            is_flow_agency = np.zeros(n_a, dtype=bool)
            is_flow_agency[flow_agencies] = True
            root_pair = np.zeros(n_p, dtype=bool)
            for a, u in fixed_root.items():
                root_pair[pair[a, u]] = True
            # Every non-root, non-exempt pair of a contiguity agency consumes one unit of flow.
            flow_pair = is_flow_agency[pa] & ~exempt[pu] & ~root_pair
            fp = np.flatnonzero(flow_pair)
            # Neighbour cut (valid, tightens the weak flow relaxation and seeds the cut loop): a non-root
            # unit of a fixed-root zone has a neighbour in the same zone, x[a,u] ≤ Σ_{v∈N(u)} x[a,v].
            fixed_flow = np.flatnonzero(flow_pair & np.isin(pa, list(fixed_root)))
            nb_row = np.full(n_p, -1)
            nb_row[fixed_flow] = np.arange(len(fixed_flow))
            arc_ok = nb_row[arc_head] >= 0
            nb_r = np.concatenate([nb_row[arc_head[arc_ok]], np.arange(len(fixed_flow))])
            nb_c = np.concatenate([arc_tail[arc_ok], fixed_flow])
            nb_v = np.concatenate([-np.ones(int(arc_ok.sum())), np.ones(len(fixed_flow))])
            add_rows(nb_r, nb_c, nb_v, np.full(len(fixed_flow), -np.inf), np.zeros(len(fixed_flow)))
        order = None
        if mode == "ordered":
            # Ordered contiguity (after Zoltners & Sinha's shortest-path rule): a non-root unit may join agency
            # a's zone only if a neighbour nearer to the root is in the zone too,
            # x[a,u] ≤ Σ_{v∈N(u), key(a,v)<key(a,u)} x[a,v]. Following nearer neighbours always ends at the root,
            # so every zone is connected, and the LP is far tighter than the flow model's. "Nearer" is the number
            # of unit borders from the root within the agency's candidate units, then travel time: plain travel
            # time would leave dead ends in mountain valleys, where a unit's neighbours lie across a ridge.
            order = self._order_keys(cand, fixed_root, exempt)
            key = order[pa, pu].copy()
            key[root_pair] = -np.inf
            o_row = np.full(n_p, -1)
            o_row[fp] = np.arange(len(fp))
            closer = (key[arc_tail] < key[arc_head]) & (o_row[arc_head] >= 0)
            add_rows(np.concatenate([np.arange(len(fp)), o_row[arc_head[closer]]]),
                     np.concatenate([fp, arc_tail[closer]]),
                     np.concatenate([np.ones(len(fp)), -np.ones(int(closer.sum()))]),
                     np.full(len(fp), -np.inf), np.zeros(len(fp)))
            # Every chain ends at the root, so a zone holds its root whenever it holds anything:
            # x[a,u] ≤ x[a,root]. Implied for integers, but it lifts the LP bound markedly.
            root_of = np.full(n_a, -1)
            for a, root in fixed_root.items():
                if pair[a, root] >= 0:
                    root_of[a] = pair[a, root]
            held = fp[root_of[pa[fp]] >= 0]
            add_rows(np.concatenate([np.arange(len(held)), np.arange(len(held))]),
                     np.concatenate([held, root_of[pa[held]]]),
                     np.concatenate([np.ones(len(held)), -np.ones(len(held))]),
                     np.full(len(held), -np.inf), np.zeros(len(held)))
        if mode == "flow":
            f0 = add_cols(np.zeros(n_arc), np.zeros(n_arc), np.full(n_arc, np.inf), False)
            f_row = np.full(n_p, -1)
            f_row[fp] = np.arange(len(fp))
            n_f = len(fp)
            arcs = np.arange(n_arc) + f0
            # Conservation: inflow − outflow − x (+ supply at a chosen root) = 0.
            r_in = f_row[arc_head]
            r_out = f_row[arc_tail]
            sel_out = r_out >= 0
            cons_r = np.concatenate([r_in, r_out[sel_out], np.arange(n_f)])
            cons_c = np.concatenate([arcs, arcs[sel_out], fp])
            cons_v = np.concatenate([np.ones(n_arc), -np.ones(int(sel_out.sum())), -np.ones(n_f)])
            if variable_root:
                vr = np.flatnonzero(np.isin(pa, variable_root) & flow_pair)
                s0 = add_cols(np.zeros(len(vr)), np.zeros(len(vr)), np.full(len(vr), np.inf), False)
                cons_r = np.concatenate([cons_r, f_row[vr]])
                cons_c = np.concatenate([cons_c, s0 + np.arange(len(vr))])
                cons_v = np.concatenate([cons_v, np.ones(len(vr))])
            add_rows(cons_r, cons_c, cons_v, np.zeros(n_f), np.zeros(n_f))
            # Flow enters only units the agency holds: inflow ≤ M·x.
            in_r = np.concatenate([r_in, np.arange(n_f)])
            in_c = np.concatenate([arcs, fp])
            in_v = np.concatenate([np.ones(n_arc), -big_m[pa[fp]]])
            add_rows(in_r, in_c, in_v, np.full(n_f, -np.inf), np.zeros(n_f))
            # The root is optional (an agency may end up with no units) but a zone only grows from it:
            # outflow(root) ≤ M·x[a, root].
            rp = np.flatnonzero(root_pair)
            rp_row = np.full(n_p, -1)
            rp_row[rp] = np.arange(len(rp))
            from_root = rp_row[arc_tail] >= 0
            add_rows(np.concatenate([rp_row[arc_tail[from_root]], np.arange(len(rp))]),
                     np.concatenate([arcs[from_root], rp]),
                     np.concatenate([np.ones(int(from_root.sum())), -big_m[pa[rp]]]),
                     np.full(len(rp), -np.inf), np.zeros(len(rp)))
            if variable_root:
                r0 = add_cols(np.zeros(len(vr)), np.zeros(len(vr)), np.ones(len(vr)), True)
                k = np.arange(len(vr))
                # supply ≤ M·root; root ≤ x; one root per agency.
                add_rows(np.concatenate([k, k]), np.concatenate([s0 + k, r0 + k]),
                         np.concatenate([np.ones(len(vr)), -big_m[pa[vr]]]), np.full(len(vr), -np.inf),
                         np.zeros(len(vr)))
                add_rows(np.concatenate([k, k]), np.concatenate([r0 + k, vr]),
                         np.concatenate([np.ones(len(vr)), -np.ones(len(vr))]), np.full(len(vr), -np.inf),
                         np.zeros(len(vr)))
                groups = {a: i for i, a in enumerate(sorted(set(pa[vr].tolist())))}
                g_row = np.array([groups[a] for a in pa[vr]])
                add_rows(g_row, r0 + k, np.ones(len(vr)), np.full(len(groups), -np.inf), np.ones(len(groups)))

        a_mat = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(n_row, n_col)).tocsc()
        return dict(cost=np.concatenate(cols_cost), lower=np.concatenate(cols_lo), upper=np.concatenate(cols_hi),
                    integer=np.concatenate(cols_int), matrix=a_mat, row_lower=np.concatenate(row_lo),
                    row_upper=np.concatenate(row_hi), pa=pa, pu=pu, n_pairs=n_p, mountain_holders=mountain_rows,
                    mode=mode, pair=pair, fixed_root=dict(fixed_root), exempt=exempt,
                    order=order)

    def _order_keys(self, cand: np.ndarray, fixed_root: dict[int, int], exempt: np.ndarray) -> np.ndarray:
        """Order key per (agency, unit) for ordered contiguity: unit borders from the agency's root within its
        candidate units, then travel time (``inf`` off the candidates or cut off from the root)."""
        key = np.full(cand.shape, np.inf)
        adj_csr = self.adjacency.matrix.tocsr()
        for a, root in fixed_root.items():
            members = np.flatnonzero(cand[a] & ~exempt)
            pos = int(np.searchsorted(members, root))
            if pos >= len(members) or members[pos] != root:
                continue
            hops = shortest_path(adj_csr[members][:, members], unweighted=True, directed=False, indices=pos)
            key[a, members] = hops * 1e6 + self.minutes[a, members]
        return key

    def _pick_solver(self, model: dict, lp_split_share: float) -> str:
        """``solver="auto"``: CP-SAT for ordered-contiguity models of at most CPSAT_MAX_COLUMNS columns whose LP
        relaxation splits more than LP_SPLIT_SHARE of the units between agencies; HiGHS otherwise.

        A split-up LP means a weak bound, where LP-based branch and bound spends its time proving and CP-SAT's
        clause learning pays. Measured on two cores:

        * demo region, ordered contiguity: the LP splits 76-91% of the units; CP-SAT proves the optimum 5-16
          times faster than HiGHS under every rule set tried (default, mountain rule off, ±60% band, travel cap);
        * generated hexagon grids (120-2,000 units, 25-100 agencies): the LP splits 5-13% of the units; both
          prove the optimum but HiGHS is up to 2 times faster (Yuyao's size, 320 × 40: 15 s against 27 s);
        * without contiguity (a capacitated assignment) HiGHS proves the demo in about 5 s while CP-SAT is still
          1.3% off after 60 s. Flow and cut models keep HiGHS (the cut loop adds rows).
        """
        if self.solver != "auto":
            return self.solver
        small = model["matrix"].shape[1] <= CPSAT_MAX_COLUMNS
        split = lp_split_share > LP_SPLIT_SHARE
        return "cpsat" if model["mode"] == "ordered" and small and split else "highs"

    def _contiguity_mode(self, n_pairs: int) -> str:
        if self.contiguity_method != "auto":
            return self.contiguity_method
        if not getattr(self, "_exact_contiguity", False):
            return "ordered"
        return "flow" if n_pairs <= self.flow_max_pairs else "cuts"

    def _separate(self, values: np.ndarray, model: dict, cand: np.ndarray, fixed_root: dict[int, int],
                  variable_root: list[int], exempt: np.ndarray):
        """Connectivity cuts violated by a solution, as COO rows, or None when every zone is connected.

        For a piece S of agency a's zone cut off from its root, any connected zone joining a unit u ∈ S to the
        root must hold a unit on S's border δ(S): x[a,u] ≤ Σ_{v∈δ(S)} x[a,v]. Agencies that pick their root
        get x[a,u] + x[a,w] − 1 ≤ Σ_{v∈δ(S)} x[a,v] with w in the zone's main piece.
        """
        pa, pu, pair = model["pa"], model["pu"], model["pair"]
        chosen = values[:model["n_pairs"]] > 0.5
        owner = np.full(len(self.unit_ids), -1, dtype=np.int64)
        owner[pu[chosen]] = pa[chosen]
        adj = self.adjacency.matrix
        rows, cols, vals, upper = [], [], [], []
        for a in list(fixed_root) + list(variable_root):
            members = np.flatnonzero((owner == a) & ~exempt)
            if len(members) <= 1:
                continue
            n_comp, labels = connected_components(adj[members][:, members], directed=False)
            if n_comp == 1:
                continue
            if a in fixed_root:
                main = labels[np.searchsorted(members, fixed_root[a])] if fixed_root[a] in members else -1
            else:
                main = np.bincount(labels).argmax()
            anchor = members[labels == main][0] if main >= 0 else -1
            for c in range(n_comp):
                if c == main:
                    continue
                piece = members[labels == c]
                inside = np.zeros(len(self.unit_ids), dtype=bool)
                inside[piece] = True
                border = np.flatnonzero((adj[piece].sum(axis=0).A1 > 0) & ~inside & cand[a])
                border_pairs = pair[a, border]
                for u in piece:
                    r = len(upper)
                    terms = [(pair[a, u], 1.0)] + [(p, -1.0) for p in border_pairs]
                    if a in fixed_root:
                        upper.append(0.0)
                    else:
                        terms.append((pair[a, anchor], 1.0))
                        upper.append(1.0)
                    rows += [r] * len(terms)
                    cols += [t[0] for t in terms]
                    vals += [t[1] for t in terms]
        if not upper:
            return None
        return (np.array(rows), np.array(cols), np.array(vals), np.full(len(upper), -np.inf), np.array(upper))

    def _greedy_owner(self, model: dict, cand: np.ndarray, fixed: np.ndarray, exempt: np.ndarray,
                      initial: np.ndarray | None = None, lp_values: np.ndarray | None = None) -> np.ndarray | None:
        """A contiguous, capacity-feasible assignment grown from the roots, or None when some unit is left over.

        Zones grow one bordering unit at a time from a heap over each zone's border: pairs the LP relaxation
        (``lp_values``) leans to first, then the nearest, fuller agencies growing more slowly. In the ordered
        model a unit joins only through a zone neighbour nearer the root (the model's own order), so the plan
        satisfies its rows. Units left over get a second pass over every agency with room that borders them
        (repeated while it places units); islands go to the nearest agency with room."""
        import heapq

        n_u = len(self.unit_ids)
        adj = self.adjacency.matrix
        d = self.demand
        key = model["order"]
        lean = np.zeros(cand.shape)
        if lp_values is not None:
            lean[model["pa"], model["pu"]] = np.round(lp_values[:model["n_pairs"]], 3)
        owner = np.full(n_u, -1, dtype=np.int64)
        room = np.where(self.eligible, self.capacity, 0.0).astype(float)
        locked = fixed >= 0
        owner[locked] = fixed[locked]
        np.subtract.at(room, fixed[locked], d[locked])
        heap: list = []

        def neighbours(u: int) -> np.ndarray:
            return adj.indices[adj.indptr[u]:adj.indptr[u + 1]]

        def may_grow(a: int, u: int, v: int) -> bool:
            return owner[v] < 0 and cand[a, v] and not exempt[v] and (key is None or key[a, u] < key[a, v])

        def push_border(a: int, u: int) -> None:
            used = 1.0 - room[a] / max(self.capacity[a], 1e-9)
            for v in neighbours(u):
                if may_grow(a, u, v):
                    # Fuller agencies grow more slowly, so one zone does not wall in a neighbour's units.
                    heapq.heappush(heap, (-lean[a, v], float(self.minutes[a, v]) * (1.0 + 3.0 * used), a, int(v)))

        for a, r in model["fixed_root"].items():
            if owner[r] < 0 and cand[a, r] and d[r] <= room[a] + 1e-9:
                owner[r] = a
                room[a] -= d[r]
        if initial is not None:
            # Keep an earlier plan's zones where they are joined to their roots, and grow from there.
            keep = self._rooted((initial[model["pu"]] == model["pa"]), model)
            for p in np.flatnonzero(keep):
                a, u = int(model["pa"][p]), int(model["pu"][p])
                if owner[u] < 0 and d[u] <= room[a] + 1e-9:
                    owner[u] = a
                    room[a] -= d[u]
        for u in np.flatnonzero(owner >= 0):
            push_border(int(owner[u]), int(u))
        while heap:
            *_, a, u = heapq.heappop(heap)
            if owner[u] >= 0 or d[u] > room[a] + 1e-9:
                continue
            owner[u] = a
            room[a] -= d[u]
            push_border(a, u)
        need = cand.any(axis=0)
        placed = True
        while placed:
            placed = False
            for v in np.flatnonzero((owner < 0) & need & ~exempt):
                best, best_t = -1, np.inf
                for u in neighbours(v):
                    a = owner[u]
                    if a >= 0 and may_grow(a, u, v) and d[v] <= room[a] + 1e-9 and self.minutes[a, v] < best_t:
                        best, best_t = int(a), float(self.minutes[a, v])
                if best >= 0:
                    owner[v] = best
                    room[best] -= d[v]
                    placed = True
        for u in np.flatnonzero((owner < 0) & exempt & need):
            ok = cand[:, u] & (room >= d[u] - 1e-9)
            if ok.any():
                a = int(np.argmin(np.where(ok, self.minutes[:, u], np.inf)))
                owner[u] = a
                room[a] -= d[u]
        return owner if (owner[need] >= 0).all() else None

    def _evaluate(self, model: dict, x: np.ndarray, deadline: float) -> MipResult | None:
        """Objective and full solution of a fixed assignment (continuous columns settled by an LP), or None."""
        lower, upper = model["lower"].copy(), model["upper"].copy()
        lower[:model["n_pairs"]] = x
        upper[:model["n_pairs"]] = x
        res = HighsMip(model["cost"], lower, upper, np.zeros_like(model["integer"]), model["matrix"],
                       model["row_lower"], model["row_upper"], mip_rel_gap=self.mip_rel_gap,
                       threads=self.threads).solve(time_limit_s=max(min(deadline - time.perf_counter(), 10.0), 0.1))
        return res if res.feasible else None

    def _rooted(self, keep: np.ndarray, model: dict) -> np.ndarray:
        """Only the kept pairs joined to their agency's root through kept units (a fixed cut-off piece would
        make the fix-and-solve model infeasible)."""
        pa, pu = model["pa"], model["pu"]
        fixed_root = model["fixed_root"]
        exempt = model["exempt"]
        out = keep.copy()
        adj = self.adjacency.matrix
        for a in np.unique(pa[keep]):
            sel = np.flatnonzero(keep & (pa == a) & ~exempt[pu])
            if len(sel) == 0:
                continue
            units = pu[sel]
            order = np.argsort(units)
            units, sel = units[order], sel[order]
            _, labels = connected_components(adj[units][:, units], directed=False)
            root = fixed_root.get(int(a), -1)
            pos = np.searchsorted(units, root)
            main = labels[pos] if pos < len(units) and units[pos] == root else np.bincount(labels).argmax()
            out[sel[labels != main]] = False
        return out

    def _fix_and_solve(self, flow_model: dict, added: list, keep: np.ndarray, deadline: float,
                       share: float = 0.25) -> MipResult | None:
        """The flow model with the ``keep`` pairs fixed to 1, solved briefly: a contiguous plan or None."""
        budget = min(max(deadline - time.perf_counter(), 0.0) * share, 15.0)
        if budget < 0.05:
            return None
        matrix, rlo, rhi = flow_model["matrix"], flow_model["row_lower"], flow_model["row_upper"]
        if added:
            blocks = [sp.csr_matrix((v, (r, c)), shape=(len(lo), matrix.shape[1])) for r, c, v, lo, hi in added]
            matrix = sp.vstack([matrix] + blocks).tocsc()
            rlo = np.concatenate([rlo] + [lo for *_, lo, hi in added])
            rhi = np.concatenate([rhi] + [hi for *_, lo, hi in added])
        pa, pu = flow_model["pa"], flow_model["pu"]
        keep = self._rooted(keep, flow_model)
        # A fixed zone can wall in a unit no other zone may then reach: free zone borders ring by ring.
        for _ in range(3):
            lower = flow_model["lower"].copy()
            lower[:flow_model["n_pairs"]][keep] = 1.0
            res = HighsMip(flow_model["cost"], lower, flow_model["upper"], flow_model["integer"], matrix, rlo, rhi,
                           mip_rel_gap=max(self.mip_rel_gap, 1e-3), threads=self.threads).solve(
                time_limit_s=min(budget, max(deadline - time.perf_counter(), 0.05)))
            if res.feasible:
                return res
            if "nfeasible" not in res.status:
                return None
            owner = np.full(len(self.unit_ids), -1, dtype=np.int64)
            owner[pu[keep]] = pa[keep]
            border = np.zeros(len(self.unit_ids), dtype=bool)
            tail, head = self.adjacency.edges()
            border[tail[owner[tail] != owner[head]]] = True
            keep = keep & ~border[pu]
        return None

    def _attempt(self, relax: set, k: int | None, time_limit_s: float):
        """Build and solve once. Large models use connectivity cuts: each round's MIP (without flows) gives a
        lower bound, and a fix-and-solve on the flow model around it gives a contiguous plan; the best plan
        and the best bound give the reported gap. Small models are solved directly with flows."""
        fixed = self._fixed_units(relax)
        base = self._base_pairs(fixed, relax)
        exempt = self._exempt_units() if self.contiguity and "contiguity" not in relax else \
            np.zeros(len(self.unit_ids), dtype=bool)
        fixed_root, variable_root = self._roots(base, fixed)
        saved = self.contiguity
        if "contiguity" in relax:
            self.contiguity = False
        try:
            full = self._candidates(base, fixed, fixed_root, exempt, None)
            cand = self._candidates(base, fixed, fixed_root, exempt, k)
            if k is not None and self._capacity_flow_violation(cand, fixed, relax) is not None:
                cand = full
            model = self._build(cand, fixed, fixed_root, variable_root, exempt, relax)
            flow_model = self._build(cand, fixed, fixed_root, variable_root, exempt, relax, mode="flow") \
                if model["mode"] == "cuts" else model
        finally:
            self.contiguity = saved
        out = dict(model=model, cand=cand, full=full, base=base, fixed=fixed, fixed_root=fixed_root,
                   variable_root=variable_root, exempt=exempt, pruned=bool((cand != full).any()), cut_rounds=0,
                   cuts=0)
        started = time.perf_counter()
        deadline = started + time_limit_s
        n_p = model["n_pairs"]
        pa, pu = model["pa"], model["pu"]
        # The LP relaxation (HiGHS) finds infeasibility cheaply, picks the solver, bounds the cut loop and seeds
        # the fix-and-solve of the flow and cut models.
        lp = HighsMip(model["cost"], model["lower"], model["upper"], np.zeros_like(model["integer"]),
                      model["matrix"], model["row_lower"], model["row_upper"], mip_rel_gap=self.mip_rel_gap,
                      threads=self.threads).solve(time_limit_s=max(time_limit_s, 0.1))
        if not lp.feasible:
            out["result"] = MipResult(lp.status, None, float("nan"), float("nan"), float("inf"), lp.solve_s, False)
            return out
        x = lp.values[:n_p]
        split = np.unique(pu[(x > 1e-6) & (x < 1 - 1e-6)])
        out["lp_split_share"] = len(split) / max(len(np.unique(pu)), 1)
        mip = make_mip(model["cost"], model["lower"], model["upper"], model["integer"], model["matrix"],
                       model["row_lower"], model["row_upper"], mip_rel_gap=self.mip_rel_gap,
                       solver=self._pick_solver(model, out["lp_split_share"]), threads=self.threads)
        out["solver"] = mip.name
        added: list = []
        # The LP relaxation is a valid lower bound in every mode (the cut model's LP lacks only cuts), so a plan
        # found before the solver reports a bound of its own still gets an honest gap.
        bound = lp.objective
        status = "Time limit reached"
        # Seed: zones grown greedily from the roots (contiguous, within capacity); when that fails, a
        # fix-and-solve around the LP relaxation's integral part.
        best = None
        owner = self._greedy_owner(model, cand, fixed, exempt, lp_values=lp.values)
        if owner is not None:
            best = self._evaluate(model if model["mode"] != "flow" else flow_model, (owner[pu] == pa).astype(float),
                                  deadline)
        if best is None and model["mode"] != "ordered":  # ordered models: the solvers find a first plan faster
            best = self._fix_and_solve(flow_model, added, lp.values[:n_p] > 1 - 1e-6, deadline)
        while time.perf_counter() < deadline:
            if best is not None and best.objective - max(bound, lp.objective) <= self.mip_rel_gap * abs(best.objective):
                status = "Optimal"
                bound = max(bound, lp.objective)
                break
            start = None if best is None else best.values[:n_p]
            result = mip.solve(time_limit_s=deadline - time.perf_counter(), start=start,
                               start_columns=None if start is None else np.arange(n_p))
            if "nfeasible" in result.status:
                status = result.status
                best = None
                break
            if np.isfinite(result.bound):
                bound = max(bound, result.bound)
            if not result.feasible:
                break
            cuts = self._separate(result.values, model, cand, fixed_root, variable_root, exempt) \
                if model["mode"] == "cuts" else None
            if cuts is None:
                if best is None or result.objective <= best.objective:
                    best = result
                status = result.status
                break
            added.append(cuts)
            mip.add_rows(*cuts)
            out["cut_rounds"] += 1
            out["cuts"] += len(cuts[3])
            # A contiguous plan near this round's: keep its rooted zones and grow them over the rest.
            chosen = result.values[:n_p] > 0.5
            prev = np.full(len(self.unit_ids), -1, dtype=np.int64)
            prev[pu[chosen]] = pa[chosen]
            owner = self._greedy_owner(model, cand, fixed, exempt, initial=prev)
            seed = None if owner is None else self._evaluate(model, (owner[pu] == pa).astype(float), deadline)
            if seed is not None and (best is None or seed.objective < best.objective):
                best = seed
        elapsed = time.perf_counter() - started
        if best is None:
            out["result"] = MipResult(status, None, float("nan"), bound, float("inf"), elapsed, False)
            return out
        gap = max(0.0, (best.objective - bound) / max(abs(best.objective), 1e-9)) if np.isfinite(bound) else \
            best.gap
        if status == "Optimal":
            gap = min(gap, best.gap if best.status == "Optimal" else gap)
        out["result"] = MipResult(status, best.values, best.objective, bound, gap, elapsed, True)
        return out

    # ------------------------------------------------------------------ solve
    def solve(self) -> "AllocationModel":
        """Solve the allocation; results become attributes. Raises PlanningError naming the binding constraint."""
        started = time.perf_counter()
        fixed = self._fixed_units(set())
        base = self._base_pairs(fixed, set())
        exempt = self._exempt_units() if self.contiguity else np.zeros(len(self.unit_ids), dtype=bool)
        fixed_root, variable_root = self._roots(base, fixed)
        full = self._candidates(base, fixed, fixed_root, exempt, None)
        base_nocap = np.isfinite(self.minutes) & self.eligible[:, None]
        for a, u in self.forbidden:
            base_nocap[a, u] = False
        self.reasons = self._unassignable_reasons(full, base_nocap, fixed)
        assignable = full.any(axis=0)
        self._diagnose(full, fixed, assignable, set())

        small = int(full.sum()) <= self.prune_above_pairs
        k = self.candidates_k if self.candidates_k < len(self.agency_ids) and not small else None
        run = self._attempt(set(), k, self.time_limit_s)
        self.attempts = [dict(k=k, status=run["result"].status, pairs=run["model"]["n_pairs"],
                              solve_s=run["result"].solve_s)]
        # Widen the candidate set step by step (2k, then every agency) while the pruned model has no plan: a
        # slightly wider model is far cheaper than the full one.
        # Each attempt needs its share of the time limit: with under a second left, a wider model would only be
        # built to be stopped (on thousands of units, building it takes longer than the limit itself).
        def remaining() -> float:
            return self.time_limit_s - (time.perf_counter() - started)

        while not run["result"].feasible and run["pruned"] and k is not None and remaining() >= 1.0:
            k = 2 * k if 2 * k < len(self.agency_ids) else None
            run = self._attempt(set(), k, remaining())
            self.attempts.append(dict(k=k, status=run["result"].status, pairs=run["model"]["n_pairs"],
                                      solve_s=run["result"].solve_s))
        if not run["result"].feasible and run["model"]["mode"] == "ordered" and remaining() >= 1.0:
            # Ordered zones are a subset of connected zones: when none fits, search all connected zones.
            self._exact_contiguity = True
            run = self._attempt(set(), None, remaining())
            self.attempts.append(dict(k=None, status=run["result"].status, pairs=run["model"]["n_pairs"],
                                      solve_s=run["result"].solve_s, contiguity="exact"))
        result = run["result"]
        if not result.feasible:
            # Infeasible on a pruned candidate set, or among ordered zones only, is no proof: the wider or exact
            # model that could settle it was not reached within the time limit.
            proof = not run["pruned"] and run["model"]["mode"] != "ordered"
            if "nfeasible" in result.status and proof:
                raise PlanningError(self._name_binding_constraint())
            hard = [name for name, on in (("the hard urban + mountain rule (use mountain_rule='soft')",
                                           self.mountain_rule == "hard"),
                                          ("the load-balance band", self.balance_band is not None),
                                          ("the travel cap", self.travel_cap_min is not None),
                                          ("locks", bool(self.locks)), ("contiguity", self.contiguity)) if on]
            raise PlanningError(
                f"no feasible plan found within the time limit of {self.time_limit_s:g} s ({result.status}); "
                "raise time_limit_s" + (", or relax " + ", ".join(hard) if hard else ""))
        self._run = run
        self.status = result.status
        self.objective = result.objective
        self.mip_gap = result.gap
        self.solve_time = time.perf_counter() - started
        self.mip_solve_time = result.solve_s
        self.model_size = dict(pairs=run["model"]["n_pairs"], columns=int(run["model"]["matrix"].shape[1]),
                               rows=int(run["model"]["matrix"].shape[0]), contiguity=run["model"]["mode"],
                               cut_rounds=run["cut_rounds"], cuts=run["cuts"], solver=run.get("solver", ""),
                               lp_split_share=run.get("lp_split_share"),
                               pruned=run["pruned"])
        self._collect(run)
        return self

    def _name_binding_constraint(self) -> str:
        """Relax constraint groups one at a time; the first whose removal restores feasibility binds."""
        active = [g for g in RELAXABLE
                  if not (g == "mountain rule" and self.mountain_rule != "hard")
                  and not (g == "load-balance band" and self.balance_band is None)
                  and not (g == "locks" and not self.locks)
                  and not (g == "contiguity" and not self.contiguity)
                  and not (g == "travel cap" and self.travel_cap_min is None)]
        explain = {
            "mountain rule": f"the hard urban + mountain rule (share {self.weights.mountain_share:g}) binds: no plan "
                             "gives every urban-holding agency its share of mountain demand; use mountain_rule='soft'",
            "load-balance band": f"the load-balance band ±{(self.balance_band or 0):.0%} binds: agencies cannot all "
                                 "be loaded within it; widen balance_band",
            "locks": "the locks bind: with them no feasible plan exists (a locked unit cannot be joined to its "
                     "agency's zone or pushes it over capacity); remove or change locks",
            "contiguity": "contiguity binds: capacities can be met only with zones that are not connected; raise "
                          "capacity near the short area or allow non-contiguous zones",
            "travel cap": f"the travel cap of {self.travel_cap_min} min binds: capacity within it is short; raise "
                          "the cap or capacity",
            "capacity": "capacity binds: agencies that can serve the remaining units are full",
        }
        for group in active:
            try:
                probe = self._attempt({group}, None, min(self.time_limit_s, 20.0))
            except PlanningError:
                continue
            if probe["result"].feasible:
                return "infeasible: " + explain[group]
        return "infeasible: no single constraint group explains it (" + ", ".join(active) + " together bind)"

    # ------------------------------------------------------------------ results
    def _collect(self, run) -> None:
        model, values = run["model"], run["result"].values
        n_u = len(self.unit_ids)
        owner = np.full(n_u, -1, dtype=np.int64)
        chosen = values[:model["n_pairs"]] > 0.5
        owner[model["pu"][chosen]] = model["pa"][chosen]
        self.owner = owner
        self.islands = self.unit_ids[run["exempt"]].tolist() if self.contiguity else []
        self.roots = dict(run["fixed_root"])
        self.backup_owner, self.backup_reason = self._backups(owner)
        self.assignment = pd.Series(np.where(owner >= 0, self.agency_ids[np.maximum(owner, 0)], None),
                                    index=pd.Index(self.unit_ids, name="unit_id"), name="agency_id", dtype=object)
        self.backup = pd.Series(np.where(self.backup_owner >= 0, self.agency_ids[np.maximum(self.backup_owner, 0)],
                                         None), index=self.assignment.index, name="backup_agency_id", dtype=object)
        self.unit_table = self._unit_table()
        self.agency_table = self._agency_table(owner)
        self.nearest_owner = self._nearest_owner()
        self.comparison = pd.DataFrame([self._metrics(owner, run["exempt"]),
                                        self._metrics(self.nearest_owner, run["exempt"])],
                                       index=pd.Index(["plan", "nearest"], name="assignment"))
        plan_w = self.comparison.loc["plan", "weighted_travel"]
        near_w = self.comparison.loc["nearest", "weighted_travel"]
        self.summary = dict(
            units=n_u, assigned=int((owner >= 0).sum()), unassigned=int((owner < 0).sum()),
            agencies_used=int(len(np.unique(owner[owner >= 0]))), objective=self.objective, mip_gap=self.mip_gap,
            solve_s=self.solve_time, status=self.status, solver=self.model_size["solver"],
            mean_travel_min=float(self.comparison.loc["plan", "mean_travel_min"]),
            max_travel_min=float(self.comparison.loc["plan", "max_travel_min"]),
            extra_travel_vs_nearest=float(plan_w / near_w - 1.0) if near_w > 0 else 0.0,
            nearest_overload_demand=float(self.comparison.loc["nearest", "overload_demand"]),
            nearest_contiguity_violations=int(self.comparison.loc["nearest", "contiguity_violations"]),
            max_min_load_ratio=float(self.comparison.loc["plan", "max_min_load_ratio"]),
            islands=list(self.islands),
        )

    def _backups(self, owner: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
        """Best other active agency with spare capacity per unit, as if its own agency failed.

        Units of one failing agency draw on one shared ledger of spare capacity, so together they never
        overfill a backup; the paired leading agency comes first when it has room.
        """
        n_a, n_u = self.minutes.shape
        load = np.bincount(owner[owner >= 0], weights=self.demand[owner >= 0], minlength=n_a)
        spare0 = np.where(self.eligible, self.capacity - load, -np.inf)
        ok = np.isfinite(self.minutes) & self.eligible[:, None]
        if self.travel_cap_min is not None:
            ok &= self.minutes <= self.travel_cap_min
        for a, u in self.forbidden:
            ok[a, u] = False
        backup = np.full(n_u, -1, dtype=np.int64)
        reason: dict[int, str] = {}
        merit = self.quality / 1000.0  # breaks exact travel-time ties only
        for a in np.unique(owner[owner >= 0]):
            spare = spare0.copy()
            held = np.flatnonzero(owner == a)
            for u in held[np.argsort(-self.demand[held], kind="stable")]:
                fits = ok[:, u] & (spare >= self.demand[u] - 1e-9)
                fits[a] = False
                partner = self.pairs.get(int(a))
                if partner is not None and fits[partner]:
                    b = partner
                elif fits.any():
                    b = int(np.argmin(np.where(fits, self.minutes[:, u] - merit, np.inf)))
                else:
                    reason[u] = "no other agency within reach has spare capacity"
                    continue
                backup[u] = b
                spare[b] -= self.demand[u]
        return backup, reason

    def _nearest_owner(self) -> np.ndarray:
        t = np.where(self.eligible[:, None], self.minutes, np.inf)
        owner = np.argmin(t, axis=0)
        owner[~np.isfinite(t.min(axis=0))] = -1
        return owner

    def _metrics(self, owner: np.ndarray, exempt: np.ndarray) -> dict:
        has = owner >= 0
        t = np.where(has, self.minutes[np.maximum(owner, 0), np.arange(len(owner))], np.nan)
        d = self.demand
        wsum = d[has].sum()
        load = np.bincount(owner[has], weights=d[has], minlength=len(self.agency_ids))
        over = np.maximum(load - self.capacity, 0)[self.eligible].sum()
        ratio = np.divide(load, self.capacity, out=np.full_like(load, np.nan), where=self.capacity > 0)
        used = self.eligible & (load > 0) & (self.capacity > 0)
        mm = float(ratio[used].max() / ratio[used].min()) if used.any() else float("nan")
        roots = {int(a): int(self.own_unit[a]) for a in np.flatnonzero(self.eligible)}
        return dict(
            units_assigned=int(has.sum()),
            weighted_travel=float(np.nansum(d[has] * t[has])),
            mean_travel_min=float(np.nansum(d[has] * t[has]) / wsum) if wsum > 0 else float(np.nanmean(t)),
            max_travel_min=float(np.nanmax(t)) if has.any() else float("nan"),
            overload_demand=float(over),
            contiguity_violations=count_contiguity_violations(owner, self.adjacency.matrix, roots, exempt),
            max_min_load_ratio=mm,
        )

    def _unit_table(self) -> pd.DataFrame:
        owner, bk = self.owner, self.backup_owner
        n = np.arange(len(owner))
        travel = np.where(owner >= 0, self.minutes[np.maximum(owner, 0), n], np.nan)
        btravel = np.where(bk >= 0, self.minutes[np.maximum(bk, 0), n], np.nan)
        island = set(self.islands)
        locked = np.zeros(len(owner), dtype=bool)
        locked[list(self.locks)] = True
        notes = []
        for i, u in enumerate(self.unit_ids):
            parts = []
            if u in island:
                parts.append("island: contiguity exempt")
            if i in self.backup_reason:
                parts.append("no backup: " + self.backup_reason[i])
            notes.append("; ".join(parts))
        return pd.DataFrame({
            "unit_id": self.unit_ids,
            "name": self.units.get("name", pd.Series(self.unit_ids, index=self.units.index)).astype(str).to_numpy(),
            "township": self.township, "setting": self.setting, "population": self.population,
            "demand": self.demand, "agency_id": self.assignment.to_numpy(), "travel_min": travel,
            "backup_agency_id": self.backup.to_numpy(), "backup_travel_min": btravel, "locked": locked,
            "reason": [self.reasons.get(i, "") for i in range(len(owner))], "note": notes,
        })

    def _agency_table(self, owner: np.ndarray) -> pd.DataFrame:
        rows = []
        for a, aid in enumerate(self.agency_ids):
            held = np.flatnonzero(owner == a)
            t = self.minutes[a, held]
            d = self.demand[held]
            rows.append(dict(
                agency_id=aid, name=self.agency_names[a], status=self.agency_status[a],
                leading=bool(self.leading[a]), quality_score=float(self.quality[a]),
                own_unit_id=self.unit_ids[self.own_unit[a]] if self.own_unit[a] >= 0 else None,
                units=len(held), population=float(self.population[held].sum()), demand=float(d.sum()),
                capacity=float(self.capacity[a]),
                load_ratio=float(d.sum() / self.capacity[a]) if self.capacity[a] > 0 else float("nan"),
                mean_travel_min=float((d * t).sum() / d.sum()) if d.sum() > 0 else
                (float(t.mean()) if len(t) else float("nan")),
                max_travel_min=float(t.max()) if len(t) else float("nan"),
                mountain_demand=float(d[self.setting[held] == "mountain"].sum()),
                urban_demand=float(d[self.setting[held] == "urban"].sum()),
                backs_up=", ".join(self.agency_ids[o] for o, lead in self.pairs.items() if lead == a),
            ))
        return pd.DataFrame(rows)

    def parameters(self) -> dict:
        """The options this plan was made with, as plain data (for the plan's record)."""
        return dict(
            weights=asdict(self.weights), travel_cap_min=self.travel_cap_min, balance_band=self.balance_band,
            contiguity=self.contiguity, mountain_rule=self.mountain_rule, candidates_k=self.candidates_k,
            time_limit_s=self.time_limit_s, mip_rel_gap=self.mip_rel_gap, solver=self.solver,
            prune_above_pairs=self.prune_above_pairs,
            clients_per_caregiver=self.clients_per_caregiver if self.clients_per_caregiver is not None
            else settings.clients_per_caregiver,
            locks={self.unit_ids[u]: self.agency_ids[a] for u, a in self.locks.items()},
            forbidden=sorted([self.agency_ids[a], self.unit_ids[u]] for a, u in self.forbidden),
            preferences=dict(self._raw["preferences"]),
            pairs={self.agency_ids[o]: self.agency_ids[lead] for o, lead in self.pairs.items()},
            suspended=sorted(self.agency_ids[self.agency_status == "suspended"].tolist()),
        )

    def to_plan(self, *, previous=None, why: str = "initial plan"):
        """This result as a versioned :class:`planning.plan_ops.Plan` (change log against ``previous``)."""
        from planning.plan_ops import Plan

        return Plan.from_model(self, previous=previous, why=why)


def allocate_units(units, agencies, matrix, **options) -> AllocationModel:
    """Build and solve an :class:`AllocationModel` in one call (same keyword options)."""
    return AllocationModel(units, agencies, matrix, **options).solve()
