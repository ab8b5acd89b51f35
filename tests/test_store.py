"""GeoPackage workspace store: layers, atomic imports, plan versions, scenarios, validation, migrations, backup."""

from __future__ import annotations

from pathlib import Path

import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from geo import settings
from geo.errors import InputError
from workspace import gpkg_binary
from workspace.auth import Actor
from workspace.geopackage import SCHEMA_VERSION, GeoPackageStore, create_workspace_file
from workspace.store import PlanIntegrityError, WorkspaceFileError, open_store, open_workspace

HEALTH = str(Path(__file__).resolve().parent.parent / "data" / "andorra" / "raw" / "andorra_health.geojson")
ALICE = Actor("alice", "planner")


def make_agencies(n: int = 12, *, capacity: int = 10) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(n)
    return gpd.GeoDataFrame(
        {"agency_id": [f"A{i:03d}" for i in range(n)], "name": [f"护理站{i}" for i in range(n)],
         "care_type": ["home", "institution", "hospital"] * (n // 3) + ["home"] * (n % 3),
         "status": "designated", "capacity": capacity, "quality_score": rng.uniform(60, 95, n).round(1),
         "leading": [i % 4 == 0 for i in range(n)], "phone": "0574-1234567"},
        geometry=shapely.points(1.45 + rng.uniform(0, 0.2, n), 42.45 + rng.uniform(0, 0.15, n)), crs="EPSG:4326")


def make_units(n: int = 6) -> gpd.GeoDataFrame:
    boxes = [shapely.box(1.40 + 0.02 * i, 42.50, 1.41 + 0.02 * i, 42.51) for i in range(n)]
    boxes[-1] = shapely.MultiPolygon([boxes[-1], shapely.box(1.40, 42.60, 1.41, 42.61)])
    return gpd.GeoDataFrame(
        {"unit_id": [f"3302810010{i:02d}" for i in range(n)], "name": [f"村{i}" for i in range(n)],
         "township": "梨洲街道", "setting": "rural", "population": np.arange(n) * 100.0 + 50,
         "demand": np.arange(n) * 0.78}, geometry=boxes, crs="EPSG:4326")


def make_assignments(n_units: int, *, shift: int = 0, n_agencies: int = 7) -> pd.DataFrame:
    return pd.DataFrame({
        "unit_id": [f"U{i:05d}" for i in range(n_units)],
        "agency_id": [f"A{(i + shift) % n_agencies:03d}" for i in range(n_units)],
        "backup_agency_id": [f"A{(i + shift + 1) % n_agencies:03d}" for i in range(n_units)],
        "locked": [i % 10 == 0 for i in range(n_units)],
        "reason": ["nearest with capacity"] * n_units,
        "travel_min": [round(5 + (i * 7 + shift) % 50 / 3, 3) for i in range(n_units)],
    })


def rows(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict("records")


@pytest.fixture
def store(tmp_path):
    opened = open_store(tmp_path / "ws.gpkg", create=True)
    yield opened
    opened.close()


def layer_counts(path) -> tuple[int, int, int]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT count(*) FROM agencies").fetchone()[0]
        rtree = connection.execute("SELECT count(*) FROM rtree_agencies_geom").fetchone()[0]
        counted = connection.execute(
            "SELECT feature_count FROM gpkg_ogr_contents WHERE table_name = 'agencies'").fetchone()[0]
    return rows, rtree, counted


# -- geometry encoding ---------------------------------------------------------------------------------------------

def test_gpkg_binary_is_byte_identical_to_gdal(tmp_path):
    agencies, units = make_agencies(5), make_units(4)
    path = tmp_path / "gdal.gpkg"
    pyogrio.write_dataframe(agencies, path, layer="a")
    pyogrio.write_dataframe(units, path, layer="u", promote_to_multi=True)
    with sqlite3.connect(path) as connection:
        gdal_points = [r[0] for r in connection.execute("SELECT geom FROM a ORDER BY fid")]
        gdal_polygons = [r[0] for r in connection.execute("SELECT geom FROM u ORDER BY fid")]
        srs_id = connection.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE table_name='a'").fetchone()[0]
    ours = gpkg_binary.encode_geometries(agencies.geometry, srs_id=srs_id)
    multi = [shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g for g in units.geometry]
    assert ours == gdal_points
    assert gpkg_binary.encode_geometries(multi, srs_id=srs_id) == gdal_polygons
    decoded = gpkg_binary.decode_geometries(gdal_polygons)
    assert all(a.equals(b) for a, b in zip(decoded, multi))


# -- layers --------------------------------------------------------------------------------------------------------

def test_new_workspace_is_a_geopackage_with_registered_tables(tmp_path):
    path = tmp_path / "ws.gpkg"
    with open_store(path, create=True) as store:
        store.replace_agencies(make_agencies(9))
        store.replace_units(make_units(6))
        assert store.schema_version() == SCHEMA_VERSION
        assert store.integrity_check() == "ok"
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        contents = dict(connection.execute("SELECT table_name, data_type FROM gpkg_contents"))
        extent = connection.execute("SELECT min_x, max_x FROM gpkg_contents WHERE table_name='units'").fetchone()
    assert contents["agencies"] == "features" and contents["units"] == "features"
    for table in ("plan_versions", "plan_assignments", "plan_changes", "siting_scenarios", "audit_log",
                  "region_meta", "schema_version"):
        assert contents[table] == "attributes"
    assert extent == pytest.approx((1.40, 1.51))
    # GDAL (what QGIS uses) lists every table and reads the layers back; the store is closed at this point.
    layers = dict(pyogrio.list_layers(path))
    assert layers["agencies"] == "Point" and layers["units"] == "MultiPolygon" and layers["audit_log"] is None
    units = pyogrio.read_dataframe(path, layer="units")
    assert units["unit_id"].tolist() == make_units(6)["unit_id"].tolist()
    assert units["population"].sum() == pytest.approx(sum(np.arange(6) * 100.0 + 50))
    assert pyogrio.read_info(path, layer="agencies")["features"] == 9


def test_agencies_round_trip_with_real_points(store, tmp_path):
    health = gpd.read_file(HEALTH)
    agencies = gpd.GeoDataFrame(
        {"agency_id": [f"AD{i:03d}" for i in range(len(health))], "name": health["name"],
         "care_type": "hospital", "status": "designated", "capacity": np.arange(len(health)),
         "leading": [i % 2 == 0 for i in range(len(health))], "osm_id": health["osm_id"]},
        geometry=health.geometry, crs="EPSG:4326")
    assert store.replace_agencies(agencies, source="andorra_health.geojson") == len(health) == 62
    back = store.read_agencies()
    assert back["agency_id"].tolist() == agencies["agency_id"].tolist()
    assert back["capacity"].tolist() == list(range(62))
    assert back["leading"].tolist() == agencies["leading"].tolist()
    assert back["osm_id"].tolist() == health["osm_id"].tolist()  # a column beyond the contract is added
    assert np.allclose(shapely.get_coordinates(back.geometry), shapely.get_coordinates(health.geometry))
    assert back["name"].isna().sum() == health["name"].isna().sum()
    assert layer_counts(store.path) == (62, 62, 62)


def test_layer_in_other_crs_is_reprojected_and_polygons_promoted(store):
    units = make_units(3).to_crs(32631)
    store.replace_units(units)
    back = store.read_units()
    assert set(back.geom_type) == {"MultiPolygon"}
    assert back.crs.to_epsg() == 4326
    assert back.geometry.iloc[0].bounds == pytest.approx((1.40, 42.50, 1.41, 42.51), abs=1e-9)


def test_upsert_updates_inserts_and_keeps_others(store):
    store.replace_agencies(make_agencies(10))
    update = make_agencies(10).iloc[[2, 3]].assign(capacity=99)
    extra = make_agencies(12).iloc[[10, 11]]
    result = store.upsert_agencies(pd.concat([update, extra]), actor=ALICE)
    assert result == {"written": 4, "inserted": 2, "updated": 2, "removed": 0}
    back = store.read_agencies().set_index("agency_id")
    assert len(back) == 12
    assert back.loc[["A002", "A003"], "capacity"].tolist() == [99, 99]
    assert back.loc["A004", "capacity"] == 10
    assert layer_counts(store.path) == (12, 12, 12)
    assert store.read_audit_log(limit=1).iloc[0][["user", "action"]].tolist() == ["alice", "upsert_agencies"]


def test_delete_unknown_id_deletes_nothing(store):
    store.replace_agencies(make_agencies(5))
    with pytest.raises(InputError, match="A999"):
        store.delete_agencies(["A001", "A999"])
    assert len(store.read_agencies()) == 5
    assert store.delete_agencies(["A001", "A002"]) == 2
    assert store.read_agencies()["agency_id"].tolist() == ["A000", "A003", "A004"]


# -- atomicity -----------------------------------------------------------------------------------------------------

def test_bad_rows_refuse_the_whole_import_and_list_every_problem(store):
    store.replace_agencies(make_agencies(6))
    before = store.read_agencies()
    bad = make_agencies(8, capacity=5)
    bad.loc[3, "agency_id"] = "A001"  # duplicate
    bad.loc[5, "geometry"] = None
    bad["capacity"] = bad["capacity"].astype(object)
    bad.loc[6, "capacity"] = "many"
    with pytest.raises(InputError) as caught:
        store.replace_agencies(bad)
    problems = {(p.row, p.column) for p in caught.value.problems}
    assert {(4, "agency_id"), (6, "geometry")} <= problems
    with pytest.raises(InputError, match="expected integer") as caught:
        store.replace_agencies(bad.drop(index=[3, 5]))
    assert [(p.row, p.column) for p in caught.value.problems] == [(5, "capacity")]
    pd.testing.assert_frame_equal(store.read_agencies(), before)
    assert layer_counts(store.path) == (6, 6, 6)


def test_failure_half_way_through_an_import_leaves_the_old_registry(store, monkeypatch):
    store.replace_agencies(make_agencies(30))
    before = store.read_agencies()
    audit_before = len(store.read_audit_log())
    real_encode = gpkg_binary.encode_geometry
    calls = {"n": 0}

    def failing_encode(geometry, *, srs_id):
        calls["n"] += 1
        if calls["n"] == 25:
            raise OSError("disk unplugged")
        return real_encode(geometry, srs_id=srs_id)

    monkeypatch.setattr(gpkg_binary, "encode_geometry", failing_encode)
    replacement = make_agencies(40, capacity=77)
    with pytest.raises(OSError, match="unplugged"):
        store.replace_agencies(replacement.assign(new_column=1.5))
    assert calls["n"] == 25  # the failure struck after 24 rows had been inserted and the old rows deleted
    calls["n"] = 0
    with pytest.raises(OSError):
        store.upsert_agencies(replacement)
    monkeypatch.setattr(gpkg_binary, "encode_geometry", real_encode)
    after = store.read_agencies()
    pd.testing.assert_frame_equal(after, before)
    assert "new_column" not in after.columns  # the ALTER TABLE rolled back too
    assert layer_counts(store.path) == (30, 30, 30)
    assert len(store.read_audit_log()) == audit_before
    assert store.replace_agencies(replacement) == 40


# -- region metadata, scenarios, audit ------------------------------------------------------------------------------

def test_region_meta_round_trip(store):
    store.set_region_meta({"name": "余姚市", "county_code": "330281", "thresholds": [15, 30]}, actor=ALICE)
    store.set_region_meta({"thresholds": [15, 30, 45]})
    assert store.get_region_meta() == {"county_code": "330281", "name": "余姚市", "thresholds": [15, 30, 45]}


def test_scenarios_save_list_load_delete(store):
    sites = make_agencies(4)
    first = store.save_scenario("4 new sites", sites, parameters={"p": 4, "threshold_min": 30},
                                results={"covered_share": np.float64(0.913)}, actor=ALICE)
    second = store.save_scenario("4 new sites", sites.iloc[:2], parameters={"p": 2})
    listed = store.list_scenarios()
    assert listed["scenario_id"].tolist() == [second, first]
    assert listed["n_agencies"].tolist() == [2, 4]
    loaded = store.load_scenario(first)
    assert loaded.created_by == "alice" and loaded.results == {"covered_share": 0.913}
    frame = loaded.agencies_frame()
    assert frame["agency_id"].tolist() == sites["agency_id"].tolist()
    assert np.allclose(shapely.get_coordinates(frame.geometry), shapely.get_coordinates(sites.geometry))
    assert store.load_scenario("4 new sites").scenario_id == second
    store.delete_scenario(first, actor=ALICE)
    assert store.list_scenarios()["scenario_id"].tolist() == [second]
    with pytest.raises(KeyError):
        store.load_scenario(first)
    entry = store.read_audit_log(limit=1).iloc[0]
    assert entry["action"] == "delete_scenario" and entry["detail"]["scenario_id"] == first


# -- plans ---------------------------------------------------------------------------------------------------------

def test_saving_never_overwrites_and_versions_compare_and_restore(store):
    v1 = store.save_plan("2025 分片包干", make_assignments(50), parameters={"threshold_min": 30},
                         summary={"max_travel_min": 21.3}, actor=ALICE)
    plan_b = make_assignments(50)
    plan_b.loc[[3, 7], "agency_id"] = ["A006", None]
    plan_b.loc[9, "backup_agency_id"] = "A000"
    changes = [{"unit_id": "U00003", "from_agency": "A003", "to_agency": "A006", "why": "capacity"}]
    v2 = store.save_plan("2025 分片包干", plan_b, changes=changes)
    assert (v1.version, v2.version, v2.parent_version) == (1, 2, 1)
    assert rows(store.load_plan("2025 分片包干", 1).assignments) == rows(make_assignments(50))
    latest = store.load_plan("2025 分片包干")
    assert latest.version == 2 and latest.assignments["agency_id"].iloc[7] is None
    assert latest.changes.to_dict("records") == changes

    diff = store.compare_plans("2025 分片包干", 1, 2)
    assert diff.to_dict("records") == [
        {"unit_id": "U00003", "from_agency": "A003", "to_agency": "A006", "from_backup": "A004", "to_backup": "A004"},
        {"unit_id": "U00007", "from_agency": "A000", "to_agency": None, "from_backup": "A001", "to_backup": "A001"},
        {"unit_id": "U00009", "from_agency": "A002", "to_agency": "A002", "from_backup": "A003", "to_backup": "A000"},
    ]
    v3 = store.restore_plan("2025 分片包干", 1, actor=ALICE)
    assert (v3.version, v3.parent_version, v3.parameters, v3.created_by) == (3, 1, {"threshold_min": 30}, "alice")
    restored = store.load_plan("2025 分片包干", 3)
    assert rows(restored.assignments) == rows(make_assignments(50))
    assert restored.changes["unit_id"].tolist() == ["U00003", "U00007", "U00009"]
    assert set(restored.changes["why"]) == {"restored from version 1"}
    assert store.compare_plans("2025 分片包干", 1, 3).empty
    versions = store.list_plan_versions("2025 分片包干")
    assert versions["version"].tolist() == [1, 2, 3]
    assert versions["created_by"].tolist() == ["alice", "local", "alice"]
    audit = store.read_audit_log(action="restore_plan")
    assert audit.iloc[0]["detail"]["restored_from"] == 1 and audit.iloc[0]["detail"]["replaced_version"] == 2
    assert store.list_plans().to_dict("records")[0]["n_versions"] == 3


def test_plans_are_independent_and_missing_ones_are_named(store):
    store.save_plan("a", make_assignments(5))
    store.save_plan("b", make_assignments(5, shift=1))
    store.save_plan("a", make_assignments(5, shift=2))
    assert store.list_plans()[["plan_id", "latest_version"]].values.tolist() == [["a", 2], ["b", 1]]
    with pytest.raises(KeyError, match="no plan named 'c'"):
        store.load_plan("c")
    with pytest.raises(KeyError, match="no version 9"):
        store.load_plan("a", 9)
    assert len(store.compare_plans("a", 1, 1, other_plan_id="b")) == 5


def test_invalid_assignments_are_refused_with_every_problem(store):
    bad = make_assignments(6)
    bad.loc[2, "unit_id"] = "U00001"
    bad.loc[4, "travel_min"] = -3.0
    bad["locked"] = bad["locked"].astype(object)
    bad.loc[5, "locked"] = "perhaps"
    with pytest.raises(InputError) as caught:
        store.save_plan("p", bad)
    assert [(p.row, p.column) for p in caught.value.problems] == [(3, "unit_id"), (5, "travel_min"), (6, "locked")]
    with pytest.raises(InputError, match="demand"):
        store.save_plan("p", make_assignments(3).assign(demand=1.0))
    assert store.list_plans().empty and store.read_audit_log().empty


def test_tampered_plan_rows_are_detected(store):
    store.save_plan("p", make_assignments(20))
    store._connection.execute("UPDATE plan_assignments SET agency_id = 'A005' WHERE unit_id = 'U00002'")
    with pytest.raises(PlanIntegrityError, match="checksum"):
        store.load_plan("p")


# -- files: validation, migrations, creation, backup ------------------------------------------------------------------

def test_files_that_are_not_workspaces_are_refused(tmp_path):
    text = tmp_path / "notes.gpkg"
    text.write_text("agency_id,name\nA1,x\n")
    with pytest.raises(WorkspaceFileError, match="not an SQLite database"):
        open_store(text)
    (tmp_path / "empty.gpkg").write_bytes(b"")
    with pytest.raises(WorkspaceFileError, match="is empty"):
        open_store(tmp_path / "empty.gpkg")
    plain = tmp_path / "plain.sqlite"
    with sqlite3.connect(plain) as connection:
        connection.execute("CREATE TABLE t (x)")
    with pytest.raises(WorkspaceFileError, match="not a GeoPackage"):
        open_store(plain)
    foreign = tmp_path / "qgis_export.gpkg"
    pyogrio.write_dataframe(make_agencies(3), foreign, layer="agencies")
    with pytest.raises(WorkspaceFileError, match="not an LTCI workspace"):
        open_store(foreign)
    with pytest.raises(FileNotFoundError):
        open_store(tmp_path / "missing.gpkg")


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "ws.gpkg"
    open_store(path, create=True).close()
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO schema_version (version, applied_at, description) "
                           "VALUES (?, '2030-01-01T00:00:00Z', 'future')", (SCHEMA_VERSION + 1,))
    with pytest.raises(WorkspaceFileError, match=f"newer version of the app \\(workspace schema {SCHEMA_VERSION + 1}"):
        open_store(path)


def test_older_schema_is_migrated_after_a_backup(tmp_path):
    path = tmp_path / "ws.gpkg"
    create_workspace_file(path, upto=1)
    with sqlite3.connect(path) as connection:
        indexes_before = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "agencies_agency_id" not in indexes_before
    with GeoPackageStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION == 2
        assert store.upsert_agencies(make_agencies(3))["inserted"] == 3  # needs the unique key of migration 2
    with sqlite3.connect(path) as connection:
        applied = connection.execute("SELECT version, description FROM schema_version ORDER BY version").fetchall()
    assert [v for v, _ in applied] == [1, 2]
    backup = tmp_path / "ws.schema1.bak.gpkg"
    with sqlite3.connect(backup) as connection:
        assert connection.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 1


def test_open_workspace_seeds_once_and_never_overwrites(tmp_path):
    path = tmp_path / "demo" / "andorra.gpkg"
    calls = []

    def seed(store):
        calls.append(1)
        store.replace_agencies(make_agencies(9), source="data/andorra")
        store.replace_units(make_units(4))
        store.set_region_meta({"region": "andorra"})

    with open_workspace(path, seed_from=seed) as store:
        assert store.contents()["agencies"] == 9
        store.delete_agencies(["A000"])
        store.save_plan("p", make_assignments(4))
    with open_workspace(path, seed_from=seed) as store:
        assert len(calls) == 1
        assert store.contents() | {"location": None} == {
            "agencies": 8, "units": 4, "plans": 1, "plan_versions": 1, "scenarios": 0,
            "audit_entries": 6, "schema_version": SCHEMA_VERSION, "location": None}
        assert store.read_audit_log()["action"].tolist()[-1] == "replace_agencies"
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(("-wal", "-shm"))) == ["andorra.gpkg"]


