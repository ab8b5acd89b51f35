"""The app shell and the agency page through Streamlit's AppTest; the strings table; the shared UI helpers."""

from __future__ import annotations

import io
import re
import string
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from streamlit.testing.v1 import AppTest

from geo.schema import CARE_TYPES
from ui import strings

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 120


# ----------------------------------------------------------------------------------------------------------------
# Strings
# ----------------------------------------------------------------------------------------------------------------
def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_string_has_both_languages_with_the_same_placeholders():
    for key, entry in strings.STRINGS.items():
        assert set(entry) == set(strings.LANGUAGES), key
        assert all(entry[lang].strip() for lang in strings.LANGUAGES), key
        assert _fields(entry["zh"]) == _fields(entry["en"]), key


def test_every_key_used_in_the_ui_exists():
    sources = [ROOT / "app.py", *sorted((ROOT / "ui").rglob("*.py"))]
    used = set()
    for path in sources:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\btr?\(\s*[\"']([a-z_]+(?:\.[a-z0-9_]+)+)[\"']", text))
    assert used, "no string keys found"
    missing = sorted(k for k in used if k not in strings.STRINGS)
    assert not missing, missing
    # Keys built at run time: every vocabulary value and every finder reason.
    from geo.finder import NOT_OFFERED_REASONS
    from geo.schema import CARE_TYPES, SERVICE_MODES, STATUSES

    for kind, values in (("care_type", CARE_TYPES), ("status", STATUSES), ("service_mode", SERVICE_MODES),
                         ("finder.reason", NOT_OFFERED_REASONS), ("map.basemap", ("none", "osm", "amap", "tianditu")),
                         ("coord", ("wgs84", "gcj02", "bd09")), ("finder.method", ("village", "click", "coords"))):
        for value in values:
            assert f"{kind}.{value}" in strings.STRINGS, (kind, value)


def test_t_formats_and_fails_loudly_on_typos():
    assert strings.t("agency.visible", lang="zh", n=3) == "地图上显示 3 家机构"
    assert strings.t("agency.visible", lang="en", n=3) == "3 agencies on the map"
    assert strings.label("care_type", "hospital", lang="zh") == "医院护理"
    assert strings.modes_label("home_visit;day_care", lang="en") == "Home visits, Day care"
    with pytest.raises(KeyError):
        strings.t("agency.visibel")


# ----------------------------------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------------------------------
def test_table_bytes_in_every_format(tmp_path):
    from ui.common import table_bytes

    frame = gpd.GeoDataFrame({"unit_id": ["330281001001"], "名称": ["凤山街道"], "minutes": [12.5]},
                             geometry=[shapely.Point(121.15, 30.04)], crs="EPSG:4326")
    csv = table_bytes(frame, "csv")
    assert csv.startswith(b"\xef\xbb\xbf") and "凤山街道" in csv.decode("utf-8-sig")
    back = pd.read_csv(io.BytesIO(csv), dtype={"unit_id": str})
    assert back.loc[0, "unit_id"] == "330281001001" and back.loc[0, "lon"] == 121.15
    xlsx = pd.read_excel(io.BytesIO(table_bytes(frame, "xlsx")))
    assert str(xlsx.loc[0, "unit_id"]) == "330281001001" and xlsx.loc[0, "名称"] == "凤山街道"
    path = tmp_path / "t.gpkg"
    path.write_bytes(table_bytes(frame, "gpkg", layer="units"))
    gpkg = gpd.read_file(path, layer="units")
    assert gpkg.loc[0, "unit_id"] == "330281001001" and gpkg.geometry.iloc[0].x == pytest.approx(121.15)
    from geo.errors import InputError

    with pytest.raises(InputError, match="needs a table with geometry"):
        table_bytes(pd.DataFrame({"a": [1]}), "gpkg")


def _raise_input_error():
    import streamlit as st

    from geo.errors import InputError, Problem
    from ui.common import friendly_errors

    with friendly_errors():
        st.write("before")
        raise InputError("the agencies file has problems", [Problem("missing name", row=3, column="name")])
    with friendly_errors():
        raise RuntimeError("internal detail that must not leak")
    st.write("after")


def test_friendly_errors_show_what_to_fix_and_never_a_traceback():
    at = AppTest.from_function(_raise_input_error, default_timeout=TIMEOUT).run()
    assert not at.exception
    messages = [e.value for e in at.error]
    assert len(messages) == 2
    assert "the agencies file has problems" in messages[0] and "请修改" in messages[0]
    assert "RuntimeError" in messages[1] and "internal detail" not in messages[1] and "Traceback" not in messages[1]
    assert any("row 3: missing name" in m.value for m in at.markdown)
    assert at.markdown[-1].value == "after"


# ----------------------------------------------------------------------------------------------------------------
# The app and the agency page
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture()
def app():
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def _by_key(elements, key):
    return next(e for e in elements if e.key == key)


def test_app_opens_on_the_agency_map_in_chinese(app):
    assert not app.exception
    assert not app.error
    assert app.title[0].value == "长护险护理机构地图"
    assert any(m.value == "地图上显示 18 家机构" for m in app.markdown)
    assert any("© OpenStreetMap contributors (ODbL)" in c.value for c in app.sidebar.caption)
    # The visible agency table: one row per agency, Chinese headers.
    table = app.dataframe[0].value
    assert len(table) == 18 and "机构名称" in table.columns
    # No beneficiary-level column anywhere on the page.
    assert not {"beneficiary", "person", "client_name", "id_card"} & {c.lower() for c in table.columns}


