"""The workspace store: one interface, a GeoPackage file by default, PostgreSQL/PostGIS when a deployment grows.

A workspace holds everything a bureau edits over months: the agency registry and the planning units (spatial
layers), region metadata, allocation plan versions with their assignments, parameters and change logs, siting
scenarios, and an audit log of who changed what and when.

Backends
--------
``open_store(target)`` picks the backend from ``target``:

- a file path, or ``gpkg:``/``file:`` + path: :class:`~workspace.geopackage.GeoPackageStore`. One GeoPackage
  (SQLite) file that opens in QGIS: ``agencies`` (points) and ``units`` (multipolygons) are feature layers, every
  other table is registered in ``gpkg_contents`` as ``attributes``. WAL journal with a busy timeout, so several
  app sessions can write at once; each write is a single SQLite transaction.
- ``postgresql://`` / ``postgres://`` / ``postgis://`` URL: :class:`~workspace.postgis.PostgisStore`, the same
  tables in a PostgreSQL schema with PostGIS geometry columns (needs ``psycopg``).

``open_workspace(target, seed_from=...)`` opens a workspace, creating it from seed data on first start; an
existing workspace is never overwritten.

The interface (:class:`WorkspaceStore`)
---------------------------------------
Layers, keyed by ``agency_id`` / ``unit_id`` and following :mod:`geo.schema`:
    ``read_agencies() -> GeoDataFrame``, ``replace_agencies(gdf, *, actor, source)``,
    ``upsert_agencies(gdf, *, actor, source)``, ``delete_agencies(ids, *, actor)``, and the same for ``units``.
    A replace or upsert lands whole or not at all; columns beyond the layer's are added to it.
Region metadata: ``get_region_meta() -> dict``, ``set_region_meta(values, *, actor)`` (JSON values).
Plans (never overwritten; every save makes version n+1 of its ``plan_id``):
    ``save_plan(plan_id, assignments, *, parameters, summary, changes, parent_version, actor) -> PlanVersion``,
    ``list_plans()``, ``list_plan_versions(plan_id)``, ``load_plan(plan_id, version=None) -> Plan``,
    ``compare_plans(plan_id, version_a, version_b) -> DataFrame``, ``restore_plan(plan_id, version, *, actor)``.
Siting scenarios: ``save_scenario(name, agencies, *, parameters, results, actor) -> int``, ``list_scenarios()``,
    ``load_scenario(id_or_name) -> Scenario``, ``delete_scenario(scenario_id, *, actor)``.
Audit: ``record_audit(action, detail, *, actor)``, ``read_audit_log(*, limit, action) -> DataFrame``; every write
    method above records its own entry in the same transaction as the change.
Administration: ``schema_version()``, ``contents() -> dict`` (counts per table), ``backup_to(path)``, ``close()``.

Every write method takes ``actor`` (:class:`workspace.auth.Actor`; default the local planner of open demo mode)
and raises ``PermissionError`` for a resident session. Assignments are a DataFrame with ``unit_id`` (required),
``agency_id``, ``backup_agency_id``, ``locked``, ``reason`` and ``travel_min``; change logs a DataFrame (or list
of dicts) with ``unit_id``, ``from_agency``, ``to_agency``, ``why``.

A new backend subclasses :class:`WorkspaceStore` (or :class:`workspace._sql.SqlWorkspaceStore`, which holds
all non-spatial logic in portable SQL and needs only connection, transaction and layer hooks).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from workspace.auth import LOCAL_PLANNER, Actor

#: Columns of a plan's assignment table, in order.
ASSIGNMENT_COLUMNS: tuple[str, ...] = ("unit_id", "agency_id", "backup_agency_id", "locked", "reason", "travel_min")
#: Columns of a plan's change log, in order.
CHANGE_COLUMNS: tuple[str, ...] = ("unit_id", "from_agency", "to_agency", "why")
#: Columns of :meth:`WorkspaceStore.compare_plans`.
DIFF_COLUMNS: tuple[str, ...] = ("unit_id", "from_agency", "to_agency", "from_backup", "to_backup")

_URL_SCHEMES = ("postgresql://", "postgres://", "postgis://", "postgresql+psycopg://")


class WorkspaceFileError(ValueError):
    """A workspace that cannot be opened: not a GeoPackage, not a workspace, or of a newer schema."""


class PlanIntegrityError(RuntimeError):
    """A stored plan whose rows do not match the row count and checksum recorded with it."""


@dataclass(frozen=True)
class PlanVersion:
    """One saved version of a plan (its metadata; the rows are in :class:`Plan`)."""

    plan_id: str
    version: int
    created_at: str
    created_by: str
    parameters: dict
    summary: dict
    parent_version: int | None
    n_units: int
    checksum: str


@dataclass
class Plan:
    """A loaded plan version: its metadata, per-unit assignments and change log."""

    meta: PlanVersion
    assignments: pd.DataFrame
    changes: pd.DataFrame

    @property
    def plan_id(self) -> str:
        return self.meta.plan_id

    @property
    def version(self) -> int:
        return self.meta.version


@dataclass
class Scenario:
    """A saved siting scenario: the agency set as GeoJSON plus the parameters and results of the run."""

    scenario_id: int
    name: str
    created_at: str
    created_by: str
    agencies: dict
    parameters: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)

    def agencies_frame(self) -> gpd.GeoDataFrame:
        """The scenario's agency set as a GeoDataFrame (EPSG:4326)."""
        features = self.agencies.get("features", [])
        if not features:
            return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs="EPSG:4326"))
        return gpd.GeoDataFrame.from_features(features, crs="EPSG:4326")


