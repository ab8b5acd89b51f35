"""Flow 4 in headless Debian Chromium, offline: a district allocation runs and shows its per-agency table and zone map."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo.region import load_demo_region
from geo.schema import ACTIVE_STATUSES
from ui.pages.allocation import HATCH_ID, ZONE_COLORS

pytestmark = pytest.mark.browser

MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
TIMEOUT_MS = 240_000  # a cold server: region, matrix, then the solve itself
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_allocation_runs_and_shows_the_per_agency_table_and_zone_map(page, server_url):
    region = load_demo_region()
    active = set(region.agencies.loc[region.agencies["status"].isin(ACTIVE_STATUSES), "agency_id"].astype(str))

    page.goto(f"{server_url}/allocation")
    table = page.locator('[data-testid="stTable"]').filter(has_text="负载 / 容量")
    table.wait_for(state="visible", timeout=TIMEOUT_MS)
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    assert headers[:6] == ["机构", "状态", "村/社区数", "人口", "长护需求", "负载 / 容量"]
    assert headers[-1] == "机构编号"
    rows = [[c.strip() for c in row.locator("td, th").all_inner_texts()] for row in table.locator("tbody tr").all()]
    ids = {r[-1] for r in rows}
    assert active <= ids  # every active agency is listed
    units = sum(int(r[2]) for r in rows)
    assert units == len(region.units)  # every village is in exactly one zone
    for r in rows:
        load, capacity = (float(x) for x in r[5].split(" / "))
        assert load <= capacity + 0.05, r
    zones = sum(1 for r in rows if int(r[2]) > 0)
    page.get_by_text("求解状态").first.wait_for(timeout=TIMEOUT_MS)

    # The zone map: one colour per zone, agency markers, and a legend naming the zones, from the app's own Leaflet.
    frame = page.frame_locator(MAP_FRAME).first
    legend = frame.locator(".ltci-legend")
    legend.wait_for(timeout=TIMEOUT_MS)
    text = legend.inner_text()
    assert "机构片区（村数）" in text and "无片区的机构" in text
    assert legend.locator("[data-zone]").count() >= zones
    fills = set()
    for colour in ZONE_COLORS:
        if frame.locator(f'path.leaflet-interactive[fill="{colour}"]').count():
            fills.add(colour)
    assert len(fills) >= zones  # zones (and their markers) in distinct colours
    assert frame.locator(f'pattern#{HATCH_ID}').count() == 1  # hatching ready for unassigned units
    page.wait_for_timeout(1500)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "allocation_page.png"), full_page=True)
    table.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "allocation_tables.png"))
    assert page.blocked_requests == []