def test_selecting_a_village_lists_agencies_by_minutes(app):
    from geo.finder import find_agencies
    from geo.region import load_demo_region

    _by_key(app.selectbox, "agency_map.village").select("AD02001").run()  # Canillo
    assert not app.exception and not app.error
    shown = app.table[0].value
    minutes = shown["行车分钟"].astype(float).to_numpy()
    assert len(shown) == 5 and np.all(np.diff(minutes) >= 0)
    region = load_demo_region()
    unit = region.units[region.units["unit_id"] == "AD02001"].iloc[0]
    expected = find_agencies(region, lon=unit.rep_lon, lat=unit.rep_lat, k=5)
    expected = expected[expected["offered"]]
    assert list(shown["机构名称"]) == list(expected["name"])
    np.testing.assert_allclose(minutes, expected["minutes"].round(1).to_numpy(), atol=0.051)
    # The closer suspended centre is explained, not listed.
    assert any("暂停" in i.value and "Encamp" in i.value for i in app.info)
    assert any("到 Centre de rehabilitació" in s.value for s in app.success)


def test_filters_change_the_visible_agencies(app):
    _by_key(app.multiselect, "agency_map.care_types@zh").set_value(["hospital"]).run()
    assert any(m.value == "地图上显示 8 家机构" for m in app.markdown)
    assert len(app.dataframe[0].value) == 8
    _by_key(app.multiselect, "agency_map.statuses@zh").set_value(["suspended"]).run()
    assert any(m.value == "没有符合筛选条件的机构，请放宽筛选。" for m in app.markdown)
    _by_key(app.multiselect, "agency_map.care_types@zh").set_value(["home", "institution"]).run()
    _by_key(app.multiselect, "agency_map.statuses@zh").set_value(["designated"]).run()
    _by_key(app.multiselect, "agency_map.townships").set_value(["Escaldes-Engordany"]).run()
    assert len(app.dataframe[0].value) == 5  # 4 home + 1 institution designated there
    assert not app.exception


def test_language_toggle_switches_to_english(app):
    _by_key(app.multiselect, "agency_map.care_types@zh").set_value(["hospital"]).run()
    _by_key(app.radio, "lang").set_value("en").run()
    assert not app.exception
    # The filter survives the switch; its widget now has English labels.
    assert _by_key(app.multiselect, "agency_map.care_types@en").value == ["hospital"]
    assert any(m.value == "8 agencies on the map" for m in app.markdown)
    _by_key(app.multiselect, "agency_map.care_types@en").set_value(list(CARE_TYPES)).run()
    assert app.title[0].value == "LTCI care agency map"
    assert any(m.value == "18 agencies on the map" for m in app.markdown)
    assert "Agency" in app.dataframe[0].value.columns
    assert _by_key(app.sidebar.radio, "lang").value == "en"


def test_english_session_lists_agencies_in_english():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    at.run()
    _by_key(at.selectbox, "agency_map.village").select("AD02001").run()
    assert not at.exception
    assert at.title[0].value == "LTCI care agency map"
    assert list(at.table[0].value.columns) == ["Rank", "Agency", "Minutes", "Road km", "Type", "Phone", "Address"]
    assert any("suspended: keeps its current clients" in i.value for i in at.info)


def test_typed_coordinates_in_gcj02_and_a_place_far_from_roads(app):
    from geo.coords import from_wgs84
    from geo.region import load_demo_region
    from geo.traveltime import snap_points

    region = load_demo_region()
    unit = region.units[region.units["unit_id"] == "AD02001"].iloc[0]
    _by_key(app.radio, "agency_map.method@zh").set_value("coords").run()
    # GCJ-02 outside China equals WGS84 (AMap's rule), so typing Canillo's point gives Canillo's list.
    g_lon, g_lat = from_wgs84(unit.rep_lon, unit.rep_lat, target="gcj02")
    _by_key(app.radio, "agency_map.coord_system@zh").set_value("gcj02")
    _by_key(app.number_input, "agency_map.lon").set_value(float(g_lon))
    _by_key(app.number_input, "agency_map.lat").set_value(float(g_lat))
    app.button[0].click().run()
    assert not app.exception
    assert app.table[0].value.iloc[0]["机构名称"] == "Centre de rehabilitació funcional Lourdes Guardia"

    # A mountain point far from every road: a clear message, no time.
    lon, lat = np.meshgrid(np.linspace(1.42, 1.78, 40), np.linspace(42.43, 42.65, 40))
    access = snap_points(region.network, lon.ravel(), lat.ravel(), max_access_m=np.inf).access_m
    far = int(np.argmax(access))
    assert access[far] > 1500
    _by_key(app.number_input, "agency_map.lon").set_value(float(lon.ravel()[far]))
    _by_key(app.number_input, "agency_map.lat").set_value(float(lat.ravel()[far]))
    _by_key(app.radio, "agency_map.coord_system@zh").set_value("wgs84")
    app.button[0].click().run()
    assert not app.exception and not app.table
    assert any("米内没有道路" in w.value for w in app.warning)
