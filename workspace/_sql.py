"""Backend-neutral store logic in portable SQL: plans, scenarios, region metadata, audit, layer validation.

SQL here uses ``?`` placeholders and only syntax SQLite (>= 3.35) and PostgreSQL share (``INSERT ... RETURNING``,
``ON CONFLICT``); a backend converts placeholders in :meth:`SqlWorkspaceStore._sql` and supplies connections,
transactions and the spatial layers.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import InputError, Problem
from geo.schema import AGENCY_COLUMNS, CRS, UNIT_COLUMNS
from workspace.auth import LOCAL_PLANNER, Actor, require_planner
from workspace.store import (
    ASSIGNMENT_COLUMNS,
    CHANGE_COLUMNS,
    DIFF_COLUMNS,
    Plan,
    PlanIntegrityError,
    PlanVersion,
    Scenario,
    WorkspaceStore,
    dumps,
)


@dataclass(frozen=True)
class LayerSpec:
    """A spatial layer: its key column, geometry, and the types of its contract columns."""

    name: str
    key: str
    geometry_type: str  # the declared GeoPackage / PostGIS type
    accepted_types: tuple[str, ...]
    column_kinds: dict

    @property
    def label(self) -> str:
        return self.name.rstrip("s") if self.name != "agencies" else "agency"


_AGENCY_KINDS = {column: "text" for column in AGENCY_COLUMNS}
_AGENCY_KINDS.update(certified_caregivers="integer", capacity="integer", clients_served="integer",
                     quality_score="real", leading="boolean", demo="boolean")
_UNIT_KINDS = {column: "text" for column in UNIT_COLUMNS}
_UNIT_KINDS.update(population="real", demand="real", rep_lon="real", rep_lat="real")

LAYERS: dict[str, LayerSpec] = {
    "agencies": LayerSpec("agencies", "agency_id", "Point", ("Point",), _AGENCY_KINDS),
    "units": LayerSpec("units", "unit_id", "MultiPolygon", ("Polygon", "MultiPolygon"), _UNIT_KINDS),
}

_TRUE = {"true", "t", "yes", "y", "1", "是", "✓"}
_FALSE = {"false", "f", "no", "n", "0", "否", ""}


def utc_now() -> str:
    """Current UTC time as ISO 8601 with microseconds, the timestamp format of every table."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _is_null(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def infer_kind(series: pd.Series) -> str:
    """Storage kind of a column the layer does not have yet."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_float_dtype(series):
        return "real"
    return "text"


def convert_value(value, kind: str):
    """Convert one cell to the Python value stored for ``kind``; raise ``ValueError`` naming the problem."""
    if kind == "text" and type(value) is str:  # the common case, checked first: plans have thousands of rows
        return value
    if _is_null(value):
        return None
    if kind == "text":
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            # Spreadsheets turn phone numbers and codes into floats; "13800000000.0" would be a corrupted value.
            return str(int(value))
        if isinstance(value, (pd.Timestamp, datetime)):
            return value.isoformat()
        if isinstance(value, (list, tuple, dict)):
            return json.dumps(value, ensure_ascii=False)
        return str(value)
    if kind == "boolean":
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, (int, np.integer, float, np.floating)) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE - {""}:
            return False
        raise ValueError("not a yes/no value")
    if kind == "integer":
        if isinstance(value, (bool, np.bool_)):
            return int(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        number = float(value)  # raises ValueError for text that is not a number
        if not number.is_integer():
            raise ValueError("not a whole number")
        return int(number)
    if kind == "real":
        if isinstance(value, (bool, np.bool_)):
            return float(value)
        return float(value)
    raise ValueError(f"unknown column kind {kind!r}")


@dataclass
class PreparedLayer:
    """A validated layer frame: column names, their kinds, row values and the geometries (EPSG:4326)."""

    spec: LayerSpec
    frame: pd.DataFrame
    geometries: np.ndarray
    keys: list[str]


def prepare_layer(frame, spec: LayerSpec) -> PreparedLayer:
    """Validate a layer GeoDataFrame and return it in EPSG:4326 with the declared geometry type.

    Collects every problem (missing key column, blank or duplicated keys, missing or wrongly typed
    geometries, coordinates outside longitude/latitude) and raises one :class:`InputError`.
    """
    what = f"cannot write the {spec.name} layer"
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InputError(what, [Problem(f"expected a GeoDataFrame, got {type(frame).__name__}")])
    problems: list[Problem] = []
    try:
        geometry = frame.geometry
    except AttributeError:
        raise InputError(what, [Problem("the frame has no active geometry column")]) from None
    if frame.crs is None:
        problems.append(Problem(f"the frame has no CRS; set it (the contract is {CRS}) before writing"))
    elif not frame.crs.equals(CRS):
        frame = frame.to_crs(CRS)
        geometry = frame.geometry
    if spec.key not in frame.columns:
        problems.append(Problem(f"missing the key column {spec.key!r}", column=spec.key))
        raise InputError(what, problems)
    for name in frame.columns:
        if name != frame.geometry.name and (str(name).lower() in ("fid", "geom") or not str(name).strip()):
            problems.append(Problem(f"column name {name!r} is reserved by the GeoPackage layer; rename it",
                                    column=str(name)))

    keys: list[str] = []
    first_row: dict[str, int] = {}
    for row, value in enumerate(frame[spec.key].tolist(), start=1):
        key = convert_value(value, "text")
        if key is None or not key.strip():
            problems.append(Problem(f"blank {spec.key}", row=row, column=spec.key, value=value))
            keys.append("")
            continue
        key = key.strip()
        if key in first_row:
            problems.append(Problem(f"duplicate {spec.key} {key!r} (also in row {first_row[key]})",
                                    row=row, column=spec.key, value=key))
        else:
            first_row[key] = row
        keys.append(key)

    geometries = np.asarray(geometry.values, dtype=object)
    out = np.empty(len(geometries), dtype=object)
    for row, shape in enumerate(geometries, start=1):
        if shape is None or shape.is_empty:
            problems.append(Problem(f"missing location for this {spec.label}", row=row, column="geometry"))
            continue
        if shape.geom_type not in spec.accepted_types:
            problems.append(Problem(f"geometry is a {shape.geom_type}; the {spec.name} layer takes "
                                    f"{' or '.join(spec.accepted_types)}", row=row, column="geometry"))
            continue
        minx, miny, maxx, maxy = shape.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            problems.append(Problem("coordinates are outside longitude/latitude; is the CRS right?",
                                    row=row, column="geometry", value=shape.wkt[:60]))
            continue
        if spec.geometry_type == "MultiPolygon" and shape.geom_type == "Polygon":
            shape = shapely.MultiPolygon([shape])
        out[row - 1] = shape
    if problems:
        raise InputError(what, problems)
    attributes = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    attributes[spec.key] = keys
    return PreparedLayer(spec, attributes.reset_index(drop=True), out, keys)


def convert_columns(prepared: PreparedLayer, kinds: Mapping[str, str]) -> tuple[list[str], list[list]]:
    """Convert every attribute cell to its stored kind; raise one InputError listing every bad cell."""
    columns = [str(c) for c in prepared.frame.columns]
    problems: list[Problem] = []
    values: list[list] = []
    for column in columns:
        kind = kinds[column]
        converted = []
        for row, value in enumerate(prepared.frame[column].tolist(), start=1):
            try:
                converted.append(convert_value(value, kind))
            except (TypeError, ValueError) as error:
                problems.append(Problem(f"expected {kind} ({error})", row=row, column=column, value=value))
                converted.append(None)
        values.append(converted)
    if problems:
        raise InputError(f"cannot write the {prepared.spec.name} layer", problems)
    rows = [list(r) for r in zip(*values)] if values else [[] for _ in range(len(prepared.frame))]
    return columns, rows


def layer_frame(geometries, rows: list[tuple], kinds: dict[str, str]) -> gpd.GeoDataFrame:
    """Build a layer GeoDataFrame from geometries and attribute rows, typed the way pyogrio types a layer.

    Integer columns are ``int64`` (``float64`` where a value is missing), booleans ``bool`` (object with
    ``None`` where missing), reals ``float64``, text inferred by pandas.
    """
    columns = list(kinds)
    values = list(zip(*rows)) if rows else [()] * len(columns)
    data = {}
    for column, cells in zip(columns, values):
        kind = kinds[column]
        has_null = any(c is None for c in cells)
        if kind == "integer":
            data[column] = pd.Series(cells, dtype="float64" if has_null else "int64")
        elif kind == "real":
            data[column] = pd.Series([np.nan if c is None else float(c) for c in cells], dtype="float64")
        elif kind == "boolean":
            data[column] = (pd.Series([None if c is None else bool(c) for c in cells], dtype=object) if has_null
                            else pd.Series([bool(c) for c in cells], dtype=bool))
        else:
            data[column] = pd.Series(list(cells), dtype=object if not cells else None)
    geometry = gpd.GeoSeries(np.asarray(geometries, dtype=object) if len(geometries) else [], crs=CRS)
    return gpd.GeoDataFrame(data, geometry=geometry, crs=CRS)


def normalise_assignments(assignments) -> pd.DataFrame:
    """Validate plan assignments and return them with exactly :data:`ASSIGNMENT_COLUMNS`, sorted by unit."""
    what = "cannot save the plan"
    if not isinstance(assignments, pd.DataFrame):
        raise InputError(what, [Problem(f"assignments must be a DataFrame, got {type(assignments).__name__}")])
    frame = pd.DataFrame(assignments)
    if isinstance(frame, gpd.GeoDataFrame):
        frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    if "unit_id" not in frame.columns and frame.index.name == "unit_id":
        frame = frame.reset_index()
    problems: list[Problem] = []
    for column in ("unit_id", "agency_id"):
        if column not in frame.columns:
            problems.append(Problem(f"missing column {column!r}", column=column))
    extra = [c for c in frame.columns if c not in ASSIGNMENT_COLUMNS]
    if extra:
        problems.append(Problem(f"columns {extra} are not stored with a plan (it keeps {list(ASSIGNMENT_COLUMNS)}); "
                                "drop them, or put figures in the plan summary"))
    if problems:
        raise InputError(what, problems)
    n = len(frame)
    column_values = {c: (frame[c].tolist() if c in frame.columns else [None] * n) for c in ASSIGNMENT_COLUMNS}
    rows = []
    seen: dict[str, int] = {}
    for i in range(n):
        row = i + 1
        unit = convert_value(column_values["unit_id"][i], "text")
        if unit is None or not unit.strip():
            problems.append(Problem("blank unit_id", row=row, column="unit_id"))
            continue
        unit = unit.strip()
        if unit in seen:
            problems.append(Problem(f"unit {unit!r} is assigned twice (also row {seen[unit]})", row=row,
                                    column="unit_id", value=unit))
            continue
        seen[unit] = row
        record = {"unit_id": unit}
        for column in ("agency_id", "backup_agency_id", "reason"):
            record[column] = convert_value(column_values[column][i], "text")
        try:
            locked = convert_value(column_values["locked"][i], "boolean")
            record["locked"] = bool(locked) if locked is not None else False
        except (TypeError, ValueError):
            problems.append(Problem("locked must be yes/no", row=row, column="locked",
                                    value=column_values["locked"][i]))
        try:
            travel = convert_value(column_values["travel_min"][i], "real")
        except (TypeError, ValueError):
            problems.append(Problem("travel_min must be a number of minutes", row=row, column="travel_min",
                                    value=column_values["travel_min"][i]))
            travel = None
        if travel is not None and travel < 0:
            problems.append(Problem("travel_min is negative", row=row, column="travel_min", value=travel))
        record["travel_min"] = travel
        rows.append(record)
    if problems:
        raise InputError(what, problems)
    rows.sort(key=lambda r: r["unit_id"])
    return assignment_frame([tuple(r[c] for c in ASSIGNMENT_COLUMNS) for r in rows])


def assignment_frame(rows: list[tuple]) -> pd.DataFrame:
    """Assignment rows as a DataFrame: id and text columns of dtype object (None, never NaN), locked bool."""
    columns = list(zip(*rows)) if rows else [()] * len(ASSIGNMENT_COLUMNS)
    data = {}
    for name, values in zip(ASSIGNMENT_COLUMNS, columns):
        if name == "locked":
            data[name] = pd.Series([bool(v) for v in values], dtype=bool)
        elif name == "travel_min":
            data[name] = pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
        else:
            data[name] = pd.Series(list(values), dtype=object)
    return pd.DataFrame(data)


def normalise_changes(changes) -> pd.DataFrame:
    """Validate a change log (DataFrame or list of dicts) into :data:`CHANGE_COLUMNS`."""
    if changes is None:
        return pd.DataFrame(columns=list(CHANGE_COLUMNS))
    frame = pd.DataFrame(list(changes) if not isinstance(changes, pd.DataFrame) else changes)
    if frame.empty:
        return pd.DataFrame(columns=list(CHANGE_COLUMNS))
    problems = []
    if "unit_id" not in frame.columns:
        problems.append(Problem("the change log needs a unit_id column", column="unit_id"))
    extra = [c for c in frame.columns if c not in CHANGE_COLUMNS]
    if extra:
        problems.append(Problem(f"change log columns {extra} are unknown; it keeps {list(CHANGE_COLUMNS)}"))
    if problems:
        raise InputError("cannot save the plan's change log", problems)
    out = pd.DataFrame({c: pd.Series([convert_value(v, "text") for v in frame[c].tolist()] if c in frame.columns
                                     else [None] * len(frame), dtype=object) for c in CHANGE_COLUMNS})
    blank = [i + 1 for i, u in enumerate(out["unit_id"]) if u is None]
    if blank:
        raise InputError("cannot save the plan's change log",
                         [Problem("blank unit_id", row=r, column="unit_id") for r in blank])
    return out


def plan_checksum(assignments: pd.DataFrame) -> str:
    """SHA-256 over the canonical text of assignment rows (sorted by unit), for crash and tamper checks."""
    digest = hashlib.sha256()
    for unit, agency, backup, locked, reason, travel in sorted(
            assignments[list(ASSIGNMENT_COLUMNS)].itertuples(index=False, name=None), key=lambda r: r[0]):
        travel_text = "" if _is_null(travel) else repr(float(travel))
        fields = [str(unit), "\0" if _is_null(agency) else str(agency), "\0" if _is_null(backup) else str(backup),
                  "1" if locked else "0", "\0" if _is_null(reason) else str(reason), travel_text]
        digest.update(("\x1f".join(fields) + "\n").encode("utf-8"))
    return digest.hexdigest()


def _scenario_geojson(agencies) -> dict:
    if isinstance(agencies, gpd.GeoDataFrame):
        frame = agencies if agencies.crs is None or agencies.crs.equals(CRS) else agencies.to_crs(CRS)
        if agencies.crs is None:
            raise InputError("cannot save the scenario", [Problem(f"the agency set has no CRS; set {CRS}")])
        return json.loads(frame.to_json(na="null", drop_id=True))
    if isinstance(agencies, Mapping) and agencies.get("type") == "FeatureCollection":
        return json.loads(dumps(dict(agencies)))
    raise InputError("cannot save the scenario",
                     [Problem("the agency set must be a GeoDataFrame or a GeoJSON FeatureCollection, "
                              f"got {type(agencies).__name__}")])


class SqlWorkspaceStore(WorkspaceStore):
    """Shared implementation over a DB-API connection; backends add connections, transactions and layers."""

    #: The newest schema version this code writes; files newer than this are refused.
    SCHEMA_VERSION: int = 0

    # -- backend hooks ----------------------------------------------------------------------------------------
    @abstractmethod
    def _transaction(self):
        """Context manager: a cursor inside one write transaction (committed on exit, rolled back on error)."""

    @abstractmethod
    def _reading(self):
        """Context manager: a cursor for reads (a consistent snapshot where the backend offers one)."""

    def _sql(self, statement: str) -> str:
        return statement

    def _lock_plan(self, cursor, plan_id: str) -> None:
        """Serialise version numbering per plan where the transaction itself does not (PostgreSQL)."""

    def _execute(self, cursor, statement: str, params=()):
        cursor.execute(self._sql(statement), tuple(params))
        return cursor

    def _executemany(self, cursor, statement: str, rows) -> None:
        cursor.executemany(self._sql(statement), rows)

    # -- audit ------------------------------------------------------------------------------------------------
    def _audit(self, cursor, actor: Actor, action: str, detail: Mapping | None) -> None:
        self._execute(cursor, "INSERT INTO audit_log (ts, user_name, action, detail) VALUES (?, ?, ?, ?)",
                      (utc_now(), actor.user, action, dumps(dict(detail or {}))))

    @staticmethod
    def _check_actor(actor) -> Actor:
        if not isinstance(actor, Actor):
            raise TypeError(f"actor must be a workspace.auth.Actor (user and role), got {type(actor).__name__}")
        require_planner(actor)
        return actor

    def record_audit(self, action: str, detail: Mapping | None = None, *, actor: Actor = LOCAL_PLANNER) -> None:
        """Append one entry to the audit log (for actions outside the store, such as a login or a download)."""
        actor = self._check_actor(actor)
        if not action or not str(action).strip():
            raise ValueError("an audit entry needs an action name")
        with self._transaction() as cursor:
            self._audit(cursor, actor, str(action), detail)

    def read_audit_log(self, *, limit: int | None = None, action: str | None = None) -> pd.DataFrame:
        """Audit entries, newest first: ``ts``, ``user``, ``action``, ``detail`` (dict)."""
        statement = "SELECT id, ts, user_name, action, detail FROM audit_log"
        params: list = []
        if action is not None:
            statement += " WHERE action = ?"
            params.append(action)
        statement += " ORDER BY id DESC"
        if limit is not None:
            statement += " LIMIT ?"
            params.append(int(limit))
        with self._reading() as cursor:
            rows = self._execute(cursor, statement, params).fetchall()
        frame = pd.DataFrame(rows, columns=["id", "ts", "user", "action", "detail"])
        frame["detail"] = [json.loads(d) if d else {} for d in frame["detail"]]
        return frame

    # -- region metadata --------------------------------------------------------------------------------------
    def get_region_meta(self) -> dict:
        """All region metadata as a dict of JSON values."""
        with self._reading() as cursor:
            rows = self._execute(cursor, "SELECT key, value FROM region_meta ORDER BY key").fetchall()
        return {key: json.loads(value) for key, value in rows}

    def set_region_meta(self, values: Mapping, *, actor: Actor = LOCAL_PLANNER) -> None:
        """Set (insert or replace) metadata keys; values must be JSON-serialisable."""
        actor = self._check_actor(actor)
        if not isinstance(values, Mapping):
            raise TypeError("region metadata must be a mapping of key -> JSON value")
        encoded = [(str(k), dumps(v)) for k, v in values.items()]
        with self._transaction() as cursor:
            self._executemany(cursor, "INSERT INTO region_meta (key, value) VALUES (?, ?) "
                                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value", encoded)
            self._audit(cursor, actor, "set_region_meta", {"keys": sorted(k for k, _ in encoded)})

    # -- plans ------------------------------------------------------------------------------------------------
    def save_plan(self, plan_id: str, assignments: pd.DataFrame, *, parameters: Mapping | None = None,
                  summary: Mapping | None = None, changes=None, parent_version: int | None = None,
                  actor: Actor = LOCAL_PLANNER) -> PlanVersion:
        """Save ``assignments`` as the next version of ``plan_id``; older versions are never touched.

        Parameters
        ----------
        plan_id : str
            The plan's name, e.g. ``"2025 分片包干"``.
        assignments : DataFrame
            One row per unit: ``unit_id``, ``agency_id`` (None = unassigned) and optionally
            ``backup_agency_id``, ``locked``, ``reason``, ``travel_min``.
        parameters, summary : mapping, optional
            The run's parameters and headline figures (JSON).
        changes : DataFrame or list of dict, optional
            The change log: ``unit_id``, ``from_agency``, ``to_agency``, ``why``.
        parent_version : int, optional
            The version this one was derived from; defaults to the latest version.
        actor : Actor
            Who saves (recorded in the plan and the audit log); must be a planner.
        """
        actor = self._check_actor(actor)
        plan_id = self._check_plan_id(plan_id)
        rows = normalise_assignments(assignments)
        change_log = normalise_changes(changes)
        parameters_text, summary_text = dumps(dict(parameters or {})), dumps(dict(summary or {}))
        with self._transaction() as cursor:
            return self._insert_plan(cursor, plan_id, rows, change_log, parameters_text, summary_text,
                                     parent_version, actor, "save_plan", {})

    @staticmethod
    def _check_plan_id(plan_id) -> str:
        if not isinstance(plan_id, str) or not plan_id.strip():
            raise ValueError("a plan needs a non-empty plan_id (its name)")
        return plan_id.strip()

    def _insert_plan(self, cursor, plan_id, rows, change_log, parameters_text, summary_text, parent_version,
                     actor, action, extra_detail) -> PlanVersion:
        self._lock_plan(cursor, plan_id)
        latest = self._execute(cursor, "SELECT max(version) FROM plan_versions WHERE plan_id = ?",
                               (plan_id,)).fetchone()[0]
        version = int(latest or 0) + 1
        if parent_version is None:
            parent_version = latest
        elif not self._execute(cursor, "SELECT 1 FROM plan_versions WHERE plan_id = ? AND version = ?",
                               (plan_id, int(parent_version))).fetchone():
            raise ValueError(f"plan {plan_id!r} has no version {parent_version} to derive from")
        checksum = plan_checksum(rows)
        created_at = utc_now()
        version_pk = self._execute(
            cursor,
            "INSERT INTO plan_versions (plan_id, version, created_at, created_by, parameters, summary, "
            "parent_version, n_units, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (plan_id, version, created_at, actor.user, parameters_text, summary_text,
             None if parent_version is None else int(parent_version), len(rows), checksum)).fetchone()[0]
        self._executemany(
            cursor,
            "INSERT INTO plan_assignments (version_id, unit_id, agency_id, backup_agency_id, locked, reason, "
            "travel_min) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(version_pk, u, a, b, bool(lk), r, None if _is_null(t) else float(t))
             for u, a, b, lk, r, t in rows[list(ASSIGNMENT_COLUMNS)].itertuples(index=False, name=None)])
        if len(change_log):
            self._executemany(
                cursor,
                "INSERT INTO plan_changes (version_id, unit_id, from_agency, to_agency, why) VALUES (?, ?, ?, ?, ?)",
                [(version_pk, *r) for r in change_log[list(CHANGE_COLUMNS)].itertuples(index=False, name=None)])
        detail = {"plan_id": plan_id, "version": version, "n_units": len(rows), "n_changes": len(change_log),
                  "parent_version": parent_version, **extra_detail}
        self._audit(cursor, actor, action, detail)
        return PlanVersion(plan_id, version, created_at, actor.user, json.loads(parameters_text),
                           json.loads(summary_text), None if parent_version is None else int(parent_version),
                           len(rows), checksum)

    def list_plans(self) -> pd.DataFrame:
        """One row per plan: ``plan_id``, ``latest_version``, ``n_versions``, ``updated_at``."""
        with self._reading() as cursor:
            rows = self._execute(cursor, "SELECT plan_id, max(version), count(*), max(created_at) "
                                         "FROM plan_versions GROUP BY plan_id ORDER BY plan_id").fetchall()
        return pd.DataFrame(rows, columns=["plan_id", "latest_version", "n_versions", "updated_at"])

    _VERSION_FIELDS = ("plan_id, version, created_at, created_by, parameters, summary, parent_version, n_units, "
                       "checksum")

    @staticmethod
    def _version_from_row(row) -> PlanVersion:
        plan_id, version, created_at, created_by, parameters, summary, parent, n_units, checksum = row
        return PlanVersion(plan_id, int(version), created_at, created_by, json.loads(parameters),
                           json.loads(summary), None if parent is None else int(parent), int(n_units), checksum)

    def list_plan_versions(self, plan_id: str) -> pd.DataFrame:
        """Every version of ``plan_id``, oldest first, with who saved it, its parent and its summary."""
        with self._reading() as cursor:
            rows = self._execute(cursor, f"SELECT {self._VERSION_FIELDS} FROM plan_versions WHERE plan_id = ? "
                                         "ORDER BY version", (plan_id,)).fetchall()
        versions = [self._version_from_row(r) for r in rows]
        return pd.DataFrame(
            [{"plan_id": v.plan_id, "version": v.version, "created_at": v.created_at, "created_by": v.created_by,
              "parent_version": v.parent_version, "n_units": v.n_units, "summary": v.summary,
              "parameters": v.parameters} for v in versions],
            columns=["plan_id", "version", "created_at", "created_by", "parent_version", "n_units", "summary",
                     "parameters"])

    def _load_plan(self, cursor, plan_id: str, version: int | None) -> Plan:
        if version is None:
            row = self._execute(cursor, f"SELECT id, {self._VERSION_FIELDS} FROM plan_versions WHERE plan_id = ? "
                                        "ORDER BY version DESC LIMIT 1", (plan_id,)).fetchone()
        else:
            row = self._execute(cursor, f"SELECT id, {self._VERSION_FIELDS} FROM plan_versions "
                                        "WHERE plan_id = ? AND version = ?", (plan_id, int(version))).fetchone()
        if row is None:
            known = [r[0] for r in self._execute(cursor, "SELECT DISTINCT plan_id FROM plan_versions").fetchall()]
            if plan_id not in known:
                raise KeyError(f"no plan named {plan_id!r}; saved plans: {sorted(known) or 'none'}")
            raise KeyError(f"plan {plan_id!r} has no version {version}")
        meta = self._version_from_row(row[1:])
        assignment_rows = self._execute(
            cursor, "SELECT unit_id, agency_id, backup_agency_id, locked, reason, travel_min FROM plan_assignments "
                    "WHERE version_id = ? ORDER BY unit_id", (row[0],)).fetchall()
        assignments = assignment_frame(assignment_rows)
        change_rows = self._execute(cursor, "SELECT unit_id, from_agency, to_agency, why FROM plan_changes "
                                            "WHERE version_id = ? ORDER BY id", (row[0],)).fetchall()
        changes = pd.DataFrame({c: pd.Series(list(v), dtype=object) for c, v in
                                zip(CHANGE_COLUMNS, zip(*change_rows) if change_rows else [()] * 4)})
        if len(assignments) != meta.n_units or plan_checksum(assignments) != meta.checksum:
            raise PlanIntegrityError(
                f"plan {plan_id!r} version {meta.version} holds {len(assignments)} rows that do not match its "
                f"recorded {meta.n_units} rows / checksum; restore the workspace from a backup")
        return Plan(meta, assignments, changes)

    def load_plan(self, plan_id: str, version: int | None = None) -> Plan:
        """Load one version of a plan (the latest by default), verified against its row count and checksum."""
        with self._reading() as cursor:
            return self._load_plan(cursor, plan_id, version)

    def compare_plans(self, plan_id: str, version_a: int, version_b: int, *,
                      other_plan_id: str | None = None) -> pd.DataFrame:
        """Units whose agency or backup differ from version ``a`` to version ``b`` (of ``other_plan_id`` if given).

        Returns ``unit_id``, ``from_agency``, ``to_agency``, ``from_backup``, ``to_backup``; a unit present in one
        version only shows ``None`` on the other side.
        """
        with self._reading() as cursor:
            a = self._load_plan(cursor, plan_id, version_a).assignments
            b = self._load_plan(cursor, other_plan_id or plan_id, version_b).assignments
        return diff_assignments(a, b)

    def restore_plan(self, plan_id: str, version: int, *, actor: Actor = LOCAL_PLANNER) -> PlanVersion:
        """Make an old version current again by saving a copy of it as a new version (nothing is deleted).

        The new version's change log lists the units that move relative to the version it replaces.
        """
        actor = self._check_actor(actor)
        with self._transaction() as cursor:
            self._lock_plan(cursor, plan_id)
            old = self._load_plan(cursor, plan_id, version)
            current = self._load_plan(cursor, plan_id, None)
            diff = diff_assignments(current.assignments, old.assignments)
            why = f"restored from version {old.version}"
            changes = pd.DataFrame({"unit_id": diff["unit_id"], "from_agency": diff["from_agency"],
                                    "to_agency": diff["to_agency"], "why": why}, columns=list(CHANGE_COLUMNS))
            return self._insert_plan(cursor, plan_id, old.assignments, changes, dumps(old.meta.parameters),
                                     dumps(old.meta.summary), old.version, actor, "restore_plan",
                                     {"restored_from": old.version, "replaced_version": current.version})

    # -- siting scenarios -------------------------------------------------------------------------------------
    def save_scenario(self, name: str, agencies, *, parameters: Mapping | None = None,
                      results: Mapping | None = None, actor: Actor = LOCAL_PLANNER) -> int:
        """Save a siting scenario (agency set + parameters + results); returns its id. Names may repeat."""
        actor = self._check_actor(actor)
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a scenario needs a non-empty name")
        geojson = dumps(_scenario_geojson(agencies))
        with self._transaction() as cursor:
            scenario_id = self._execute(
                cursor, "INSERT INTO siting_scenarios (name, created_at, created_by, agencies, parameters, results) "
                        "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (name.strip(), utc_now(), actor.user, geojson, dumps(dict(parameters or {})),
                 dumps(dict(results or {})))).fetchone()[0]
            self._audit(cursor, actor, "save_scenario", {"scenario_id": int(scenario_id), "name": name.strip()})
        return int(scenario_id)

    def list_scenarios(self) -> pd.DataFrame:
        """Saved scenarios, newest first: ``scenario_id``, ``name``, ``created_at``, ``created_by``, ``n_agencies``."""
        with self._reading() as cursor:
            rows = self._execute(cursor, "SELECT id, name, created_at, created_by, agencies FROM siting_scenarios "
                                         "ORDER BY id DESC").fetchall()
        return pd.DataFrame([(i, n, c, b, len(json.loads(a).get("features", []))) for i, n, c, b, a in rows],
                            columns=["scenario_id", "name", "created_at", "created_by", "n_agencies"])

    def load_scenario(self, scenario: int | str) -> Scenario:
        """Load a scenario by id, or the newest one with that name."""
        with self._reading() as cursor:
            fields = "id, name, created_at, created_by, agencies, parameters, results"
            if isinstance(scenario, (int, np.integer)):
                row = self._execute(cursor, f"SELECT {fields} FROM siting_scenarios WHERE id = ?",
                                    (int(scenario),)).fetchone()
            else:
                row = self._execute(cursor, f"SELECT {fields} FROM siting_scenarios WHERE name = ? "
                                            "ORDER BY id DESC LIMIT 1", (str(scenario),)).fetchone()
        if row is None:
            raise KeyError(f"no siting scenario {scenario!r}")
        scenario_id, name, created_at, created_by, agencies, parameters, results = row
        return Scenario(int(scenario_id), name, created_at, created_by, json.loads(agencies),
                        json.loads(parameters), json.loads(results))

    def delete_scenario(self, scenario_id: int, *, actor: Actor = LOCAL_PLANNER) -> None:
        """Delete one scenario; the audit log keeps its name and who deleted it."""
        actor = self._check_actor(actor)
        with self._transaction() as cursor:
            row = self._execute(cursor, "SELECT name FROM siting_scenarios WHERE id = ?",
                                (int(scenario_id),)).fetchone()
            if row is None:
                raise KeyError(f"no siting scenario {scenario_id!r}")
            self._execute(cursor, "DELETE FROM siting_scenarios WHERE id = ?", (int(scenario_id),))
            self._audit(cursor, actor, "delete_scenario", {"scenario_id": int(scenario_id), "name": row[0]})

    # -- layers -----------------------------------------------------------------------------------------------
    def read_agencies(self) -> gpd.GeoDataFrame:
        """The agency registry (EPSG:4326 points)."""
        return self._read_layer(LAYERS["agencies"])

    def read_units(self) -> gpd.GeoDataFrame:
        """The planning units (EPSG:4326 multipolygons)."""
        return self._read_layer(LAYERS["units"])

    def replace_agencies(self, agencies: gpd.GeoDataFrame, *, actor: Actor = LOCAL_PLANNER,
                         source: str | None = None) -> int:
        """Replace the whole registry in one transaction; returns the number of agencies written."""
        return self._write_layer(LAYERS["agencies"], agencies, mode="replace", actor=actor, source=source)["written"]

    def upsert_agencies(self, agencies: gpd.GeoDataFrame, *, actor: Actor = LOCAL_PLANNER,
                        source: str | None = None) -> dict:
        """Insert new agencies and update existing ones (by ``agency_id``); returns ``inserted``/``updated``."""
        return self._write_layer(LAYERS["agencies"], agencies, mode="upsert", actor=actor, source=source)

    def delete_agencies(self, agency_ids: Iterable[str], *, actor: Actor = LOCAL_PLANNER) -> int:
        """Delete agencies by id (all or none: an unknown id refuses the whole call)."""
        return self._delete_rows(LAYERS["agencies"], agency_ids, actor=actor)

    def replace_units(self, units: gpd.GeoDataFrame, *, actor: Actor = LOCAL_PLANNER,
                      source: str | None = None) -> int:
        """Replace all planning units in one transaction; returns the number written."""
        return self._write_layer(LAYERS["units"], units, mode="replace", actor=actor, source=source)["written"]

    def upsert_units(self, units: gpd.GeoDataFrame, *, actor: Actor = LOCAL_PLANNER,
                     source: str | None = None) -> dict:
        """Insert new units and update existing ones (by ``unit_id``)."""
        return self._write_layer(LAYERS["units"], units, mode="upsert", actor=actor, source=source)

    def delete_units(self, unit_ids: Iterable[str], *, actor: Actor = LOCAL_PLANNER) -> int:
        """Delete units by id (all or none)."""
        return self._delete_rows(LAYERS["units"], unit_ids, actor=actor)

    @abstractmethod
    def _read_layer(self, spec: LayerSpec) -> gpd.GeoDataFrame: ...

    @abstractmethod
    def _write_layer(self, spec: LayerSpec, frame, *, mode: str, actor: Actor, source: str | None) -> dict: ...

    @abstractmethod
    def _delete_rows(self, spec: LayerSpec, ids: Iterable[str], *, actor: Actor) -> int: ...

    # -- administration ---------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The workspace's schema version (the newest migration applied)."""
        with self._reading() as cursor:
            return int(self._execute(cursor, "SELECT max(version) FROM schema_version").fetchone()[0] or 0)

    def contents(self) -> dict:
        """Row counts for the data page: agencies, units, plans, plan versions, scenarios, audit entries."""
        queries = {
            "agencies": "SELECT count(*) FROM agencies",
            "units": "SELECT count(*) FROM units",
            "plans": "SELECT count(DISTINCT plan_id) FROM plan_versions",
            "plan_versions": "SELECT count(*) FROM plan_versions",
            "scenarios": "SELECT count(*) FROM siting_scenarios",
            "audit_entries": "SELECT count(*) FROM audit_log",
        }
        with self._reading() as cursor:
            out = {name: int(self._execute(cursor, q).fetchone()[0]) for name, q in queries.items()}
        out["schema_version"] = self.schema_version()
        out["location"] = self.location
        return out


def diff_assignments(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Rows of :data:`DIFF_COLUMNS` for units whose agency or backup differ between two assignment tables."""
    left = a[["unit_id", "agency_id", "backup_agency_id"]].rename(
        columns={"agency_id": "from_agency", "backup_agency_id": "from_backup"})
    right = b[["unit_id", "agency_id", "backup_agency_id"]].rename(
        columns={"agency_id": "to_agency", "backup_agency_id": "to_backup"})
    merged = left.merge(right, on="unit_id", how="outer", indicator=True)
    merged = merged.astype(object).where(merged.notna(), None)

    def differs(x, y):
        return (x is None) != (y is None) or (x is not None and x != y)

    changed = [merged["_merge"].iloc[i] != "both"
               or differs(merged["from_agency"].iloc[i], merged["to_agency"].iloc[i])
               or differs(merged["from_backup"].iloc[i], merged["to_backup"].iloc[i]) for i in range(len(merged))]
    out = merged.loc[changed, list(DIFF_COLUMNS)] if len(merged) else merged.reindex(columns=list(DIFF_COLUMNS))
    return out.sort_values("unit_id", kind="stable").reset_index(drop=True)