class WorkspaceStore(ABC):
    """Abstract workspace store; see the module docstring for the contract every backend keeps."""

    #: Where the store lives: a file path or a connection URL (without password).
    location: str

    # -- layers ---------------------------------------------------------------------------------------------
    @abstractmethod
    def read_agencies(self) -> gpd.GeoDataFrame: ...

    @abstractmethod
    def replace_agencies(self, agencies: gpd.GeoDataFrame, *, actor: Actor = LOCAL_PLANNER,
                         source: str | None = None) -> int: ...

    @abstractmethod
    def upsert_agencies(self, agencies: gpd.GeoDataFrame, *, actor: Actor = LOCAL_PLANNER,
                        source: str | None = None) -> dict: ...

    @abstractmethod
    def delete_agencies(self, agency_ids: Iterable[str], *, actor: Actor = LOCAL_PLANNER) -> int: ...

    @abstractmethod
    def read_units(self) -> gpd.GeoDataFrame: ...

    @abstractmethod
    def replace_units(self, units: gpd.GeoDataFrame, *, actor: Actor = LOCAL_PLANNER,
                      source: str | None = None) -> int: ...

    @abstractmethod
    def upsert_units(self, units: gpd.GeoDataFrame, *, actor: Actor = LOCAL_PLANNER,
                     source: str | None = None) -> dict: ...

    @abstractmethod
    def delete_units(self, unit_ids: Iterable[str], *, actor: Actor = LOCAL_PLANNER) -> int: ...

    # -- region metadata ------------------------------------------------------------------------------------
    @abstractmethod
    def get_region_meta(self) -> dict: ...

    @abstractmethod
    def set_region_meta(self, values: Mapping, *, actor: Actor = LOCAL_PLANNER) -> None: ...

    # -- plans ----------------------------------------------------------------------------------------------
    @abstractmethod
    def save_plan(self, plan_id: str, assignments: pd.DataFrame, *, parameters: Mapping | None = None,
                  summary: Mapping | None = None, changes=None, parent_version: int | None = None,
                  actor: Actor = LOCAL_PLANNER) -> PlanVersion: ...

    @abstractmethod
    def list_plans(self) -> pd.DataFrame: ...

    @abstractmethod
    def list_plan_versions(self, plan_id: str) -> pd.DataFrame: ...

    @abstractmethod
    def load_plan(self, plan_id: str, version: int | None = None) -> Plan: ...

    @abstractmethod
    def compare_plans(self, plan_id: str, version_a: int, version_b: int) -> pd.DataFrame: ...

    @abstractmethod
    def restore_plan(self, plan_id: str, version: int, *, actor: Actor = LOCAL_PLANNER) -> PlanVersion: ...

    # -- siting scenarios -----------------------------------------------------------------------------------
    @abstractmethod
    def save_scenario(self, name: str, agencies, *, parameters: Mapping | None = None,
                      results: Mapping | None = None, actor: Actor = LOCAL_PLANNER) -> int: ...

    @abstractmethod
    def list_scenarios(self) -> pd.DataFrame: ...

    @abstractmethod
    def load_scenario(self, scenario: int | str) -> Scenario: ...

    @abstractmethod
    def delete_scenario(self, scenario_id: int, *, actor: Actor = LOCAL_PLANNER) -> None: ...

    # -- audit ----------------------------------------------------------------------------------------------
    @abstractmethod
    def record_audit(self, action: str, detail: Mapping | None = None, *, actor: Actor = LOCAL_PLANNER) -> None: ...

    @abstractmethod
    def read_audit_log(self, *, limit: int | None = None, action: str | None = None) -> pd.DataFrame: ...

    # -- administration -------------------------------------------------------------------------------------
    @abstractmethod
    def schema_version(self) -> int: ...

    @abstractmethod
    def contents(self) -> dict: ...

    @abstractmethod
    def backup_to(self, path: str | Path) -> Path: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _is_url(target) -> bool:
    return isinstance(target, str) and target.lower().startswith(_URL_SCHEMES)


def open_store(target: str | Path, *, create: bool = False) -> WorkspaceStore:
    """Open a workspace store from a file path or a PostgreSQL URL.

    Parameters
    ----------
    target : str or Path
        A GeoPackage path (optionally prefixed ``gpkg:`` or ``file:``) or a ``postgresql://`` URL.
    create : bool
        Create an empty workspace when none exists. Without it a missing file is an error.
    """
    if _is_url(target):
        from workspace.postgis import PostgisStore

        return PostgisStore(str(target), create=create)
    from workspace.geopackage import GeoPackageStore

    text = str(target)
    for prefix in ("gpkg:", "file:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return GeoPackageStore(Path(text), create=create)


def open_workspace(target: str | Path, *,
                   seed_from: Callable[[WorkspaceStore], None] | None = None) -> WorkspaceStore:
    """Open the workspace at ``target``, creating it on first start; never overwrite an existing one.

    Parameters
    ----------
    target : str or Path
        GeoPackage path or PostgreSQL URL.
    seed_from : callable, optional
        Called once with the new, empty store to fill it (for example the demo region from ``data/``) using the
        store's own write methods. For a GeoPackage the file is built beside its final name and moved into place
        only when seeding succeeded, so a crash or a failed seed never leaves a half-made workspace, and two
        processes starting at once end up sharing one file.
    """
    if _is_url(target):
        from workspace.postgis import PostgisStore

        return PostgisStore.open_or_create(str(target), seed_from=seed_from)
    from workspace.geopackage import GeoPackageStore

    return GeoPackageStore.open_or_create(Path(str(target).removeprefix("gpkg:").removeprefix("file:")),
                                          seed_from=seed_from)


def dumps(value) -> str:
    """JSON text for a parameters/summary/detail mapping (numpy scalars and arrays allowed)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_json_default)


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store a {type(value).__name__} as JSON; convert it to numbers, text, lists or dicts")
