"""The command line end to end: on the demo region's files and on a small region whose OSM file the test writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from planning.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "andorra"


def write_grid_osm(path: Path, *, n: int = 6, spacing_deg: float = 0.01, lon0: float = 121.10, lat0: float = 30.00):
    """An OSM XML town: an n × n grid of two-way residential streets plus one primary road (near Yuyao)."""
    nodes, ways = [], []
    nid = lambda i, j: 1000 + i * n + j  # noqa: E731
    for i in range(n):
        for j in range(n):
            nodes.append(f'<node id="{nid(i, j)}" version="1" lat="{lat0 + i * spacing_deg:.6f}" lon="{lon0 + j * spacing_deg:.6f}"/>')
    wid = 1
    for i in range(n):
        refs = "".join(f'<nd ref="{nid(i, j)}"/>' for j in range(n))
        kind = "primary" if i == n // 2 else "residential"
        ways.append(f'<way id="{wid}" version="1">{refs}<tag k="highway" v="{kind}"/></way>')
        wid += 1
    for j in range(n):
        refs = "".join(f'<nd ref="{nid(i, j)}"/>' for i in range(n))
        ways.append(f'<way id="{wid}" version="1">{refs}<tag k="highway" v="residential"/></way>')
        wid += 1
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="tests">\n'
                    + "\n".join(nodes + ways) + "\n</osm>\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def small_region(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small_region")
    write_grid_osm(folder / "town.osm")
    villages = pd.DataFrame({
        "行政区划代码": ["330281001001", "330281001002", "330281001003", "330281002001", "330281002002", "330281002003"],
        "名称": ["东村", "西村", "南村", "北村", "中心社区", "山村"],
        "乡镇": ["甲镇", "甲镇", "甲镇", "乙镇", "乙镇", "乙镇"],
        "经度": [121.145, 121.105, 121.125, 121.125, 121.128, 121.148],
        "纬度": [30.012, 30.012, 30.002, 30.045, 30.025, 30.048],
        "人口": [1200, 900, 700, 800, 2500, 300],
    })
    villages.to_csv(folder / "villages.csv", index=False)
    agencies = pd.DataFrame({
        "机构名称": ["城区护理站", "乙镇卫生院"],
        "类型": ["居家护理", "医院护理"],
        "状态": ["定点", "定点"],
        "经度": [121.125, 121.135],
        "纬度": [30.022, 30.042],
        "持证护理员数": [10, 8],
        "地址": ["甲镇一路1号", "乙镇二路2号"],
        "联系电话": ["0574-1234567", "0574-7654321"],
    })
    agencies.to_csv(folder / "agencies.csv", index=False)
    return folder


def _run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err.strip()


def test_coverage_on_demo_files_writes_xlsx_and_gpkg(tmp_path, capsys):
    code, lines, err = _run(["coverage", "--osm", str(DEMO / "raw" / "andorra_drive.osm.bz2"),
                             "--units", str(DEMO / "units.geojson"), "--agencies", str(DEMO / "agencies.geojson"),
                             "--out", str(tmp_path)], capsys)
    assert code == 0, err
    result = json.loads(lines[-1])
    assert result["units"] == 70 and result["agencies"] == 18
    shares = result["share_demand_by_threshold"]
    assert 0.8 < shares["15.0"] <= shares["30.0"] <= 1.0
    sheets = pd.read_excel(tmp_path / "coverage.xlsx", sheet_name=None)
    assert {"coverage", "uncovered", "units"} <= set(sheets)
    units = gpd.read_file(tmp_path / "coverage.gpkg", layer="units")
    assert len(units) == 70 and {"agency_id", "travel_min"} <= set(units.columns)
    assert len(gpd.read_file(tmp_path / "coverage.gpkg", layer="agencies")) == 18


def test_small_region_from_an_osm_file_the_test_wrote(small_region, tmp_path, capsys):
    code, lines, err = _run(["coverage", "--osm", str(small_region / "town.osm"),
                             "--units", str(small_region / "villages.csv"),
                             "--agencies", str(small_region / "agencies.csv"), "--out", str(tmp_path)], capsys)
    assert code == 0, err
    result = json.loads(lines[-1])
    assert result["units"] == 6 and result["agencies"] == 2
    units = gpd.read_file(tmp_path / "coverage.gpkg", layer="units")
    assert units["unit_id"].tolist()[0] == "330281001001"  # 12-digit codes stay text
    assert (units["travel_min"] < 15).all()


def _small_region_files(small_region) -> list[str]:
    return ["--osm", str(small_region / "town.osm"), "--units", str(small_region / "villages.csv"),
            "--agencies", str(small_region / "agencies.csv")]


def test_allocate_on_small_region_assigns_every_village(small_region, tmp_path, capsys):
    code, lines, err = _run(["allocate", *_small_region_files(small_region), "--out", str(tmp_path)], capsys)
    assert code == 0, err
    result = json.loads(lines[-1])
    assert result["unassigned"] == 0
    assert result["status"] == "Optimal" and result["solver"] in ("CP-SAT", "HiGHS") and result["solve_time_s"] > 0
    units = gpd.read_file(tmp_path / "allocation.gpkg", layer="units")
    assert units["agency_id"].notna().all() and len(units) == 6
    for option, name in (("highs", "HiGHS"), ("cpsat", "CP-SAT")):
        code, lines, err = _run(["allocate", *_small_region_files(small_region), "--solver", option,
                                 "--out", str(tmp_path)], capsys)
        again = json.loads(lines[-1])
        assert code == 0 and again["solver"] == name
        assert again["objective"] == pytest.approx(result["objective"], rel=1e-4)


def test_site_on_demo_region(tmp_path, capsys):
    code, lines, err = _run(["site", "--model", "mclp", "--p", "2", "--threshold", "10", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    result = json.loads(lines[-1])
    assert result["n_new_sites"] == 2 and result["mip_gap"] <= 1e-6
    assert len(gpd.read_file(tmp_path / "siting.gpkg", layer="selected")) == 2


@pytest.mark.slow
def test_report_writes_a_chinese_pdf(tmp_path, capsys):
    code, lines, err = _run(["report", "--out", str(tmp_path), "--time-limit", "30"], capsys)
    assert code == 0, err
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"STSong-Light" in pdf
    assert json.loads(lines[-1])["unassigned"] == 0


@pytest.mark.parametrize("content,name,needle", [
    (b"\x89PNG\r\n\x1a\n....", "roads.osm", "not an OSM XML file"),
    (b"", "roads.osm", "empty"),
    (b"hello", "roads.txt", "unknown road network file type"),
])
def test_bad_osm_input_exits_nonzero_with_one_line(tmp_path, capsys, content, name, needle):
    bad = tmp_path / name
    bad.write_bytes(content)
    code, _lines, err = _run(["coverage", "--osm", str(bad), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert needle in err and len(err.splitlines()) == 1


def test_missing_file_and_units_without_osm_are_refused(tmp_path, capsys):
    code, _l, err = _run(["coverage", "--osm", str(tmp_path / "nope.osm.pbf"), "--out", str(tmp_path)], capsys)
    assert code == 2 and "not found" in err
    code, _l, err = _run(["coverage", "--units", "x.csv", "--out", str(tmp_path)], capsys)
    assert code == 2 and "--osm" in err


def test_module_entry_point_runs_as_a_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "planning", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "coverage" in proc.stdout and "allocate" in proc.stdout


def test_allocate_process_prints_only_its_json_line(small_region, tmp_path):
    # HiGHS prints a banner on the C-level stdout at its first instance; the CLI's stdout must stay one JSON line.
    proc = subprocess.run([sys.executable, "-m", "planning", "allocate", *_small_region_files(small_region),
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, lines
    assert json.loads(lines[0])["command"] == "allocate"
