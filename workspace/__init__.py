"""Workspace persistence: the agency registry, units, plans, scenarios and audit log of one region.

``open_workspace(path_or_url, seed_from=...)`` is the entry point; see :mod:`workspace.store` for the interface
and :mod:`workspace.auth` for planner login. Names are imported lazily so ``python -m workspace.auth hash``
does not load geopandas.
"""

from importlib import import_module

_EXPORTS = {
    "Actor": "workspace.auth", "LOCAL_PLANNER": "workspace.auth", "RESIDENT": "workspace.auth",
    "check_login": "workspace.auth", "login_configured": "workspace.auth", "require_planner": "workspace.auth",
    "Plan": "workspace.store", "PlanIntegrityError": "workspace.store", "PlanVersion": "workspace.store",
    "Scenario": "workspace.store", "WorkspaceFileError": "workspace.store", "WorkspaceStore": "workspace.store",
    "open_store": "workspace.store", "open_workspace": "workspace.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'workspace' has no attribute {name!r}")
