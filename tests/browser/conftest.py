"""A real Streamlit server and headless Debian Chromium for the browser tests (no network, no downloaded browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_server import ARTIFACTS, start_app_server, stop_app_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def server_url():
    """``streamlit run app.py`` on a free port; yields its URL once ``/_stcore/health`` answers ok."""
    proc, url, log = start_app_server(log_name="streamlit-server.log")
    try:
        yield url
    finally:
        stop_app_server(proc, log)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `make chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture()
def page(browser, server_url, request):
    """A fresh page (1600×1000) that refuses every request leaving the test server, so 'offline' is real."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith(server_url) or r.request.url.startswith(("data:", "blob:", "about:")):
            return r.continue_()
        blocked.append(r.request.url)
        return r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    pg.blocked_requests = blocked
    request.node._page = pg
    yield pg
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, keep a full-page screenshot in test-artifacts/ named after the test."""
    outcome = yield
    report = outcome.get_result()
    pg = getattr(item, "_page", None)
    if report.when == "call" and report.failed and pg is not None:
        ARTIFACTS.mkdir(exist_ok=True)
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in item.nodeid)
        try:
            pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        except Exception as exc:  # a dead page must not hide the original failure
            print(f"screenshot failed: {exc}")
