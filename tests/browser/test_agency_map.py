"""The residents' agency page in headless Debian Chromium, with every request outside the app refused."""

from __future__ import annotations

import numpy as np
import pytest

from geo.finder import find_agencies
from geo.region import load_demo_region
from geo.schema import CARE_TYPE_COLORS
from ui.maps import SUSPENDED_FILL

pytestmark = pytest.mark.browser

MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def region():
    return load_demo_region()


def _open(page, url):
    page.goto(url)
    frame = page.frame_locator(MAP_FRAME)
    frame.locator(".ltci-legend").wait_for(timeout=TIMEOUT_MS)
    return frame


def test_map_draws_one_coloured_marker_per_agency_and_a_legend(page, server_url, region):
    frame = _open(page, server_url)
    page.get_by_text("地图上显示 18 家机构").wait_for(timeout=TIMEOUT_MS)
    designated = region.agencies[region.agencies["status"] == "designated"]
    for care_type, colour in CARE_TYPE_COLORS.items():
        expected = int((designated["care_type"] == care_type).sum())
        frame.locator(f'path.leaflet-interactive[fill="{colour}"]').first.wait_for(timeout=TIMEOUT_MS)
        assert frame.locator(f'path[fill="{colour}"]').count() == expected, care_type
    suspended = frame.locator(f'path[fill="{SUSPENDED_FILL}"][stroke="{CARE_TYPE_COLORS["home"]}"]')
    assert suspended.count() == int((region.agencies["status"] == "suspended").sum()) == 1
    markers = sum(frame.locator(f'path[fill="{c}"]').count() for c in [*CARE_TYPE_COLORS.values(), SUSPENDED_FILL])
    assert markers == len(region.agencies)

    legend = frame.locator(".ltci-legend")
    assert legend.is_visible()
    text = legend.inner_text()
    for label in ("医院护理", "机构护理", "居家护理", "定点", "暂停"):
        assert label in text
    for care_type, colour in CARE_TYPE_COLORS.items():
        swatch = legend.locator(f'[data-care-type="{care_type}"] .sw')
        assert colour.lower() in swatch.get_attribute("style").lower()
    # Township borders and village units are drawn too; the layer control is there.
    assert frame.locator('path[stroke="#555555"]').count() >= 1
    assert frame.locator(".leaflet-control-layers").count() == 1
    # Leaflet came from the app itself; nothing left the machine.
    assert page.blocked_requests == []


def test_popup_shows_the_agency_card(page, server_url, region):
    frame = _open(page, server_url)
    page.get_by_text("机构列表").wait_for(timeout=TIMEOUT_MS)
    page.locator(MAP_FRAME).scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    # The Meritxell hospital: a marker on its own, not overlapped by other markers.
    hospital = frame.locator(f'path.leaflet-interactive[fill="{CARE_TYPE_COLORS["hospital"]}"]').nth(3)
    hospital.click()  # a real click: Playwright checks the marker itself receives it
    popup = frame.locator(".ltci-popup")
    popup.wait_for(timeout=TIMEOUT_MS)
    text = popup.inner_text()
    for label in ("医院护理", "地址", "电话", "服务人数", "持证护理员", "质量评分", "示例数据 / illustrative figures"):
        assert label in text
    image = popup.locator("img")
    image.wait_for(timeout=TIMEOUT_MS)
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.blocked_requests == []


def test_resident_picks_a_village_and_sees_agencies_sorted_by_minutes(page, server_url, region):
    frame = _open(page, server_url)
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="村/社区").locator("input")
    box.click()
    box.fill("Canil")  # search as you type
    page.get_by_role("option", name="Canillo · Canillo", exact=True).click()
    page.get_by_text("离“Canillo”最近的 5 家").wait_for(timeout=TIMEOUT_MS)

    rows = page.locator('[data-testid="stTable"] tbody tr')
    rows.nth(4).wait_for(timeout=TIMEOUT_MS)
    cells = [[c.inner_text().strip() for c in rows.nth(i).locator("td, th").all()] for i in range(rows.count())]
    names = [r[1] for r in cells]
    minutes = np.array([float(r[2]) for r in cells])
    assert [r[0] for r in cells] == ["1", "2", "3", "4", "5"]
    assert np.all(np.diff(minutes) >= 0)

    unit = region.units[region.units["name"] == "Canillo"].iloc[0]
    expected = find_agencies(region, lon=unit.rep_lon, lat=unit.rep_lat, k=5)
    expected = expected[expected["offered"]]
    assert names == list(expected["name"])
    np.testing.assert_allclose(minutes, expected["minutes"].round(1).to_numpy(), atol=0.051)
    # Why the closer suspended centre is missing.
    page.get_by_text("暂停：保留现有服务对象，不接收新服务对象").wait_for(timeout=TIMEOUT_MS)
    # The route to the first agency is drawn on the (re-rendered) map.
    frame = page.frame_locator(MAP_FRAME)
    frame.locator('path[stroke="#6a1b9a"]').first.wait_for(timeout=TIMEOUT_MS)
    assert frame.locator('path[stroke="#6a1b9a"]').count() == 3
    assert page.blocked_requests == []


def test_resident_clicks_the_map_to_pick_a_place(page, server_url, region):
    frame = _open(page, server_url)
    page.get_by_text("机构列表").wait_for(timeout=TIMEOUT_MS)
    page.locator(MAP_FRAME).scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    # Click a village point far from every agency marker and clear of the legend (bottom-left): a map click on
    # a unit polygon, not an agency card.
    units = region.units[region.units["rep_lat"] > region.units["rep_lat"].median()]
    gap = [np.min(np.hypot(region.agencies.geometry.x - u.rep_lon, region.agencies.geometry.y - u.rep_lat))
           for u in units.itertuples()]
    encamp = units.iloc[int(np.argmax(gap))]
    point = frame.locator("#map_div").evaluate(
        "(div, ll) => { const m = window.map; const p = m.latLngToContainerPoint(ll);"
        " return [p.x, p.y]; }", [encamp.rep_lat, encamp.rep_lon])
    frame.locator("#map_div").click(position={"x": point[0], "y": point[1]})
    page.get_by_text("离“地图点击位置”最近的 5 家").wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_role("radio", name="在地图上点击").is_checked()
    caption = page.get_by_text("位置：").inner_text()
    lon, lat = (float(v) for v in caption.split("：")[1].split("（")[0].split(","))
    assert abs(lon - encamp.rep_lon) < 0.002 and abs(lat - encamp.rep_lat) < 0.002
    rows = page.locator('[data-testid="stTable"] tbody tr')
    rows.nth(4).wait_for(timeout=TIMEOUT_MS)
    minutes = [float(rows.nth(i).locator("td, th").nth(2).inner_text()) for i in range(rows.count())]
    assert len(minutes) == 5 and minutes == sorted(minutes)
    assert page.blocked_requests == []
