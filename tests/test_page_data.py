"""The 数据管理 (data) page through Streamlit's AppTest, each test on its own temporary workspace.

The app is pointed at the workspace with ``LTCI_WORKSPACE`` so no test touches a real one. Seeding from
``data/andorra`` happens once per module; each test gets a fresh copy of the seeded file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from workspace.auth import RESIDENT, LoginThrottle, hash_password
from workspace.store import open_store

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
FIXTURES = ROOT / "tests" / "fixtures" / "registry"
TIMEOUT = 120
PASSWORD = "correct horse battery"


def _data_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("ui/pages/data.py").run()
    assert not at.exception, at.exception
    return at


def _store_of(at):
    """The store the app itself holds (a second connection to the same file would do as well)."""
    from ui.workspace_session import _open_workspace, workspace_location

    return _open_workspace(workspace_location())


def _by_key(elements, key):
    return next(e for e in elements if e.key == key)


def _upload(at, key: str, path: Path, name: str | None = None):
    _by_key(at.file_uploader, key).set_value((name or path.name, path.read_bytes(), "application/octet-stream"))
    return at.run()


def _table(at, *columns: str) -> pd.DataFrame:
    """The first table on the page with all of ``columns`` (st.dataframe elements carry no key in AppTest)."""
    return next(d.value for d in [*at.dataframe, *at.table] if set(columns) <= set(d.value.columns))


def _button(at, key: str):
    return _by_key(at.button, key)


def _markdowns(at) -> list[str]:
    return [m.value for m in at.markdown]


# ----------------------------------------------------------------------------------------------------------------
def test_page_shows_the_workspace_contents(workspace_path):
    at = _data_page()
    assert at.title[0].value == "数据管理"
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["护理机构"] == "18" and metrics["村/社区"] == "70" and metrics["方案版本"] == "0"
    assert any(str(workspace_path) in c.value and "结构版本 2" in c.value for c in at.caption)
    registry = _table(at, "机构编号", "机构名称", "联系电话")
    assert len(registry) == 18 and {"机构编号", "机构名称", "状态"} <= set(registry.columns)
    assert (registry["状态"] == "暂停").sum() == 1
    audit = _table(at, "操作", "用户")
    assert "replace_agencies" in set(audit["操作"]) and set(audit["用户"]) == {"local"}
    # Open demo mode is announced, and writes are allowed.
    assert any("开放演示模式" in c.value for c in at.sidebar.caption)
    assert not _button(at, "data.backup").disabled


def test_broken_agencies_file_shows_the_report_not_a_crash(workspace_path):
    at = _data_page()
    at = _upload(at, "data.agency_file.0", FIXTURES / "bad_counts.csv")
    assert not at.exception
    assert any("校验报告 · bad_counts.csv" in m and "可导入 1 行，错误 4 条" in m for m in _markdowns(at))
    report = _table(at, "行号", "原因")
    assert [int(r) for r in report["行号"]] == [2, 3, 4, 5]
    assert set(report["代码"]) == {"non_numeric_count", "negative_count", "quality_score_out_of_range"}
    assert any("'many' is not a number" in r for r in report["原因"])
    assert set(report["级别"]) == {"错误（未导入）"}
    # Lenient mode offers the one good row and says the others stay out.
    assert any("1 家机构" in w.value and "4 行" in w.value for w in at.warning)
    assert _button(at, "data.agency_import").label == "合并导入 1 家机构"

    # Strict mode refuses the whole file.
    _by_key(at.toggle, "data.agency_strict").set_value(True)
    at.run()
    assert any("严格模式" in e.value and "4 行错误" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "data.agency_import"]

    # A PNG renamed to .csv is a file-level problem: an error naming it, no import button, no traceback.
    at = _upload(at, "data.agency_file.0", FIXTURES / "png_renamed.csv")
    assert not at.exception
    assert any("无法读取 png_renamed.csv" in e.value and "PNG image" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "data.agency_import"]
    assert len(_store_of(at).read_agencies()) == 18


def test_good_agencies_file_lands_in_the_workspace_and_the_registry(workspace_path):
    at = _data_page()
    at = _upload(at, "data.agency_file.0", FIXTURES / "andorra_good.csv")
    assert any("可导入 6 行，错误 0 条" in m for m in _markdowns(at))
    _button(at, "data.agency_import").click().run()
    assert not at.exception
    assert any("新增 6 家，更新 0 家" in s.value for s in at.success)
    registry = _table(at, "机构编号", "机构名称", "联系电话")
    assert len(registry) == 24 and "AD-001" in set(registry["机构编号"])
    assert {m.label: m.value for m in at.metric}["护理机构"] == "24"
    # The uploader starts empty again, so the same file cannot be imported twice by accident.
    assert not [b for b in at.button if b.key == "data.agency_import"]
    stored = open_store(workspace_path).read_agencies()
    assert len(stored) == 24
    row = stored[stored["agency_id"] == "AD-001"].iloc[0]
    assert row["name"] == "Hospital de Nostra Senyora de Meritxell" and row["capacity"] == 120
    assert abs(row.geometry.x - 1.5339379) < 1e-7
    log = _store_of(at).read_audit_log(limit=1)
    assert log.loc[0, "action"] == "upsert_agencies" and log.loc[0, "user"] == "local"
    # Every page's region now has the workspace's registry (sidebar summary).
    assert any("24 家机构" in c.value for c in at.sidebar.caption)


def test_status_change_is_saved_and_audited(workspace_path):
    at = _data_page()
    agencies = _store_of(at).read_agencies()
    target = agencies[agencies["status"] == "designated"].iloc[0]
    _by_key(at.selectbox, "data.status_agency").select(target["agency_id"])
    _by_key(at.selectbox, "data.status_new").select("suspended")
    _by_key(at.text_input, "data.status_reason").input("failed the annual review")
    at.run()
    _button(at, "data.status_save").click().run()
    assert not at.exception
    assert any("定点 → 暂停" in s.value for s in at.success)
    stored = open_store(workspace_path).read_agencies().set_index("agency_id")
    assert stored.loc[target["agency_id"], "status"] == "suspended"
    assert (stored["status"] == "suspended").sum() == 2 and len(stored) == 18
    entry = _store_of(at).read_audit_log(action="change_status").iloc[0]
    assert entry["detail"] == {"agency_id": target["agency_id"], "name": target["name"], "from": "designated",
                               "to": "suspended", "reason": "failed the annual review"}


def _assignments(units: list[str], agencies: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"unit_id": units, "agency_id": agencies})


def test_restoring_a_plan_version_creates_a_new_version(workspace_path):
    store = open_store(workspace_path)
    units = ["AD02001", "AD02002", "AD03001"]
    store.save_plan("north", _assignments(units, ["a1", "a1", "a2"]), parameters={"max_minutes": 30})
    store.save_plan("north", _assignments(units, ["a2", "a1", "a2"]), parent_version=1)
    store.close()

    at = _data_page()
    versions = _table(at, "版本", "保存人")
    assert list(versions["版本"]) == [1, 2]
    assert any("有 1 个单元的负责机构不同" in m for m in _markdowns(at))  # v1 → v2 moves AD02001
    diff = _table(at, "unit_id", "from_agency", "to_agency")
    assert list(diff["unit_id"]) == ["AD02001"] and diff.loc[0, "to_agency"] == "a2"

    _by_key(at.selectbox, "data.restore_version").select(1)
    _button(at, "data.restore_go").click().run()
    assert not at.exception
    assert any("已将版本 1 恢复为新版本 3" in s.value for s in at.success)
    reopened = open_store(workspace_path)
    assert list(reopened.list_plan_versions("north")["version"]) == [1, 2, 3]
    v3 = reopened.load_plan("north", 3)
    assert list(v3.assignments["agency_id"]) == ["a1", "a1", "a2"] and v3.meta.parent_version == 1
    assert v3.meta.parameters == {"max_minutes": 30}
    # Nothing was overwritten: version 2 is still there as it was.
    assert list(reopened.load_plan("north", 2).assignments["agency_id"]) == ["a2", "a1", "a2"]
    assert reopened.read_audit_log(limit=1).loc[0, "action"] == "restore_plan"


def test_scenarios_and_units_import_report(workspace_path, tmp_path):
    store = open_store(workspace_path)
    sites = store.read_agencies().head(3)
    store.save_scenario("three sites", sites, parameters={"p": 3}, results={"covered_share": 0.91})
    store.close()
    at = _data_page()
    scenarios = _table(at, "名称", "机构数")
    assert list(scenarios["名称"]) == ["three sites"] and list(scenarios["机构数"]) == [3]
    assert len(_table(at, "agency_id", "lon", "lat")) == 3

    # A units CSV without population: refused with the reason, the 'uniform' choice named.
    csv = tmp_path / "villages.csv"
    csv.write_text("unit_id,name,township,lon,lat\nAD02001,Canillo,Canillo,1.597,42.567\n"
                   "AD02002,Soldeu,Canillo,1.667,42.577\n", encoding="utf-8")
    at = _upload(at, "data.units_file.0", csv)
    assert not at.exception
    assert any("无法读取 villages.csv" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "data.units_import"]
    _by_key(at.radio, "data.units_missing").set_value("uniform").run()
    assert any("可导入 2 行" in m for m in _markdowns(at))
    _button(at, "data.units_import").click().run()
    assert not at.exception
    assert len(open_store(workspace_path).read_units()) == 2


def test_offline_download_is_disabled_with_a_clear_message(workspace_path, monkeypatch):
    import ui.workspace_session as ws

    monkeypatch.setattr(ws, "_probe", lambda host, port, timeout_s: False)
    ws.is_online.clear()
    at = _data_page()
    assert any(w.value == "当前离线，无法下载；请上传 OSM 文件" for w in at.warning)
    assert _button(at, "data.download_go").disabled
    assert _by_key(at.text_input, "data.place").disabled
    ws.is_online.clear()


# ----------------------------------------------------------------------------------------------------------------
# Planner login
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture()
def login(workspace_path, monkeypatch):
    """A configured planner login (a fast bcrypt hash) and a fresh throttle on a fake clock."""
    import ui.workspace_session as ws

    user = f"planner-{workspace_path.parent.name}"
    monkeypatch.setenv("LTCI_PLANNER_PASSWORD_HASH", hash_password(PASSWORD, rounds=4))
    monkeypatch.setenv("LTCI_PLANNER_USER", user)
    now = [1000.0]
    throttle = LoginThrottle(free_failures=3, base_delay=30.0, clock=lambda: now[0])
    monkeypatch.setattr(ws, "default_throttle", throttle)
    return user, now


def _log_in(at, user: str, password: str):
    _by_key(at.sidebar.text_input, "workspace.login_user").input(user)
    _by_key(at.sidebar.text_input, "workspace.login_password").input(password)
    next(b for b in at.sidebar.button if b.label == "登录").click()
    return at.run()


def test_resident_session_cannot_reach_planner_actions(workspace_path, login):
    at = _data_page()
    assert not any("开放演示模式" in c.value for c in at.sidebar.caption)
    assert any("居民（只读）" in c.value for c in at.sidebar.caption)
    assert any("需要规划员登录" in i.value for i in at.info)
    assert _button(at, "data.backup").disabled and _button(at, "data.status_save").disabled
    at = _upload(at, "data.agency_file.0", FIXTURES / "andorra_good.csv")
    assert any("可导入 6 行" in m for m in _markdowns(at))  # residents may check a file ...
    assert _button(at, "data.agency_import").disabled   # ... but not import it
    # Even a control that slipped through could not write: the store refuses a resident.
    store = _store_of(at)
    from geo.registry import read_agencies

    good, _ = read_agencies(FIXTURES / "andorra_good.csv")
    with pytest.raises(PermissionError):
        store.upsert_agencies(good, actor=RESIDENT)
    with pytest.raises(PermissionError):
        store.save_plan("p", _assignments(["AD02001"], ["a"]), actor=RESIDENT)
    assert len(store.read_agencies()) == 18 and store.contents()["plan_versions"] == 0


def test_failed_logins_slow_down_and_the_audit_log_records_the_planner(workspace_path, login):
    user, now = login
    at = _data_page()
    for _ in range(3):
        at = _log_in(at, user, "wrong password")
        assert any(e.value == "用户名或密码错误。" for e in at.sidebar.error)
    at = _log_in(at, user, "wrong password")  # the fourth failure starts a 30 s lock-out
    assert any("请在 30 秒后重试" in e.value for e in at.sidebar.error)
    at = _log_in(at, user, PASSWORD)  # even the right password waits out the lock-out
    assert any("请在 30 秒后重试" in e.value for e in at.sidebar.error)
    assert _button(at, "data.backup").disabled

    now[0] += 31
    at = _log_in(at, user, PASSWORD)
    assert not at.exception
    assert any(f"已登录规划员：{user}" in s.value for s in at.sidebar.success)
    assert not _button(at, "data.backup").disabled
    at = _upload(at, "data.agency_file.0", FIXTURES / "andorra_good.csv")
    _button(at, "data.agency_import").click().run()
    log = open_store(workspace_path).read_audit_log(limit=2)
    assert list(log["action"]) == ["upsert_agencies", "login"] and set(log["user"]) == {user}

    next(b for b in at.sidebar.button if b.key == "workspace.logout").click().run()
    assert _button(at, "data.backup").disabled
    assert open_store(workspace_path).read_audit_log(limit=1).loc[0, "action"] == "logout"


def test_a_plain_text_password_in_the_setting_is_refused_not_demo_mode(workspace_path, monkeypatch):
    monkeypatch.setenv("LTCI_PLANNER_PASSWORD_HASH", "hunter22")
    at = _data_page()
    assert any("配置有误" in e.value and "not a bcrypt hash" in e.value for e in at.sidebar.error)
    assert not any("开放演示模式" in c.value for c in at.sidebar.caption)
    assert _button(at, "data.backup").disabled



# ----------------------------------------------------------------------------------------------------------------
# Region from uploaded files
# ----------------------------------------------------------------------------------------------------------------
def _grid_town_osm(n: int = 5, spacing_deg: float = 0.01, lon0: float = 121.10, lat0: float = 30.00) -> bytes:
    """An OSM XML town: an n × n grid of two-way residential streets."""
    nid = lambda i, j: 1000 + i * n + j  # noqa: E731
    nodes = [f'<node id="{nid(i, j)}" version="1" lat="{lat0 + i * spacing_deg:.6f}" lon="{lon0 + j * spacing_deg:.6f}"/>'
             for i in range(n) for j in range(n)]
    def way(way_id: int, refs) -> str:
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        return f'<way id="{way_id}" version="1">{nds}<tag k="highway" v="residential"/></way>'

    ways = [way(i + 1, [nid(i, j) for j in range(n)]) for i in range(n)]
    ways += [way(n + j + 1, [nid(i, j) for i in range(n)]) for j in range(n)]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="tests">\n'
            + "\n".join(nodes + ways) + "\n</osm>\n").encode("utf-8")


def test_a_region_from_uploaded_files_becomes_a_sidebar_choice(workspace_path):
    at = _data_page()
    villages = ("行政区划代码,名称,乡镇,经度,纬度,人口\n330281001001,东村,甲镇,121.105,30.005,1200\n"
                "330281001002,西村,甲镇,121.135,30.012,900\n330281002001,北村,乙镇,121.125,30.035,800\n")
    _by_key(at.file_uploader, "data.region_osm").set_value(("town.osm", _grid_town_osm(), "application/xml"))
    _by_key(at.file_uploader, "data.region_units").set_value(("villages.csv", villages.encode("utf-8"), "text/csv"))
    _by_key(at.text_input, "data.region_name").input("测试镇")
    at.run()
    _button(at, "data.region_load").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("已载入区域 测试镇：3 个单元，0 家机构" in s.value for s in at.success), [s.value for s in at.success]
    _button(at, "data.switch_region").click().run()
    assert not at.exception
    from ui.common import REGION_KEY

    assert at.session_state[REGION_KEY] == "📁 测试镇"
    assert "📁 测试镇" in at.sidebar.selectbox[0].options
    assert any("3 个村/社区 · 0 家机构" in c.value for c in at.sidebar.caption)
    # The workspace (the demo region's) is untouched by a session region.
    assert {m.label: m.value for m in at.metric}["护理机构"] == "18"
