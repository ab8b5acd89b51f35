"""The same store contract against PostgreSQL/PostGIS.

Server tests are marked ``postgis`` and skipped unless ``LTCI_PG_URL`` points at a database with PostGIS (and
psycopg is installed); each test works in a fresh schema that it drops afterwards. URL parsing runs everywhere.
"""

from __future__ import annotations

import os
import threading
import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.errors import InputError
from workspace.auth import RESIDENT, Actor
from workspace.postgis import SCHEMA_VERSION, parse_url
from workspace.store import WorkspaceFileError, open_store, open_workspace

PG_URL = os.environ.get("LTCI_PG_URL")


def test_parse_url_strips_schema_and_hides_the_password():
    conninfo, schema, location = parse_url("postgis://ltci:s3cret@db.example:5433/bureau?schema=yuyao&sslmode=require")
    assert conninfo == "postgresql://ltci:s3cret@db.example:5433/bureau?sslmode=require"
    assert schema == "yuyao"
    assert "s3cret" not in location and location == "postgresql://ltci:***@db.example:5433/bureau?schema=yuyao"
    assert parse_url("postgresql://localhost/ltci")[1] == "public"
    with pytest.raises(ValueError, match="identifier"):
        parse_url("postgresql://localhost/ltci?schema=x;drop")


def test_open_store_routes_urls_to_postgis(monkeypatch):
    import workspace.postgis as postgis

    def no_psycopg():
        raise ImportError("a PostgreSQL workspace needs psycopg 3: pip install 'psycopg[binary]'")

    monkeypatch.setattr(postgis, "_import_psycopg", no_psycopg)
    with pytest.raises(ImportError, match="psycopg"):
        open_store("postgresql://localhost/ltci")


def _server_available() -> bool:
    if not PG_URL:
        return False
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return True


postgis = pytest.mark.postgis
needs_server = pytest.mark.skipif(not _server_available(),
                                  reason="set LTCI_PG_URL to a PostGIS database and install psycopg")


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@pytest.fixture
def pg_url():
    import psycopg

    schema = f"ltci_test_{uuid.uuid4().hex[:10]}"
    yield _with_schema(PG_URL, schema)
    conninfo = parse_url(PG_URL)[0]
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_store(pg_url):
    store = open_store(pg_url, create=True)
    yield store
    store.close()


def agencies(n: int, capacity: int = 10) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"agency_id": [f"A{i:03d}" for i in range(n)], "name": [f"站{i}" for i in range(n)],
                             "capacity": capacity, "leading": [i % 2 == 0 for i in range(n)]},
                            geometry=shapely.points(1.5 + 0.001 * np.arange(n), 42.5), crs="EPSG:4326")


def assignments(n: int, shift: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"unit_id": [f"U{i:04d}" for i in range(n)],
                         "agency_id": [f"A{(i + shift) % 5:03d}" for i in range(n)],
                         "travel_min": np.arange(n) / 4.0})


@postgis
@needs_server
def test_pg_layers_round_trip_and_refuse_residents(pg_store):
    assert pg_store.schema_version() == SCHEMA_VERSION
    assert pg_store.replace_agencies(agencies(20)) == 20
    result = pg_store.upsert_agencies(agencies(22, capacity=5).iloc[18:].assign(extra=1.5))
    assert result == {"written": 4, "inserted": 2, "updated": 2, "removed": 0}
    back = pg_store.read_agencies().set_index("agency_id")
    assert len(back) == 22 and back.loc["A019", "capacity"] == 5 and back.loc["A000", "capacity"] == 10
    assert back.loc["A021", "extra"] == 1.5 and bool(back.loc["A002", "leading"])
    assert back.geometry.iloc[3].equals(shapely.Point(1.503, 42.5))
    units = gpd.GeoDataFrame({"unit_id": ["U1"]}, geometry=[shapely.box(1.5, 42.5, 1.6, 42.6)], crs="EPSG:4326")
    pg_store.replace_units(units)
    assert pg_store.read_units().geom_type.tolist() == ["MultiPolygon"]
    with pytest.raises(PermissionError):
        pg_store.replace_agencies(agencies(3), actor=RESIDENT)


@postgis
@needs_server
def test_pg_failed_import_leaves_the_old_registry(pg_store, monkeypatch):
    pg_store.replace_agencies(agencies(10))
    before = pg_store.read_agencies()
    bad = agencies(12)
    bad.loc[4, "agency_id"] = "A001"
    with pytest.raises(InputError):
        pg_store.replace_agencies(bad)
    real = shapely.to_wkb
    calls = {"n": 0}

    def failing(geometry, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise OSError("connection lost")
        return real(geometry, **kwargs)

    monkeypatch.setattr(shapely, "to_wkb", failing)
    with pytest.raises(OSError):
        pg_store.replace_agencies(agencies(12, capacity=3).assign(new_col=1))
    monkeypatch.setattr(shapely, "to_wkb", real)
    after = pg_store.read_agencies()
    pd.testing.assert_frame_equal(after, before)


@postgis
@needs_server
def test_pg_plans_version_compare_restore(pg_store):
    pg_store.save_plan("p", assignments(30), parameters={"t": 30}, actor=Actor("wang", "planner"))
    second = assignments(30)
    second.loc[2, "agency_id"] = "A004"
    pg_store.save_plan("p", second)
    diff = pg_store.compare_plans("p", 1, 2)
    assert diff[["unit_id", "from_agency", "to_agency"]].values.tolist() == [["U0002", "A002", "A004"]]
    restored = pg_store.restore_plan("p", 1)
    assert (restored.version, restored.parent_version, restored.parameters) == (3, 1, {"t": 30})
    assert pg_store.load_plan("p").assignments["agency_id"].tolist() == assignments(30)["agency_id"].tolist()
    assert pg_store.list_plan_versions("p")["created_by"].tolist() == ["wang", "local", "local"]
    assert pg_store.read_audit_log(limit=1)["action"].tolist() == ["restore_plan"]


@postgis
@needs_server
def test_pg_concurrent_sessions_number_versions_without_gaps(pg_url):
    open_store(pg_url, create=True).close()
    errors = []

    def write(name):
        try:
            with open_store(pg_url) as store:
                for k in range(15):
                    store.save_plan("shared", assignments(50, k), actor=Actor(name, "planner"))
        except Exception as error:  # noqa: BLE001 - surfaced below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_store(pg_url) as store:
        assert store.list_plan_versions("shared")["version"].tolist() == list(range(1, 31))


@postgis
@needs_server
def test_pg_validation_seed_and_backup(pg_url, tmp_path):
    with pytest.raises(WorkspaceFileError, match="no LTCI workspace"):
        open_store(pg_url)
    calls = []

    def seed(store):
        calls.append(1)
        store.replace_agencies(agencies(5))

    with open_workspace(pg_url, seed_from=seed) as store:
        store.save_plan("p", assignments(10))
        backup = store.backup_to(tmp_path / "pg-backup.gpkg")
    with open_workspace(pg_url, seed_from=seed) as store:
        assert len(calls) == 1 and store.contents()["agencies"] == 5
        store._connection.execute("INSERT INTO schema_version (version, applied_at, description) "
                                  "VALUES (%s, 'x', 'future')", (SCHEMA_VERSION + 1,))
    with pytest.raises(WorkspaceFileError, match="newer version"):
        open_store(pg_url)
    with open_store(backup) as copy:
        assert copy.contents()["agencies"] == 5 and len(copy.load_plan("p").assignments) == 10
        assert copy.integrity_check() == "ok"
