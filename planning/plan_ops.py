"""Operations on an allocation plan: shortfall substitution, service-area reduction, suspension, re-plans.

A :class:`Plan` is plain data (``to_dict`` / ``from_dict`` round-trip through JSON); saving it is the
workspace package's job. Every operation returns a *new* plan version whose change log lists each unit
that moved, from which agency to which, and why; the plan it started from is never modified, so a failed
operation (PlanningError) leaves the saved plan intact.

Re-assignments reuse :class:`planning.allocation.AllocationModel` so they obey the same capacity, travel-cap
and contiguity rules: first with every unaffected unit locked (only the affected units move), and only
when that is infeasible with everything free but a heavy move penalty (the fewest other units move).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from geo.errors import InputError, PlanningError, Problem


@dataclass
class Change:
    """One unit that changed agency between two plan versions."""

    unit_id: str
    from_agency: str | None
    to_agency: str | None
    why: str

    def to_dict(self) -> dict:
        return dict(unit_id=self.unit_id, from_agency=self.from_agency, to_agency=self.to_agency, why=self.why)


@dataclass
class Plan:
    """A versioned allocation: per unit agency, backup, lock and reason; parameters, summary and change log."""

    version: int
    created_at: str
    assignment: dict[str, str | None]
    backup: dict[str, str | None] = field(default_factory=dict)
    locked: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    parent_version: int | None = None

    # -------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict:
        return dict(version=self.version, created_at=self.created_at, assignment=dict(self.assignment),
                    backup=dict(self.backup), locked=list(self.locked), reasons=dict(self.reasons),
                    parameters=_plain(self.parameters), summary=_plain(self.summary),
                    changes=[c.to_dict() for c in self.changes], events=list(self.events),
                    parent_version=self.parent_version)

    @classmethod
    def from_dict(cls, data: dict) -> "Plan":
        problems = [Problem(f"plan has no {k!r}", column=k) for k in ("version", "created_at", "assignment")
                    if k not in data]
        if problems:
            raise InputError("cannot read the plan", problems)
        return cls(version=int(data["version"]), created_at=str(data["created_at"]),
                   assignment={str(k): (None if v is None else str(v)) for k, v in data["assignment"].items()},
                   backup={str(k): (None if v is None else str(v)) for k, v in data.get("backup", {}).items()},
                   locked=[str(u) for u in data.get("locked", [])], reasons=dict(data.get("reasons", {})),
                   parameters=dict(data.get("parameters", {})), summary=dict(data.get("summary", {})),
                   changes=[Change(**c) for c in data.get("changes", [])], events=list(data.get("events", [])),
                   parent_version=data.get("parent_version"))

    @classmethod
    def from_model(cls, model, *, previous: "Plan | None" = None, why: str = "initial plan") -> "Plan":
        """A plan from a solved AllocationModel; versioned after ``previous`` with a change log against it."""
        assignment = {u: (None if a is None else str(a)) for u, a in model.assignment.items()}
        changes = diff_assignments(previous.assignment if previous else {}, assignment, why=why) if previous else []
        return cls(
            version=(previous.version + 1) if previous else 1, created_at=_now(), assignment=assignment,
            backup={u: (None if a is None else str(a)) for u, a in model.backup.items()},
            locked=sorted(model.unit_ids[list(model.locks)].tolist()),
            reasons={model.unit_ids[u]: r for u, r in model.reasons.items()},
            parameters=model.parameters(), summary=_plain(model.summary), changes=changes,
            events=[why], parent_version=previous.version if previous else None)

    # -------------------------------------------------------------- views
    def units_of(self, agency_id: str) -> list[str]:
        return sorted(u for u, a in self.assignment.items() if a == agency_id)

    def to_frame(self):
        """Per-unit table: unit_id, agency_id, backup_agency_id, locked, reason."""
        import pandas as pd

        locked = set(self.locked)
        return pd.DataFrame([dict(unit_id=u, agency_id=a, backup_agency_id=self.backup.get(u),
                                  locked=u in locked, reason=self.reasons.get(u, ""))
                             for u, a in self.assignment.items()])

    def changes_frame(self):
        import pandas as pd

        return pd.DataFrame([c.to_dict() for c in self.changes], columns=["unit_id", "from_agency", "to_agency",
                                                                          "why"])


def diff_assignments(old: dict, new: dict, *, why: str) -> list[Change]:
    """Every unit whose agency differs between two assignments."""
    units = sorted(set(old) | set(new))
    return [Change(u, old.get(u), new.get(u), why) for u in units if old.get(u) != new.get(u)]


def suspend_agency(plan: Plan, agency_id: str, *, why: str = "suspended") -> Plan:
    """A new version in which ``agency_id`` is suspended: it keeps its units but gets none in re-plans."""
    _require_agency_in_plan(plan, agency_id, allow_empty=True)
    params = dict(plan.parameters)
    params["suspended"] = sorted(set(params.get("suspended", [])) | {agency_id})
    return _derive(plan, plan.assignment, [], params, event=f"{agency_id} suspended: {why}")


def replan(plan: Plan, units, agencies, matrix, *, why: str = "re-plan", move_penalty_min: float = 60.0,
           **options) -> Plan:
    """Solve again from the plan's parameters (suspensions, locks, forbidden pairs, weights) with a move
    penalty so units stay where they are unless the rules or the objective say otherwise."""
    model = _model(plan, units, agencies, matrix, move_penalty_min=move_penalty_min, **options).solve()
    new = Plan.from_model(model, previous=plan, why=why)
    new.parameters = _merge_params(plan.parameters, new.parameters)
    return new


def substitute_shortfall(plan: Plan, units, agencies, matrix, *, agency_id: str, new_capacity: float | None = None,
                         why: str | None = None, **options) -> Plan:
    """Shortfall substitution (补位): ``agency_id`` drops out (``new_capacity=None``) or its capacity falls.

    Only its units are reassigned, each to an agency with spare capacity whose zone it joins. When that is
    impossible, other units may move too, as few as possible (move penalty). Every move is in the change log.
    """
    _require_agency_in_plan(plan, agency_id)
    held = set(plan.units_of(agency_id))
    reason = why or (f"{agency_id} dropped out (shortfall substitution)" if new_capacity is None else
                     f"{agency_id} capacity fell to {new_capacity:g} (shortfall substitution)")
    agencies = agencies.copy()
    row = agencies["agency_id"].astype(str) == agency_id
    if new_capacity is None:
        agencies.loc[row, "status"] = "terminated"
    else:
        if new_capacity < 0:
            raise InputError("cannot substitute", [Problem("new_capacity must be ≥ 0", value=new_capacity)])
        agencies.loc[row, "capacity"] = float(new_capacity)
    return _reassign(plan, units, agencies, matrix, free=held, reason=reason, agency_id=agency_id, **options)


def reduce_service_area(plan: Plan, units, agencies, matrix, *, agency_id: str, n_units: int | None = None,
                        demand_share: float | None = None, why: str = "service-area reduction (penalty)",
                        adjacency=None, **options) -> Plan:
    """Shrink ``agency_id``'s zone by ``n_units`` units or by ``demand_share`` (0–1) of its demand.

    Its farthest units go first, skipping any whose removal would cut the rest of the zone off from its own
    unit; they become forbidden for the agency (kept in the plan's parameters, so later re-plans respect the
    penalty) and go to neighbouring zones.
    """
    from planning.adjacency import build_adjacency
    from planning.allocation import AllocationModel

    if (n_units is None) == (demand_share is None):
        raise InputError("cannot reduce the service area",
                         [Problem("give exactly one of n_units or demand_share")])
    if n_units is not None and n_units < 1:
        raise InputError("cannot reduce the service area", [Problem("n_units must be ≥ 1", value=n_units)])
    if demand_share is not None and not 0 < demand_share < 1:
        raise InputError("cannot reduce the service area", [Problem("demand_share must be in (0, 1)",
                                                                    value=demand_share)])
    _require_agency_in_plan(plan, agency_id)
    adjacency = adjacency or build_adjacency(units)
    probe = AllocationModel(units, agencies, matrix, adjacency=adjacency, contiguity=False)
    a = probe._apos[agency_id]
    held = np.array([probe._upos[u] for u in plan.units_of(agency_id)])
    if len(held) <= 1:
        raise PlanningError(f"{agency_id} holds {len(held)} unit(s); its service area cannot shrink further")
    own = int(probe.own_unit[a])
    demand = probe.demand
    target_units = n_units if n_units is not None else len(held) - 1
    target_demand = demand_share * demand[held].sum() if demand_share is not None else np.inf
    if n_units is not None and n_units >= len(held):
        raise PlanningError(f"{agency_id} holds {len(held)} units; removing {n_units} would leave it none")
    remaining = set(held.tolist())
    removed: list[int] = []
    removed_demand = 0.0
    adj = adjacency.reorder(probe.unit_ids).matrix
    while len(removed) < target_units and removed_demand < target_demand - 1e-9:
        order = sorted(remaining - {own}, key=lambda u: -probe.minutes[a, u])
        for u in order:
            rest = np.array(sorted(remaining - {u}))
            if own in remaining and not _connected(adj, rest, own):
                continue
            removed.append(u)
            removed_demand += demand[u]
            remaining.discard(u)
            break
        else:
            break
    if not removed:
        raise PlanningError(f"no unit of {agency_id} can leave without cutting its zone apart")
    free = {probe.unit_ids[u] for u in removed}
    params = dict(plan.parameters)
    params["forbidden"] = sorted({tuple(p) for p in params.get("forbidden", [])} |
                                 {(agency_id, u) for u in free})
    params["forbidden"] = [list(p) for p in params["forbidden"]]
    plan_with_penalty = Plan(**{**plan.__dict__, "parameters": params})
    return _reassign(plan_with_penalty, units, agencies, matrix, free=free, reason=f"{agency_id}: {why}",
                     agency_id=agency_id, adjacency=adjacency, **options)


# ---------------------------------------------------------------------------- helpers
def _reassign(plan: Plan, units, agencies, matrix, *, free: set, reason: str, agency_id: str, **options) -> Plan:
    from planning.allocation import AllocationModel

    locks = {u: a for u, a in plan.assignment.items() if a is not None and u not in free}
    try:
        model = _model(plan, units, agencies, matrix, extra_locks=locks, move_penalty_min=600.0, **options).solve()
        stage = "only its units moved"
    except PlanningError:
        # Neighbours are full: let other units move too, each at a heavy cost, so as few as possible do.
        model = _model(plan, units, agencies, matrix, move_penalty_min=600.0, **options).solve()
        stage = "other units moved to make room"
    assert isinstance(model, AllocationModel)
    new_assignment = {u: (None if a is None else str(a)) for u, a in model.assignment.items()}
    changes = []
    for c in diff_assignments(plan.assignment, new_assignment, why=reason):
        if c.unit_id not in free:
            c.why = f"made room for units of {agency_id} ({reason})"
        changes.append(c)
    new = Plan.from_model(model, previous=plan, why=reason)
    new.changes = changes
    new.parameters = _merge_params(plan.parameters, new.parameters)
    new.parameters["locks"] = dict(plan.parameters.get("locks", {}))
    new.events = [f"{reason}: {len(changes)} units moved ({stage})"]
    return new


def _model(plan: Plan, units, agencies, matrix, *, extra_locks: dict | None = None, move_penalty_min: float = 0.0,
           **options):
    from planning.allocation import AllocationModel, AllocationWeights

    p = plan.parameters
    weights = AllocationWeights(**{**p.get("weights", {}), "move_penalty_min": move_penalty_min})
    statuses = dict(zip(agencies["agency_id"].astype(str), agencies["status"].astype(str)))
    locks = {u: a for u, a in {**p.get("locks", {}), **(extra_locks or {})}.items()
             if statuses.get(a) in ("designated", "planned") or
             (statuses.get(a) == "suspended" and plan.assignment.get(u) == a)}
    kwargs = dict(weights=weights, travel_cap_min=p.get("travel_cap_min"), balance_band=p.get("balance_band"),
                  contiguity=p.get("contiguity", True), mountain_rule=p.get("mountain_rule", "soft"),
                  locks=locks, forbidden=[tuple(x) for x in p.get("forbidden", [])],
                  preferences=p.get("preferences") or None, pairs=p.get("pairs") or None,
                  previous=plan.assignment, suspended=p.get("suspended", []),
                  clients_per_caregiver=p.get("clients_per_caregiver"),
                  candidates_k=p.get("candidates_k", 4), time_limit_s=p.get("time_limit_s", 60.0),
                  solver=p.get("solver", "auto"), prune_above_pairs=p.get("prune_above_pairs", 2000))
    kwargs.update(options)
    return AllocationModel(units, agencies, matrix, **kwargs)


def _merge_params(old: dict, new: dict) -> dict:
    merged = dict(new)
    merged["suspended"] = sorted(set(old.get("suspended", [])) | set(new.get("suspended", [])))
    merged["forbidden"] = sorted({tuple(x) for x in old.get("forbidden", [])} |
                                 {tuple(x) for x in new.get("forbidden", [])})
    merged["forbidden"] = [list(x) for x in merged["forbidden"]]
    return merged


def _derive(plan: Plan, assignment: dict, changes: list[Change], parameters: dict, *, event: str) -> Plan:
    return Plan(version=plan.version + 1, created_at=_now(), assignment=dict(assignment), backup=dict(plan.backup),
                locked=list(plan.locked), reasons=dict(plan.reasons), parameters=parameters,
                summary=dict(plan.summary), changes=changes, events=[event], parent_version=plan.version)


def _require_agency_in_plan(plan: Plan, agency_id: str, *, allow_empty: bool = False) -> None:
    if not allow_empty and agency_id not in set(plan.assignment.values()):
        raise InputError("cannot change the plan", [Problem(f"agency {agency_id!r} holds no unit in plan "
                                                            f"version {plan.version}", value=agency_id)])


def _connected(adj, members: np.ndarray, root: int) -> bool:
    from scipy.sparse.csgraph import connected_components

    if len(members) <= 1:
        return True
    n, labels = connected_components(adj[members][:, members], directed=False)
    return n == 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _plain(value):
    """JSON-safe copy: numpy scalars to Python, tuples to lists, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
