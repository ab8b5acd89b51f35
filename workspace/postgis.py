"""PostgreSQL/PostGIS workspace store, for deployments that outgrow one GeoPackage file.

Opened through a connection URL: ``postgresql://user:password@host:5432/dbname?schema=ltci`` (``postgis://`` and
``postgresql+psycopg://`` are accepted too; ``schema`` defaults to ``public``). Needs ``psycopg`` (v3) and the
PostGIS extension in the database; both are checked on open with a message saying what to install.

The tables mirror the GeoPackage workspace one for one (``agencies`` and ``units`` with ``geometry(Point,4326)`` /
``geometry(MultiPolygon,4326)`` columns and GiST indexes; the same plan, scenario, metadata, audit and
``schema_version`` tables), and all non-spatial logic is shared with :class:`~workspace.geopackage.GeoPackageStore`
through :class:`~workspace._sql.SqlWorkspaceStore`. Every write is one PostgreSQL transaction; plan version
numbers are handed out under a per-plan advisory lock and layer imports take a table lock, so concurrent sessions
queue instead of colliding. ``backup_to(path)`` exports the whole workspace as a GeoPackage workspace file.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import shapely

from geo.errors import InputError, Problem
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

_PG_TYPES = {"text": "text", "integer": "bigint", "real": "double precision", "boolean": "boolean"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _layer_ddl(spec: LayerSpec) -> list[str]:
    columns = ", ".join(f'"{c}" {_PG_TYPES[k]}' for c, k in spec.column_kinds.items())
    return [f'CREATE TABLE "{spec.name}" (fid bigserial PRIMARY KEY, geom geometry({spec.geometry_type}, 4326), '
            f"{columns})",
            f'CREATE INDEX "{spec.name}_geom_gist" ON "{spec.name}" USING gist (geom)']


def _migration_1(cursor) -> None:
    statements = [
        "CREATE TABLE region_meta (id bigserial PRIMARY KEY, key text NOT NULL UNIQUE, value text NOT NULL)",
        "CREATE TABLE plan_versions (id bigserial PRIMARY KEY, plan_id text NOT NULL, version integer NOT NULL, "
        "created_at text NOT NULL, created_by text NOT NULL, parameters text NOT NULL, summary text NOT NULL, "
        "parent_version integer, n_units integer NOT NULL, checksum text NOT NULL, UNIQUE (plan_id, version))",
        "CREATE TABLE plan_assignments (id bigserial PRIMARY KEY, "
        "version_id bigint NOT NULL REFERENCES plan_versions (id) ON DELETE CASCADE, unit_id text NOT NULL, "
        "agency_id text, backup_agency_id text, locked boolean NOT NULL DEFAULT false, reason text, "
        "travel_min double precision, UNIQUE (version_id, unit_id))",
        "CREATE TABLE plan_changes (id bigserial PRIMARY KEY, "
        "version_id bigint NOT NULL REFERENCES plan_versions (id) ON DELETE CASCADE, unit_id text NOT NULL, "
        "from_agency text, to_agency text, why text)",
        "CREATE INDEX plan_changes_version ON plan_changes (version_id)",
        "CREATE TABLE siting_scenarios (id bigserial PRIMARY KEY, name text NOT NULL, created_at text NOT NULL, "
        "created_by text NOT NULL, agencies text NOT NULL, parameters text NOT NULL, results text NOT NULL)",
        "CREATE TABLE audit_log (id bigserial PRIMARY KEY, ts text NOT NULL, user_name text NOT NULL, "
        "action text NOT NULL, detail text NOT NULL)",
    ]
    for spec in LAYERS.values():
        statements += _layer_ddl(spec)
    for statement in statements:
        cursor.execute(statement)


def _migration_2(cursor) -> None:
    for spec in LAYERS.values():
        cursor.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{spec.name}_{spec.key}" ON "{spec.name}" ("{spec.key}")')
    cursor.execute("CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action)")


#: The PostgreSQL schema steps; numbered like the GeoPackage ones so both backends share SCHEMA_VERSION.
MIGRATIONS: list[tuple[int, str, Callable]] = [
    (1, "core tables: layers, region metadata, plans, scenarios, audit log", _migration_1),
    (2, "unique layer keys and audit index", _migration_2),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def parse_url(url: str) -> tuple[str, str, str]:
    """Split a workspace URL into (libpq conninfo URL, schema, printable location without the password)."""
    url = re.sub(r"^(postgis|postgres|postgresql\+psycopg)://", "postgresql://", url.strip())
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), "public")
    if not _IDENTIFIER.match(schema):
        raise ValueError(f"schema {schema!r} in the workspace URL must be a plain SQL identifier")
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "schema"])
    conninfo = urllib.parse.urlunsplit(parts._replace(query=rest))
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    location = urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=f"schema={schema}"))
    return conninfo, schema, location


def _import_psycopg():
    try:
        import psycopg
    except ImportError as error:
        raise ImportError("a PostgreSQL workspace needs psycopg 3: pip install 'psycopg[binary]'") from error
    return psycopg


class PostgisStore(SqlWorkspaceStore):
    """Workspace store in a PostgreSQL/PostGIS schema; see the module docstring.

    Parameters
    ----------
    url : str
        ``postgresql://user:password@host/db?schema=name``.
    create : bool
        Create the workspace tables when the schema holds none.
    """

    SCHEMA_VERSION = SCHEMA_VERSION

    def __init__(self, url: str, *, create: bool = False):
        psycopg = _import_psycopg()
        conninfo, self.schema, self.location = parse_url(url)
        self._lock = threading.RLock()
        self._connection = psycopg.connect(conninfo, autocommit=True)
        self.created = False
        try:
            self._prepare(create)
        except BaseException:
            self._connection.close()
            raise

    def _prepare(self, create: bool) -> None:
        with self._connection.cursor() as cursor:
            if cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone() is None:
                raise WorkspaceFileError(f"{self.location}: PostGIS is not installed in this database; "
                                         "run CREATE EXTENSION postgis as its owner")
            if create:
                cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            cursor.execute(f'SET search_path TO "{self.schema}", public')
        with self._transaction() as cursor:
            # One session at a time checks and migrates, so two app servers starting together do not race.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ltci-schema:{self.schema}",))
            exists = cursor.execute("SELECT to_regclass(%s)", (f'"{self.schema}".schema_version',)).fetchone()[0]
            if exists is None:
                if not create:
                    raise WorkspaceFileError(f"{self.location} holds no LTCI workspace (no schema_version table); "
                                             "open it with create=True to make one")
                cursor.execute("CREATE TABLE schema_version (id bigserial PRIMARY KEY, version integer NOT NULL "
                               "UNIQUE, applied_at text NOT NULL, description text NOT NULL)")
                self.created = True
            current = cursor.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
            if current > SCHEMA_VERSION:
                raise WorkspaceFileError(
                    f"{self.location} was written by a newer version of the app (workspace schema {current}; this "
                    f"app reads up to {SCHEMA_VERSION}). Update the app")
            for version, description, function in MIGRATIONS:
                if version > current:
                    function(cursor)
                    cursor.execute("INSERT INTO schema_version (version, applied_at, description) "
                                   "VALUES (%s, %s, %s)", (version, utc_now(), description))

    @classmethod
    def open_or_create(cls, url: str, *, seed_from: Callable | None = None) -> PostgisStore:
        """Open the workspace at ``url``, creating and seeding it when the schema holds none.

        Seeding runs under a session advisory lock and only while the workspace is still empty and unseeded
        (a ``_seeded`` metadata key marks completion), so an existing workspace is never overwritten and a seed
        interrupted half-way is redone on the next start rather than left incomplete.
        """
        store = cls(url, create=True)
        if seed_from is None:
            return store
        key = f"ltci-seed:{store.schema}"
        with store._lock, store._connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
            try:
                seeded = "_seeded" in store.get_region_meta()
                counts = store.contents()
                empty = not any(counts[k] for k in ("agencies", "units", "plan_versions", "scenarios"))
                if not seeded and empty:
                    seed_from(store)
                    store.set_region_meta({"_seeded": utc_now()}, actor=LOCAL_PLANNER)
            finally:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
        return store

    # -- connection hooks -------------------------------------------------------------------------------------
    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    @contextmanager
    def _transaction(self):
        with self._lock:
            connection = self._require_open()
            with connection.transaction(), connection.cursor() as cursor:
                yield cursor

    @contextmanager
    def _reading(self):
        with self._lock:
            connection = self._require_open()
            with connection.transaction(), connection.cursor() as cursor:
                # One snapshot for the whole read, so a plan's header and rows come from the same commit.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield cursor

    def _lock_plan(self, cursor, plan_id: str) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ltci-plan:{self.schema}:{plan_id}",))

    def _require_open(self):
        if self._connection is None:
            raise RuntimeError(f"the workspace {self.location} is closed")
        return self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # -- layers -----------------------------------------------------------------------------------------------
    def _column_kinds(self, cursor, table: str) -> dict[str, str]:
        rows = cursor.execute("SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                              (self.schema, table)).fetchall()
        kinds = {}
        for name, data_type in rows:
            if name in ("fid", "geom"):
                continue
            if data_type == "boolean":
                kinds[name] = "boolean"
            elif data_type in ("smallint", "integer", "bigint"):
                kinds[name] = "integer"
            elif data_type in ("real", "double precision", "numeric"):
                kinds[name] = "real"
            else:
                kinds[name] = "text"
        return kinds

    def _read_layer(self, spec: LayerSpec) -> gpd.GeoDataFrame:
        with self._reading() as cursor:
            kinds = self._column_kinds(cursor, spec.name)
            quoted = ", ".join(f'"{c}"' for c in kinds)
            rows = cursor.execute(f'SELECT ST_AsBinary(geom){", " + quoted if quoted else ""} FROM "{spec.name}" '
                                  "ORDER BY fid").fetchall()
        geometries = [None if r[0] is None else shapely.from_wkb(bytes(r[0])) for r in rows]
        return layer_frame(geometries, [r[1:] for r in rows], kinds)

    def _write_layer(self, spec: LayerSpec, frame, *, mode: str, actor: Actor, source: str | None) -> dict:
        actor = self._check_actor(actor)
        prepared = prepare_layer(frame, spec)
        if mode not in ("replace", "upsert"):
            raise ValueError(f"unknown write mode {mode!r}")
        with self._transaction() as cursor:
            cursor.execute(f'LOCK TABLE "{spec.name}" IN SHARE ROW EXCLUSIVE MODE')
            existing = self._column_kinds(cursor, spec.name)
            kinds, new_columns = {}, []
            for column in map(str, prepared.frame.columns):
                if column in existing:
                    kinds[column] = existing[column]
                else:
                    kinds[column] = spec.column_kinds.get(column) or infer_kind(prepared.frame[column])
                    new_columns.append(column)
            columns, rows = convert_columns(prepared, kinds)
            for column in new_columns:
                cursor.execute(f'ALTER TABLE "{spec.name}" ADD COLUMN "{column}" {_PG_TYPES[kinds[column]]}')
            existing_keys = {r[0] for r in cursor.execute(f'SELECT "{spec.key}" FROM "{spec.name}"').fetchall()}
            quoted = ", ".join(f'"{c}"' for c in ["geom", *columns])
            marks = ", ".join(["ST_GeomFromWKB(%s, 4326)"] + ["%s"] * len(columns))
            statement = f'INSERT INTO "{spec.name}" ({quoted}) VALUES ({marks})'
            if mode == "replace":
                cursor.execute(f'DELETE FROM "{spec.name}"')
            else:
                updates = ", ".join(f'"{c}" = excluded."{c}"' for c in ["geom", *columns] if c != spec.key)
                statement += f' ON CONFLICT ("{spec.key}") DO UPDATE SET {updates}'
            cursor.executemany(statement, [(shapely.to_wkb(shape, flavor="iso"), *row)
                                           for shape, row in zip(prepared.geometries, rows)])
            inserted = sum(1 for k in prepared.keys if k not in existing_keys)
            result = {"written": len(rows), "inserted": inserted if mode == "upsert" else len(rows),
                      "updated": len(rows) - inserted if mode == "upsert" else 0,
                      "removed": len(existing_keys) if mode == "replace" else 0}
            self._audit(cursor, actor, f"{mode}_{spec.name}", {**result, "source": source,
                                                               "new_columns": new_columns})
        return result

    def _delete_rows(self, spec: LayerSpec, ids: Iterable[str], *, actor: Actor) -> int:
        actor = self._check_actor(actor)
        wanted = [str(i) for i in ids]
        with self._transaction() as cursor:
            cursor.execute(f'LOCK TABLE "{spec.name}" IN SHARE ROW EXCLUSIVE MODE')
            present = {r[0] for r in cursor.execute(f'SELECT "{spec.key}" FROM "{spec.name}"').fetchall()}
            unknown = [i for i in wanted if i not in present]
            if unknown:
                raise InputError(f"cannot delete from the {spec.name} layer",
                                 [Problem(f"no {spec.label} with {spec.key} {i!r}", column=spec.key, value=i)
                                  for i in unknown])
            cursor.execute(f'DELETE FROM "{spec.name}" WHERE "{spec.key}" = ANY(%s)', (wanted,))
            self._audit(cursor, actor, f"delete_{spec.name}", {"ids": wanted})
        return len(wanted)

    # -- administration ---------------------------------------------------------------------------------------
    _COPIED_TABLES = {
        "region_meta": ("id", "key", "value"),
        "plan_versions": ("id", "plan_id", "version", "created_at", "created_by", "parameters", "summary",
                          "parent_version", "n_units", "checksum"),
        "plan_assignments": ("id", "version_id", "unit_id", "agency_id", "backup_agency_id", "locked", "reason",
                             "travel_min"),
        "plan_changes": ("id", "version_id", "unit_id", "from_agency", "to_agency", "why"),
        "siting_scenarios": ("id", "name", "created_at", "created_by", "agencies", "parameters", "results"),
        "audit_log": ("id", "ts", "user_name", "action", "detail"),
    }

    def backup_to(self, path: str | Path) -> Path:
        """Export the whole workspace, from one snapshot, as a GeoPackage workspace file at ``path``."""
        from workspace.geopackage import GeoPackageStore, create_workspace_file

        target = Path(path)
        if target.exists():
            raise FileExistsError(f"{target} exists; choose a new backup file name")
        with self._reading() as cursor:
            layers = {}
            for spec in LAYERS.values():
                kinds = self._column_kinds(cursor, spec.name)
                quoted = ", ".join(f'"{c}"' for c in kinds)
                rows = cursor.execute(f'SELECT ST_AsBinary(geom), {quoted} FROM "{spec.name}" ORDER BY fid').fetchall()
                geometries = [None if r[0] is None else shapely.from_wkb(bytes(r[0])) for r in rows]
                layers[spec.name] = layer_frame(geometries, [r[1:] for r in rows], kinds)
            tables = {name: cursor.execute(f"SELECT {', '.join(cols)} FROM {name} ORDER BY id").fetchall()
                      for name, cols in self._COPIED_TABLES.items()}
        temporary = target.with_name(f".{target.stem}.export.gpkg")
        temporary.unlink(missing_ok=True)
        create_workspace_file(temporary)
        store = GeoPackageStore(temporary)
        try:
            for spec in LAYERS.values():
                if len(layers[spec.name]):
                    store._write_layer(spec, layers[spec.name], mode="replace", actor=LOCAL_PLANNER,
                                       source=self.location)
            with store._transaction() as out:
                out.execute("DELETE FROM audit_log")  # the export's own entries; the copied log follows
                for name, columns in self._COPIED_TABLES.items():
                    marks = ", ".join("?" for _ in columns)
                    out.executemany(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})", tables[name])
            store.backup_to(target)
        finally:
            store.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{temporary}{suffix}").unlink(missing_ok=True)
        return target
