"""Flow 5 in headless Debian Chromium: uploading a broken agencies file shows the validation report, not a crash.

The server runs on a temporary workspace (``LTCI_WORKSPACE``), so the test never touches a real one; this module
overrides the shared ``server_url`` fixture for that.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_server import ARTIFACTS, ROOT, start_app_server, stop_app_server
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

FIXTURES = ROOT / "tests" / "fixtures" / "registry"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser-workspace") / "workspace.gpkg"


@pytest.fixture(scope="module")
def server_url(workspace):
    proc, url, log = start_app_server(log_name="streamlit-server-data.log", workspace=workspace)
    try:
        yield url
    finally:
        stop_app_server(proc, log)


def open_data_page(page, url: str, *, nav_label: str = "数据管理", title: str = "数据管理"):
    page.goto(url)
    page.locator('[data-testid="stSidebarNav"]').get_by_text(nav_label, exact=True).click()
    page.get_by_role("heading", name=title).wait_for(timeout=TIMEOUT_MS)


def test_broken_agencies_file_shows_the_validation_report(page, server_url, workspace):
    open_data_page(page, server_url)
    page.get_by_text("名录中共有 18 家机构").wait_for(timeout=TIMEOUT_MS)

    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="名录文件（CSV")
    uploader.locator('input[type="file"]').set_input_files(str(FIXTURES / "bad_counts.csv"))
    page.get_by_text("校验报告 · bad_counts.csv").wait_for(timeout=TIMEOUT_MS)

    summary = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="校验报告 · bad_counts.csv")
    assert "可导入 1 行，错误 4 条" in summary.first.inner_text()
    report = page.locator('[data-testid="stTable"]').filter(has_text="原因").first
    report.wait_for(timeout=TIMEOUT_MS)
    expect(report.locator("tbody tr")).to_have_count(4, timeout=TIMEOUT_MS)
    text = report.inner_text()
    for reason in ("certified_caregivers 'many' is not a number", "capacity is negative (-5)",
                   "clients_served '3.5' is not a whole number", "quality_score 120 is above 100"):
        assert reason in text
    expect(page.get_by_role("button", name="合并导入 1 家机构")).to_be_visible(timeout=TIMEOUT_MS)
    report.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "data_flow_report.png"))
    # No crash anywhere: no exception box, no traceback text, nothing fetched from outside.
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.locator("body").inner_text()

    # A file that is not a registry at all: a clear message, still no crash, and the registry is unchanged.
    uploader.locator('input[type="file"]').set_input_files(str(FIXTURES / "png_renamed.csv"))
    page.get_by_text("无法读取 png_renamed.csv", exact=False).wait_for(timeout=TIMEOUT_MS)
    assert page.locator('[data-testid="stException"]').count() == 0
    expect(page.get_by_role("button", name="合并导入 1 家机构")).to_have_count(0, timeout=TIMEOUT_MS)
    page.get_by_text("名录中共有 18 家机构").wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("无法读取 png_renamed.csv", exact=False).scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "data_flow_not_a_registry.png"))
    assert page.blocked_requests == []


def test_good_file_import_reaches_the_registry(page, server_url, workspace):
    open_data_page(page, server_url)
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="名录文件（CSV")
    uploader.locator('input[type="file"]').set_input_files(str(FIXTURES / "andorra_good.csv"))
    page.get_by_role("button", name="合并导入 6 家机构").click()
    page.get_by_text("新增 6 家，更新 0 家", exact=False).wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("名录中共有 24 家机构").wait_for(timeout=TIMEOUT_MS)
    # The other pages see it too: the sidebar's region summary counts the workspace's registry.
    page.locator('[data-testid="stSidebar"]').get_by_text("24 家机构", exact=False).wait_for(timeout=TIMEOUT_MS)
    from workspace.store import open_store

    with open_store(workspace) as store:
        assert len(store.read_agencies()) == 24
