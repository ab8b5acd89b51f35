"""The coverage page (覆盖分析) in headless Debian Chromium, offline: the 30-minute table, the map, the PDF report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from geo.region import load_demo_region
from planning.coverage import CoverageModel
from planning.coverage_maps import CLASS_COLORS

pytestmark = pytest.mark.browser

MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
TIMEOUT_MS = 90_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_coverage_page_shows_the_30_minute_table_map_and_report(page, server_url, tmp_path):
    region = load_demo_region()
    model = CoverageModel(region.travel_matrix(), region.units, region.agencies).solve()
    table = model.table()
    share_15 = table[(table["scope"] == "overall") & (table["threshold_min"] == 15.0)]["share_demand"].iloc[0]

    page.goto(f"{server_url}/coverage")
    coverage = page.locator('[data-testid="stTable"]').filter(has_text="30 分钟")
    coverage.wait_for(state="visible", timeout=TIMEOUT_MS)
    headers = [h.strip() for h in coverage.locator("thead th").all_inner_texts()]
    assert headers == ["范围", "分组", "长护需求合计", "15 分钟", "30 分钟", "45 分钟", "60 分钟"]
    overall = [c.strip() for c in coverage.locator("tbody tr").first.locator("td, th").all_inner_texts()]
    assert overall[:2] == ["全域", "全部"]
    assert overall[3] == f"{100 * share_15:.1f}%" and overall[4] == "100.0%"
    assert coverage.locator("tbody tr").count() == 1 + 3 + len(region.townships)
    page.get_by_text("30 分钟内的覆盖情况").wait_for(timeout=TIMEOUT_MS)

    # The travel-time map: classed colours and a legend naming every class, drawn from the app's own Leaflet.
    frame = page.frame_locator(MAP_FRAME).first
    legend = frame.locator(".ltci-legend")
    legend.wait_for(timeout=TIMEOUT_MS)
    text = legend.inner_text()
    for label in ("到最近在营机构的行车时间", "0–15 分钟", "15–30 分钟", "超过 60 分钟", "不可达", "30 分钟内未覆盖"):
        assert label in text
    assert frame.locator(f'path[fill="{CLASS_COLORS[0]}"]').count() >= 1  # villages within 15 minutes
    page.wait_for_timeout(1500)  # let the tiles-free vector layers settle before the picture
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "coverage_page.png"), full_page=True)

    # One click gives the Chinese PDF report.
    button = page.get_by_role("button", name="一键生成 PDF 报告")
    button.scroll_into_view_if_needed()
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        button.click()
    path = tmp_path / "report.pdf"
    download.value.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 20_000
    assert b"STSong-Light" in data  # the CJK font, built into reportlab: nothing downloaded

    # The other one-click files are generated on click too: a workbook, a GeoPackage and a CSV.
    for name, magic in (("覆盖表 Excel", b"PK"), ("单元及指标 GeoPackage", b"SQLite format 3"),
                        ("单元及指标 CSV", "\ufeffunit_id".encode("utf-8"))):
        with page.expect_download(timeout=TIMEOUT_MS) as download:
            page.get_by_role("button", name=name).click()
        target = tmp_path / download.value.suggested_filename
        download.value.save_as(target)
        assert target.read_bytes().startswith(magic), name
    units = pd.read_csv(tmp_path / "coverage_villages_units.csv", encoding="utf-8-sig", dtype={"unit_id": str})
    assert len(units) == len(region.units)
    assert {"nearest_minutes", "covered_30", "e2sfca_score", "access_class"} <= set(units.columns)
    assert page.blocked_requests == []