def test_failed_seed_leaves_no_workspace(tmp_path):
    path = tmp_path / "ws.gpkg"

    def seed(store):
        store.replace_agencies(make_agencies(3))
        raise RuntimeError("data/ is incomplete")

    with pytest.raises(RuntimeError, match="incomplete"):
        open_workspace(path, seed_from=seed)
    assert list(tmp_path.iterdir()) == []


def test_backup_is_a_self_contained_copy(store, tmp_path):
    store.replace_agencies(make_agencies(7))
    store.save_plan("p", make_assignments(30))
    target = store.backup_to(tmp_path / "backups" / "ws-backup.gpkg")
    store.save_plan("p", make_assignments(30, shift=1))
    assert not (tmp_path / "backups" / "ws-backup.gpkg-wal").exists()
    with sqlite3.connect(target) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    with open_store(target) as copy:
        assert copy.contents()["plan_versions"] == 1
        assert copy.integrity_check() == "ok"
        assert rows(copy.load_plan("p").assignments) == rows(make_assignments(30))
    assert len(pyogrio.read_dataframe(target, layer="agencies")) == 7


def test_demo_workspace_is_seeded_from_the_region_folder(tmp_path):
    from workspace.seed import open_demo_workspace

    agencies = gpd.read_file(settings.demo_region_dir / "agencies.geojson")
    units = gpd.read_file(settings.demo_region_dir / "units.geojson")
    path = tmp_path / "demo.gpkg"
    with open_demo_workspace(path) as store:
        stored = store.read_agencies()
        assert len(stored) == len(agencies) and store.contents()["units"] == len(units)
        assert stored["agency_id"].tolist() == [str(a) for a in agencies["agency_id"]]
        assert stored["capacity"].sum() == agencies["capacity"].sum()
        assert store.read_units()["population"].sum() == pytest.approx(units["population"].sum())
        assert store.get_region_meta()["name"] == "Andorra (demo region)"
        store.delete_agencies([stored["agency_id"].iloc[0]])
    with open_demo_workspace(path) as store:  # second start: the bureau's edit survives
        assert store.contents()["agencies"] == len(agencies) - 1
