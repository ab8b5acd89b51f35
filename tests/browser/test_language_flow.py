"""Flow 6 in headless Debian Chromium: the sidebar's language toggle switches the labels to English and back.

Runs its own server on a temporary workspace (see ``app_server.start_app_server``).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app_server import ARTIFACTS, start_app_server, stop_app_server
from test_data_flow import TIMEOUT_MS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    proc, url, log = start_app_server(log_name="streamlit-server-language.log",
                                      workspace=tmp_path_factory.mktemp("browser-lang") / "workspace.gpkg")
    try:
        yield url
    finally:
        stop_app_server(proc, log)


def test_language_toggle_switches_labels_to_english(page, server_url):
    page.goto(server_url)
    sidebar = page.locator('[data-testid="stSidebar"]')
    nav = page.locator('[data-testid="stSidebarNav"]')
    page.get_by_role("heading", name="长护险护理机构地图").wait_for(timeout=TIMEOUT_MS)
    expect(nav.get_by_text("数据管理", exact=True)).to_be_visible()
    expect(sidebar.get_by_text("规划区域", exact=True)).to_be_visible()

    sidebar.get_by_text("English", exact=True).click()
    page.get_by_role("heading", name="LTCI care agency map").wait_for(timeout=TIMEOUT_MS)
    expect(nav.get_by_text("Agency map", exact=True)).to_be_visible()
    expect(nav.get_by_text("Data", exact=True)).to_be_visible()
    expect(nav.get_by_text("数据管理", exact=True)).to_have_count(0)
    expect(sidebar.get_by_text("Planning region", exact=True)).to_be_visible()
    expect(sidebar.get_by_text("Open demo mode", exact=False)).to_be_visible()
    page.get_by_text("18 agencies on the map").wait_for(timeout=TIMEOUT_MS)

    # The choice persists for the session: the data page opens in English too.
    nav.get_by_text("Data", exact=True).click()
    page.get_by_role("heading", name="Data management").wait_for(timeout=TIMEOUT_MS)
    for tab in ("Agency registry", "Units", "Plan history", "Siting scenarios", "Audit log", "Region sources"):
        expect(page.get_by_role("tab", name=tab)).to_be_visible()
    page.get_by_text("18 agencies in the registry").wait_for(timeout=TIMEOUT_MS)
    expect(page.get_by_text("Import an agency registry")).to_be_visible()
    expect(page.get_by_role("button", name="Make a backup")).to_be_visible()
    assert "名录中共有" not in page.locator('[data-testid="stMain"]').inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "language_flow_english.png"))

    # And back to Chinese.
    sidebar.get_by_text("中文", exact=True).click()
    page.get_by_role("heading", name="数据管理").wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("名录中共有 18 家机构").wait_for(timeout=TIMEOUT_MS)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.blocked_requests == []
