"""The embedded workspace: one GeoPackage (SQLite) file that QGIS opens as it is.

Layout
------
``agencies`` (POINT) and ``units`` (MULTIPOLYGON) are feature layers created by GDAL (through pyogrio), so their
``gpkg_contents``, ``gpkg_geometry_columns``, R-tree index and triggers are exactly what GDAL and QGIS expect.
Rows are then written with ``sqlite3`` in GeoPackage binary (:mod:`workspace.gpkg_binary`) inside one transaction
per import, so an import lands whole or not at all; GDAL's own writes could not share that transaction.
The other tables (``region_meta``, ``plan_versions``, ``plan_assignments``, ``plan_changes``, ``siting_scenarios``,
``audit_log``, ``schema_version``) are plain SQLite tables registered as ``attributes`` in ``gpkg_contents``.

Durability and concurrency: WAL journal, ``synchronous=FULL``, a busy timeout, and ``BEGIN IMMEDIATE`` for every
write, so two app sessions (threads or processes) queue rather than fail or interleave.

Do not open the workspace with GDAL (pyogrio, fiona, ``geopandas.read_file``) in a process that holds an open
store: GDAL links its own copy of SQLite, and two copies in one process silently break each other's locks (GDAL
then deletes the WAL under the store's connection and commits are lost; sqlite.org/howtocorrupt.html, 2.2.1).
Read layers with :meth:`GeoPackageStore.read_agencies` / ``read_units``; other processes (QGIS) are safe.

Schema versions live in the ``schema_version`` table (the GeoPackage ``user_version`` belongs to the GeoPackage
spec). :data:`MIGRATIONS` lists every step; opening an older file applies the missing steps in one transaction
after copying the file aside; a newer file is refused.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from geo.errors import InputError, Problem
from geo.schema import CRS
from workspace import gpkg_binary
from workspace._sql import (
    LAYERS,
    LayerSpec,
    SqlWorkspaceStore,
    convert_columns,
    infer_kind,
    layer_frame,
    prepare_layer,
    utc_now,
)
from workspace.auth import LOCAL_PLANNER, Actor
from workspace.store import WorkspaceFileError

_SQLITE_MAGIC = b"SQLite format 3\x00"
_GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
_SQL_TYPES = {"text": "TEXT", "integer": "INTEGER", "real": "REAL", "boolean": "BOOLEAN"}

#: Tables this module adds beside the layers, with their description in gpkg_contents.
ATTRIBUTE_TABLES: dict[str, str] = {
    "schema_version": "LTCI workspace schema migrations applied",
    "region_meta": "Region metadata (key -> JSON value)",
    "plan_versions": "Allocation plan versions (never overwritten)",
    "plan_assignments": "Per-unit assignments of each plan version",
    "plan_changes": "Change log of each plan version (unit, from, to, why)",
    "siting_scenarios": "Saved siting scenarios (agency set as GeoJSON, parameters, results)",
    "audit_log": "Who changed what and when",
}


def _register(cursor, table: str) -> None:
    cursor.execute(
        "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, last_change) "
        "VALUES (?, 'attributes', ?, ?, ?)", (table, table, ATTRIBUTE_TABLES[table], _gpkg_now()))


def _gpkg_now() -> str:
    # gpkg_contents.last_change must be 'YYYY-MM-DDTHH:MM:SS.SSSZ' (GeoPackage 1.4, table 5).
    return utc_now()[:23] + "Z"


def _migration_1(cursor) -> None:
    """Core tables: region metadata, plans, scenarios, audit log."""
    # One statement at a time: executescript() would COMMIT the migration's transaction before running.
    script = """
        CREATE TABLE region_meta (
            id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, value TEXT NOT NULL);
        CREATE TABLE plan_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT, plan_id TEXT NOT NULL, version INTEGER NOT NULL,
            created_at TEXT NOT NULL, created_by TEXT NOT NULL, parameters TEXT NOT NULL, summary TEXT NOT NULL,
            parent_version INTEGER, n_units INTEGER NOT NULL, checksum TEXT NOT NULL,
            UNIQUE (plan_id, version));
        CREATE TABLE plan_assignments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            version_id INTEGER NOT NULL REFERENCES plan_versions (id) ON DELETE CASCADE,
            unit_id TEXT NOT NULL, agency_id TEXT, backup_agency_id TEXT, locked BOOLEAN NOT NULL DEFAULT 0,
            reason TEXT, travel_min REAL, UNIQUE (version_id, unit_id));
        CREATE TABLE plan_changes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            version_id INTEGER NOT NULL REFERENCES plan_versions (id) ON DELETE CASCADE,
            unit_id TEXT NOT NULL, from_agency TEXT, to_agency TEXT, why TEXT);
        CREATE INDEX plan_changes_version ON plan_changes (version_id);
        CREATE TABLE siting_scenarios (
            id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, created_at TEXT NOT NULL,
            created_by TEXT NOT NULL, agencies TEXT NOT NULL, parameters TEXT NOT NULL, results TEXT NOT NULL);
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, user_name TEXT NOT NULL,
            action TEXT NOT NULL, detail TEXT NOT NULL)
    """
    for statement in script.split(";"):
        if statement.strip():
            cursor.execute(statement)
    for table in ("region_meta", "plan_versions", "plan_assignments", "plan_changes", "siting_scenarios",
                  "audit_log"):
        _register(cursor, table)


def _migration_2(cursor) -> None:
    """Unique layer keys (needed for upserts) and an index for filtering the audit log by action."""
    for spec in LAYERS.values():
        duplicates = cursor.execute(f'SELECT "{spec.key}", count(*) FROM "{spec.name}" GROUP BY "{spec.key}" '
                                    "HAVING count(*) > 1 LIMIT 5").fetchall()
        if duplicates:
            raise WorkspaceFileError(f"cannot upgrade the workspace: the {spec.name} layer repeats {spec.key} "
                                     f"{[d[0] for d in duplicates]}; fix them in QGIS and open it again")
        cursor.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{spec.name}_{spec.key}" ON "{spec.name}" ("{spec.key}")')
    cursor.execute("CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action)")


#: Every schema step, in order: (version, description, function(cursor)). Append; never edit a shipped step.
MIGRATIONS: list[tuple[int, str, Callable]] = [
    (1, "core tables: region metadata, plans, scenarios, audit log", _migration_1),
    (2, "unique layer keys and audit index", _migration_2),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _connect(path: Path, *, busy_timeout_s: float) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    gpkg_binary.register_sql_functions(connection)
    return connection


def inspect_file(path: Path) -> int:
    """Check that ``path`` is an LTCI workspace GeoPackage; return its schema version.

    Raises :class:`WorkspaceFileError` with a message naming what is wrong and what to do.
    """
    if not path.exists():
        raise FileNotFoundError(f"no workspace at {path}")
    if path.is_dir():
        raise WorkspaceFileError(f"{path} is a folder, not a GeoPackage workspace file")
    with open(path, "rb") as handle:
        head = handle.read(len(_SQLITE_MAGIC))
    if len(head) == 0:
        raise WorkspaceFileError(f"{path} is empty, not a GeoPackage; delete it or restore a backup")
    if head != _SQLITE_MAGIC:
        raise WorkspaceFileError(f"{path} is not a GeoPackage: it is not an SQLite database "
                                 f"(it starts with {head[:8]!r}); choose a .gpkg workspace file")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            application_id = connection.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = None
            if "schema_version" in tables:
                version = connection.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise WorkspaceFileError(f"{path} is not a readable GeoPackage ({error}); restore a backup") from error
    if application_id != _GPKG_APPLICATION_ID or "gpkg_contents" not in tables:
        raise WorkspaceFileError(f"{path} is an SQLite database but not a GeoPackage (no GPKG application id or "
                                 "gpkg_contents table)")
    if "schema_version" not in tables or version is None:
        raise WorkspaceFileError(f"{path} is a GeoPackage but not an LTCI workspace (no schema_version table); "
                                 "import its layers into a workspace instead")
    if int(version) > SCHEMA_VERSION:
        raise WorkspaceFileError(
            f"{path} was written by a newer version of the app (workspace schema {version}; this app reads up to "
            f"{SCHEMA_VERSION}). Update the app, or open a backup made before the upgrade")
    return int(version)


def _empty_layer_frame(spec: LayerSpec) -> gpd.GeoDataFrame:
    dtypes = {"text": object, "integer": "int64", "real": "float64", "boolean": "bool"}
    frame = pd.DataFrame({c: pd.Series([], dtype=dtypes[k]) for c, k in spec.column_kinds.items()})
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=CRS))


def _apply_migrations(connection: sqlite3.Connection, *, upto: int | None = None) -> list[int]:
    """Apply the missing migrations in one transaction; returns the versions applied."""
    applied: list[int] = []
    connection.execute("BEGIN IMMEDIATE")
    try:
        cursor = connection.cursor()
        cursor.execute("CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                       "version INTEGER NOT NULL UNIQUE, applied_at TEXT NOT NULL, description TEXT NOT NULL)")
        _register(cursor, "schema_version")
        current = cursor.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        for version, description, function in MIGRATIONS:
            if version <= current or (upto is not None and version > upto):
                continue
            function(cursor)
            cursor.execute("INSERT INTO schema_version (version, applied_at, description) VALUES (?, ?, ?)",
                           (version, utc_now(), description))
            applied.append(version)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return applied


def create_workspace_file(path: Path, *, upto: int | None = None) -> None:
    """Write a new, empty workspace at ``path`` (which must not exist): layers by GDAL, then the migrations."""
    if path.exists():
        raise FileExistsError(f"{path} exists; a workspace is never overwritten")
    for spec in LAYERS.values():
        pyogrio.write_dataframe(_empty_layer_frame(spec), path, layer=spec.name, driver="GPKG",
                                geometry_type=spec.geometry_type)
    connection = _connect(path, busy_timeout_s=30)
    try:
        _apply_migrations(connection, upto=upto)
    finally:
        connection.close()


class GeoPackageStore(SqlWorkspaceStore):
    """Workspace store in one GeoPackage file; see the module docstring.

    Parameters
    ----------
    path : str or Path
        The ``.gpkg`` file.
    create : bool
        Create an empty workspace when the file does not exist.
    busy_timeout_s : float
        How long a write waits for another session's write to finish before failing.
    """

    SCHEMA_VERSION = SCHEMA_VERSION

    def __init__(self, path: str | Path, *, create: bool = False, busy_timeout_s: float = 60.0):
        self.path = Path(path)
        self.location = str(self.path)
        if create and not self.path.exists():
            _create_atomically(self.path, seed_from=None)
        version = inspect_file(self.path)
        self._lock = threading.RLock()
        self._connection = _connect(self.path, busy_timeout_s=busy_timeout_s)
        self._connection.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed plan survives power loss too, not only a killed process; the cost is one fsync.
        self._connection.execute("PRAGMA synchronous = FULL")
        self._connection.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            self._upgrade(version)

    def _upgrade(self, version: int) -> None:
        # Keep the old file beside the new one: a migration is transactional, but a bureau may still want
        # the exact pre-upgrade state (or need it to go back to the previous app version).
        self.backup_to(self.path.with_name(f"{self.path.stem}.schema{version}.bak{self.path.suffix}"))
        with self._lock:
            _apply_migrations(self._connection)

    @classmethod
    def open_or_create(cls, path: Path, *, seed_from: Callable | None = None) -> GeoPackageStore:
        """Open ``path``; if it does not exist, build it (seeded) beside its final name and move it in place."""
        path = Path(path)
        if not path.exists():
            _create_atomically(path, seed_from=seed_from)
        return cls(path)

    # -- connection hooks -------------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self):
        with self._lock:
            connection = self._require_open()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection.cursor()
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    @contextmanager
    def _reading(self):
        with self._lock:
            connection = self._require_open()
            # One read transaction = one WAL snapshot, so a plan's header and rows come from the same commit.
            connection.execute("BEGIN")
            try:
                yield connection.cursor()
            finally:
                connection.execute("COMMIT")

    def _require_open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError(f"the workspace {self.path} is closed")
        return self._connection

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # -- layers -----------------------------------------------------------------------------------------------
    def _read_layer(self, spec: LayerSpec) -> gpd.GeoDataFrame:
        # Read through sqlite3, not GDAL: GDAL bundles its own SQLite, and two SQLite copies in one process
        # break each other's POSIX locks; GDAL then believes it is the last user, checkpoints and deletes the
        # WAL under our open connection, and later commits vanish (sqlite.org/howtocorrupt.html, 2.2.1).
        with self._reading() as cursor:
            kinds = self._column_kinds(cursor, spec.name)
            geometry_column, _ = self._geometry_column(cursor, spec.name)
            quoted = ", ".join(f'"{c}"' for c in [geometry_column, *kinds])
            rows = cursor.execute(f'SELECT {quoted} FROM "{spec.name}" ORDER BY fid').fetchall()
        geometries = gpkg_binary.decode_geometries([r[0] for r in rows])
        return layer_frame(geometries, [r[1:] for r in rows], kinds)

    @staticmethod
    def _column_kinds(cursor, table: str) -> dict[str, str]:
        kinds = {}
        for _, name, declared, *_ in cursor.execute(f'PRAGMA table_info("{table}")').fetchall():
            declared = (declared or "").upper()
            if name in ("fid", "geom"):
                continue
            if declared == "BOOLEAN":
                kinds[name] = "boolean"
            elif "INT" in declared:
                kinds[name] = "integer"
            elif declared in ("REAL", "DOUBLE", "FLOAT"):
                kinds[name] = "real"
            else:
                kinds[name] = "text"
        return kinds

    def _geometry_column(self, cursor, table: str) -> tuple[str, int]:
        row = cursor.execute("SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?",
                             (table,)).fetchone()
        if row is None:
            raise WorkspaceFileError(f"{self.path}: the {table} layer is missing from gpkg_geometry_columns")
        return row[0], int(row[1])

    def _write_layer(self, spec: LayerSpec, frame, *, mode: str, actor: Actor, source: str | None) -> dict:
        actor = self._check_actor(actor)
        prepared = prepare_layer(frame, spec)
        with self._transaction() as cursor:
            existing = self._column_kinds(cursor, spec.name)
            kinds, new_columns = {}, []
            for column in map(str, prepared.frame.columns):
                if column.lower() in {c.lower() for c in existing}:
                    kinds[column] = next(k for c, k in existing.items() if c.lower() == column.lower())
                    continue
                kinds[column] = spec.column_kinds.get(column) or infer_kind(prepared.frame[column])
                new_columns.append(column)
            columns, rows = convert_columns(prepared, kinds)
            for column in new_columns:
                cursor.execute(f'ALTER TABLE "{spec.name}" ADD COLUMN "{column}" {_SQL_TYPES[kinds[column]]}')
            geometry_column, srs_id = self._geometry_column(cursor, spec.name)
            before = cursor.execute(f'SELECT "{spec.key}" FROM "{spec.name}"').fetchall()
            existing_keys = {r[0] for r in before}
            quoted = ", ".join(f'"{c}"' for c in [geometry_column, *columns])
            marks = ", ".join("?" for _ in range(len(columns) + 1))
            statement = f'INSERT INTO "{spec.name}" ({quoted}) VALUES ({marks})'
            if mode == "replace":
                cursor.execute(f'DELETE FROM "{spec.name}"')
            elif mode == "upsert":
                updates = ", ".join(f'"{c}" = excluded."{c}"' for c in [geometry_column, *columns] if c != spec.key)
                statement += f' ON CONFLICT ("{spec.key}") DO UPDATE SET {updates}'
            else:
                raise ValueError(f"unknown write mode {mode!r}")
            # A generator: geometries are encoded while rows stream into the open transaction, so a failure
            # at any row (bad geometry, killed process) happens with earlier rows written and must roll back.
            cursor.executemany(statement, (
                (gpkg_binary.encode_geometry(shape, srs_id=srs_id), *row)
                for shape, row in zip(prepared.geometries, rows)))
            self._touch_layer(cursor, spec.name, geometry_column)
            inserted = sum(1 for k in prepared.keys if k not in existing_keys)
            result = {"written": len(rows), "inserted": inserted if mode == "upsert" else len(rows),
                      "updated": len(rows) - inserted if mode == "upsert" else 0,
                      "removed": len(existing_keys) if mode == "replace" else 0}
            self._audit(cursor, actor, f"{mode}_{spec.name}",
                        {**result, "source": source, "new_columns": new_columns})
        return result

    def _touch_layer(self, cursor, table: str, geometry_column: str) -> None:
        """Refresh the layer's extent and last_change in gpkg_contents, which QGIS uses to zoom to a layer."""
        rtree = f"rtree_{table}_{geometry_column}"
        has_rtree = cursor.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (rtree,)).fetchone()
        if has_rtree:
            extent = cursor.execute(f'SELECT min(minx), min(miny), max(maxx), max(maxy) FROM "{rtree}"').fetchone()
        else:
            extent = (cursor.execute(f'SELECT min(ST_MinX("{geometry_column}")), min(ST_MinY("{geometry_column}")), '
                                     f'max(ST_MaxX("{geometry_column}")), max(ST_MaxY("{geometry_column}")) '
                                     f'FROM "{table}"').fetchone())
        cursor.execute("UPDATE gpkg_contents SET last_change = ?, min_x = ?, min_y = ?, max_x = ?, max_y = ? "
                       "WHERE table_name = ?", (_gpkg_now(), *extent, table))

    def _delete_rows(self, spec: LayerSpec, ids: Iterable[str], *, actor: Actor) -> int:
        actor = self._check_actor(actor)
        wanted = [str(i) for i in ids]
        with self._transaction() as cursor:
            present = {r[0] for r in cursor.execute(f'SELECT "{spec.key}" FROM "{spec.name}"')}
            unknown = [i for i in wanted if i not in present]
            if unknown:
                raise InputError(f"cannot delete from the {spec.name} layer",
                                 [Problem(f"no {spec.label} with {spec.key} {i!r}", column=spec.key, value=i)
                                  for i in unknown])
            cursor.executemany(f'DELETE FROM "{spec.name}" WHERE "{spec.key}" = ?', [(i,) for i in wanted])
            geometry_column, _ = self._geometry_column(cursor, spec.name)
            self._touch_layer(cursor, spec.name, geometry_column)
            self._audit(cursor, actor, f"delete_{spec.name}", {"ids": wanted})
        return len(wanted)

    # -- administration ---------------------------------------------------------------------------------------
    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` of the file: ``"ok"`` or SQLite's list of problems."""
        with self._reading() as cursor:
            rows = cursor.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(r[0] for r in rows)

    def backup_to(self, path: str | Path) -> Path:
        """Copy the workspace to ``path`` with SQLite's online backup API (safe while others write).

        The copy is a self-contained GeoPackage (rollback journal, no ``-wal`` file beside it), written under a
        temporary name and renamed, so ``path`` is never a half-written file.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            destination = sqlite3.connect(temporary, isolation_level=None)
            try:
                with self._lock:
                    self._require_open().backup(destination)
                destination.execute("PRAGMA journal_mode = DELETE")
            finally:
                destination.close()
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target


def _create_atomically(path: Path, *, seed_from: Callable | None) -> None:
    """Build a workspace under a temporary name, seed it, and link it into place only if ``path`` is still free."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex}.creating.gpkg")
    try:
        create_workspace_file(temporary)
        if seed_from is not None:
            store = GeoPackageStore(temporary)
            try:
                seed_from(store)
                store.record_audit("create_workspace", {"seeded": True}, actor=LOCAL_PLANNER)
            finally:
                store.close()
        # Fold the WAL into the file so the single file we link holds everything.
        connection = sqlite3.connect(temporary, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode = DELETE")
        finally:
            connection.close()
        try:
            os.link(temporary, path)  # fails if another process created the workspace first: theirs wins
        except FileExistsError:
            pass
        except OSError:
            if not path.exists():
                os.replace(temporary, path)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{temporary}{suffix}").unlink(missing_ok=True)
