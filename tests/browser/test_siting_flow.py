"""The siting page (选址规划) in headless Debian Chromium, offline: proposed sites on the map and in the table, the
side-by-side comparison with the status quo, and the one-click PDF of the scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
TIMEOUT_MS = 120_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NEW_SITE_COLOR = "#7b2cbf"


def _cells(row) -> list[str]:
    return [c.strip() for c in row.locator("td, th").all_inner_texts()]


def test_siting_page_shows_selected_sites_and_the_comparison_table(page, server_url, tmp_path):
    page.goto(f"{server_url}/siting")
    page.get_by_role("heading", name="选址规划：新机构应该放在哪里").wait_for(timeout=TIMEOUT_MS)
    result = page.get_by_role("heading", name="建议的 3 个新址")
    result.wait_for(timeout=TIMEOUT_MS)

    # The exact model beside the greedy heuristic, with objective, gap and time.
    methods = page.locator('[data-testid="stTable"]').filter(has_text="贪心法（AccessMod 扩容）")
    methods.wait_for(timeout=TIMEOUT_MS)
    rows = methods.locator("tbody tr")
    assert rows.count() == 2
    exact = _cells(rows.nth(0))
    assert exact[0] == "最大覆盖模型（MCLP）" and exact[1] == "3" and exact[3] == "0.000%"

    # The comparison with the status quo at each threshold: the proposal never covers less.
    comparison = page.locator('[data-testid="stTable"]').filter(has_text="现状覆盖率")
    comparison.locator("tbody tr").nth(4).wait_for(timeout=TIMEOUT_MS)
    headers = [h.strip() for h in comparison.locator("thead th").all_inner_texts()]
    assert headers[:4] == ["阈值", "现状覆盖率", "方案覆盖率", "变化（百分点）"]
    body = comparison.locator("tbody tr")
    assert body.count() == 5
    first = _cells(body.nth(0))
    assert first[0] == "10 分钟"
    now, proposed = (float(v.rstrip("%")) for v in first[1:3])
    assert proposed > now
    for i in range(body.count()):
        cells = _cells(body.nth(i))
        assert float(cells[2].rstrip("%")) >= float(cells[1].rstrip("%"))
    travel = page.locator('[data-testid="stTable"]').filter(has_text="平均行车时间")
    travel.wait_for(timeout=TIMEOUT_MS)
    assert "新增机构" in travel.inner_text()

    # The proposed sites: three rows in the table and three purple markers on the offline map.
    frame = page.frame_locator(MAP_FRAME).first
    legend = frame.locator(".ltci-legend")
    legend.wait_for(timeout=TIMEOUT_MS)
    for text in ("选址结果", "新址", "候选点", "新增 10 分钟内覆盖", "仍超过 10 分钟"):
        assert text in legend.inner_text()
    assert frame.locator(f'path[fill="{NEW_SITE_COLOR}"]').count() == 3
    assert frame.locator(".ltci-site-no").count() == 3
    assert frame.locator('path[fill="#2ca25f"]').count() >= 1  # villages that became covered
    page.get_by_text("新址清单（3）").wait_for(timeout=TIMEOUT_MS)

    page.wait_for_timeout(1500)  # let the vector layers settle before the picture
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "siting_page.png"), full_page=True)
    page.locator(MAP_FRAME).first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "siting_map.png"))
    comparison.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "siting_comparison.png"))

    # One click gives the scenario's Chinese PDF report.
    button = page.get_by_role("button", name="一键生成方案 PDF 报告")
    button.scroll_into_view_if_needed()
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        button.click()
    path = tmp_path / "siting.pdf"
    download.value.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 20_000
    assert b"STSong-Light" in data

    # The selected sites as a GeoPackage, generated on click.
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.get_by_role("button", name="下载 GeoPackage").last.click()
    target = tmp_path / download.value.suggested_filename
    download.value.save_as(target)
    assert target.name == "siting_sites.gpkg" and target.read_bytes().startswith(b"SQLite format 3")
    import geopandas as gpd

    layer = gpd.read_file(target)
    assert len(layer) == 3 and layer["agency_id"].str.startswith("plan-").all()
    assert page.blocked_requests == []
