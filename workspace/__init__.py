"""Workspace persistence: the agency registry, units, plans, scenarios and audit log of one region.

``open_workspace(path_or_url, seed_from=...)`` is the entry point; see :mod:`workspace.store` for the interface
and :mod:`workspace.auth` for planner login.
"""

from workspace.auth import LOCAL_PLANNER, RESIDENT, Actor, check_login, login_configured, require_planner
from workspace.store import (
    Plan,
    PlanIntegrityError,
    PlanVersion,
    Scenario,
    WorkspaceFileError,
    WorkspaceStore,
    open_store,
    open_workspace,
)

__all__ = [
    "LOCAL_PLANNER", "RESIDENT", "Actor", "check_login", "login_configured", "require_planner", "Plan",
    "PlanIntegrityError", "PlanVersion", "Scenario", "WorkspaceFileError", "WorkspaceStore", "open_store",
    "open_workspace",
]
