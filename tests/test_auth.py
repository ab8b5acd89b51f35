"""Planner login: bcrypt hashes, throttled failures, open demo mode, and residents kept away from writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bcrypt
import pandas as pd
import pytest

from workspace.auth import (
    PASSWORD_HASH_ENV,
    RESIDENT,
    USER_ENV,
    Actor,
    LoginThrottle,
    check_login,
    hash_password,
    login_configured,
    planner_credentials,
    require_planner,
)
from workspace.store import open_store

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "护理-planner-2025"
# Cost 4 keeps the suite fast; the default (12) is exercised once in test_hash_password_is_salted_bcrypt.
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
ENV = {PASSWORD_HASH_ENV: HASH, USER_ENV: "zhang"}


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_hash_password_is_salted_bcrypt_and_never_the_password():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second  # salted
    assert first.startswith("$2b$12$") and len(first) == 60
    assert PASSWORD not in first
    assert bcrypt.checkpw(PASSWORD.encode(), first.encode())
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")
    with pytest.raises(ValueError, match="72"):
        hash_password("长" * 30)  # 90 UTF-8 bytes: bcrypt would silently ignore the tail


def test_configuration_from_environment_or_secrets():
    assert not login_configured(environ={})
    assert login_configured(environ=ENV)
    from_secrets = planner_credentials(secrets={"planner_password_hash": HASH}, environ={})
    assert (from_secrets.user, from_secrets.source) == ("planner", "secrets")
    assert planner_credentials(environ=ENV).user == "zhang"
    with pytest.raises(ValueError, match="not a bcrypt hash"):
        login_configured(environ={PASSWORD_HASH_ENV: PASSWORD})  # a plain-text password pasted by mistake


def test_correct_and_incorrect_logins():
    throttle = LoginThrottle(clock=FakeClock())
    result = check_login("zhang", PASSWORD, environ=ENV, throttle=throttle)
    assert result.ok and result.actor == Actor("zhang", "planner")
    assert not check_login("zhang", PASSWORD + "x", environ=ENV, throttle=throttle).ok
    assert not check_login("li", PASSWORD, environ=ENV, throttle=throttle).ok  # right password, wrong user
    assert not check_login("zhang", "", environ=ENV, throttle=throttle).ok
    assert not check_login("zhang", "长" * 30, environ=ENV, throttle=throttle).ok  # too long: a failure, no crash
    demo = check_login("zhang", PASSWORD, environ={}, throttle=throttle)
    assert not demo.ok and "open demo mode" in demo.message


def test_backoff_grows_exponentially_and_success_resets_it():
    clock = FakeClock()
    throttle = LoginThrottle(free_failures=2, base_delay=1.0, factor=2.0, max_delay=60.0, clock=clock)
    delays = []
    for _ in range(9):
        result = check_login("zhang", "wrong password", environ=ENV, throttle=throttle)
        assert not result.ok
        delays.append(result.retry_after)
        # While locked out, even the right password is not checked.
        if result.retry_after > 0:
            locked = check_login("zhang", PASSWORD, environ=ENV, throttle=throttle)
            assert not locked.ok and locked.retry_after == pytest.approx(result.retry_after)
            assert "try again" in locked.message
        clock.now += result.retry_after
    assert delays == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    # Other user names are throttled separately; case and spaces do not give fresh attempts.
    assert throttle.failures(" ZHANG ") == 9
    assert throttle.failures("li") == 0
    assert check_login("zhang", PASSWORD, environ=ENV, throttle=throttle).ok
    assert throttle.failures("zhang") == 0 and throttle.retry_after("zhang") == 0


def test_resident_session_cannot_reach_any_planner_action(tmp_path):
    with pytest.raises(PermissionError, match="planner login"):
        require_planner("resident")
    with pytest.raises(PermissionError):
        require_planner(RESIDENT)
    require_planner(Actor("zhang", "planner"))
    with pytest.raises(ValueError, match="unknown role"):
        Actor("x", "admin")

    import geopandas as gpd
    import shapely

    agencies = gpd.GeoDataFrame({"agency_id": ["A1"]}, geometry=[shapely.Point(1.5, 42.5)], crs="EPSG:4326")
    units = gpd.GeoDataFrame({"unit_id": ["U1"]}, geometry=[shapely.box(1.5, 42.5, 1.6, 42.6)], crs="EPSG:4326")
    plan = pd.DataFrame({"unit_id": ["U1"], "agency_id": ["A1"]})
    with open_store(tmp_path / "ws.gpkg", create=True) as store:
        store.save_plan("p", plan)
        scenario = store.save_scenario("s", agencies)
        before = store.contents()
        actions = {
            "replace_agencies": lambda a: store.replace_agencies(agencies, actor=a),
            "upsert_agencies": lambda a: store.upsert_agencies(agencies, actor=a),
            "delete_agencies": lambda a: store.delete_agencies(["A1"], actor=a),
            "replace_units": lambda a: store.replace_units(units, actor=a),
            "upsert_units": lambda a: store.upsert_units(units, actor=a),
            "delete_units": lambda a: store.delete_units(["U1"], actor=a),
            "set_region_meta": lambda a: store.set_region_meta({"k": 1}, actor=a),
            "save_plan": lambda a: store.save_plan("p", plan, actor=a),
            "restore_plan": lambda a: store.restore_plan("p", 1, actor=a),
            "save_scenario": lambda a: store.save_scenario("s", agencies, actor=a),
            "delete_scenario": lambda a: store.delete_scenario(scenario, actor=a),
            "record_audit": lambda a: store.record_audit("x", actor=a),
        }
        for name, action in actions.items():
            with pytest.raises(PermissionError):
                action(RESIDENT)
            with pytest.raises(TypeError, match="Actor"):
                action("zhang")  # a bare user name must not pass for a planner session
        assert store.contents() == before
        # Reads stay open to residents.
        assert len(store.load_plan("p").assignments) == 1 and len(store.read_agencies()) == 0


def test_cli_prints_a_hash_for_a_password_on_stdin():
    done = subprocess.run([sys.executable, "-m", "workspace.auth", "hash"], input=PASSWORD + "\n", cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    assert bcrypt.checkpw(PASSWORD.encode(), printed.encode())
    assert PASSWORD not in done.stdout + done.stderr
    bad = subprocess.run([sys.executable, "-m", "workspace.auth"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr
