"""Command line: the app's analyses as batch runs on any region given as files.

    python -m planning coverage --osm county.osm.pbf --units villages.csv --agencies agencies.xlsx --out out/
    python -m planning site     --osm … --units … --agencies … --model mclp --p 3 --threshold 15 --out out/
    python -m planning allocate --osm … --units … --agencies … --travel-cap 45 --out out/
    python -m planning report   --osm … --units … --agencies … --out out/

Without ``--osm`` the embedded demo region is used. Every run writes XLSX, GeoPackage and (for ``report``) PDF into
``--out``. On bad input it prints one line saying what to fix and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo.errors import InputError, PlanningError


def _region(args):
    from geo.region import load_demo_region, load_region

    if args.osm is None:
        if args.units or args.agencies:
            raise InputError("--units and --agencies need --osm (the road network of the same region)")
        return load_demo_region()
    return load_region(osm=args.osm, units=args.units, agencies=args.agencies, coord_system=args.coords,
                       missing_population="uniform" if args.uniform_population else "raise")


def _write_xlsx(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        for name, frame in sheets.items():
            frame = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
            frame.to_excel(xl, sheet_name=name[:31], index=False)


def _write_gpkg(path: Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    if path.exists():
        path.unlink()
    for name, frame in layers.items():
        frame = frame.copy()
        for col in frame.columns:
            if col != frame.geometry.name and frame[col].dtype == object:
                frame[col] = frame[col].map(lambda v: v if v is None or isinstance(v, (str, int, float, bool)) else str(v))
        frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio")


def run_coverage(args, region) -> dict:
    from planning.coverage import CoverageModel

    thresholds = args.thresholds
    model = CoverageModel(region.travel_matrix(), region.units, region.agencies).solve()
    table = model.table(thresholds=thresholds)
    metrics = model.unit_metrics(thresholds=thresholds)
    uncovered = model.uncovered_units(threshold=thresholds[0])
    _write_xlsx(args.out / "coverage.xlsx", {"coverage": table, "uncovered": uncovered, "units": metrics})
    units = metrics.rename(columns={"nearest_agency_id": "agency_id", "nearest_minutes": "travel_min"})
    _write_gpkg(args.out / "coverage.gpkg", {"units": units, "agencies": region.agencies})
    overall = table[table["scope"] == "overall"].set_index("threshold_min")["share_demand"]
    return {"command": "coverage", "units": len(region.units), "agencies": len(region.agencies),
            "share_demand_by_threshold": {str(k): round(float(v), 4) for k, v in overall.items()},
            "message": model.message}


def run_site(args, region) -> dict:
    from geo.schema import ACTIVE_STATUSES
    from planning import candidates as cand
    from planning import siting

    active = region.agencies[region.agencies["status"].isin(ACTIVE_STATUSES)]
    if args.candidates:
        pool = cand.read_candidates(args.candidates, region=region.boundary)
    else:
        pool = cand.candidates_from_grid(region.boundary, cell_size_m=args.cell_size)
    if len(active):
        pool, _excluded = cand.exclude_near_agencies(pool, active, min_distance_m=args.min_distance)[:2]
    if len(pool) == 0:
        raise PlanningError("no candidate sites remain after excluding those near existing agencies; "
                            "lower --min-distance or give --candidates")
    cmatrix = cand.candidate_travel_matrix(region.network, pool, region.units)
    pool, _off, cmatrix = cand.exclude_off_network(pool, cmatrix)
    existing = region.travel_matrix(agencies=active) if len(active) else None
    demand = pd.Series(region.units["demand"].to_numpy(), index=region.units["unit_id"].astype(str))
    kind = {"lscp": siting.LSCP, "mclp": siting.MCLP, "pmedian": siting.PMedian, "greedy": siting.Greedy}[args.model]
    options = {"threshold_min": args.threshold}
    if args.model in ("mclp", "pmedian", "greedy"):
        options["p"] = args.p
    if args.model == "pmedian":
        options.pop("threshold_min")
    if args.model == "greedy":
        options["goal"] = "coverage"
    model = kind.from_travel_matrix(cmatrix, existing=existing, demand=demand, **options)
    model.solve(time_limit=args.time_limit)
    summary = model.summary() if callable(model.summary) else model.summary
    chosen = pool[pool["candidate_id"].astype(str).isin([str(s) for s in model.selected_ids])]
    _write_xlsx(args.out / "siting.xlsx", {"summary": pd.DataFrame([summary]).astype(str),
                                           "selected": chosen, "candidates": pool})
    _write_gpkg(args.out / "siting.gpkg", {"selected": chosen, "candidates": pool, "agencies": region.agencies,
                                           "units": region.units})
    return {"command": "site", **{k: summary[k] for k in ("model", "objective", "mip_gap", "solve_time_s",
                                                         "n_new_sites", "selected_ids")}}


def run_allocate(args, region):
    from planning.allocation import AllocationModel

    model = AllocationModel(region.units, region.agencies, region.travel_matrix(), travel_cap_min=args.travel_cap,
                            contiguity=not args.no_contiguity, time_limit_s=args.time_limit,
                            solver=args.solver).solve()
    units = region.units.merge(model.unit_table, on="unit_id", how="left", suffixes=("", "_plan"))
    _write_xlsx(args.out / "allocation.xlsx", {"agencies": model.agency_table, "units": model.unit_table,
                                               "vs_nearest": model.comparison})
    _write_gpkg(args.out / "allocation.gpkg", {"units": units, "agencies": region.agencies})
    result = {"command": "allocate", "status": model.status, "objective": model.objective, "mip_gap": model.mip_gap,
              "solve_time_s": model.solve_time, "solver": model.model_size["solver"],
              "unassigned": int(model.assignment.isna().sum())}
    return result, model


def run_report(args, region) -> dict:
    from planning.coverage import CoverageModel
    from planning.report import ReportSection, build_pdf, coverage_sections, map_png
    from ui.strings import translator

    t = translator(args.lang)
    coverage = CoverageModel(region.travel_matrix(), region.units, region.agencies).solve()
    sections = coverage_sections(coverage, region, t=t)
    summary, model = run_allocate(args, region)
    zones = region.units.merge(model.unit_table[["unit_id", "agency_id"]], on="unit_id", how="left")
    image = map_png(units=zones, unit_column="agency_id", categorical=True, townships=region.townships,
                    agencies=region.agencies)
    sections.append(ReportSection(t("report.allocation"), t("report.allocation_text").format(
        gap=f"{model.mip_gap:.4%}", status=model.status), image,
        [(t("report.per_agency"), model.agency_table), (t("report.vs_nearest"), model.comparison)]))
    pdf = build_pdf(t("report.title"), sections, subtitle=region.name, attribution=region.meta.get("attribution", ""))
    (args.out / "report.pdf").write_bytes(pdf)
    return {"command": "report", "pdf_bytes": len(pdf), **{k: v for k, v in summary.items() if k != "command"}}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m planning", description="LTCI care-agency planner: batch runs.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--osm", help="road network: .osm/.osm.bz2/.osm.pbf/.graphml (default: the demo region)")
    common.add_argument("--units", help="village/community units: GeoJSON/GPKG/CSV")
    common.add_argument("--agencies", help="agency registry: CSV/XLSX/GeoJSON/GPKG")
    common.add_argument("--coords", default="wgs84", choices=["wgs84", "gcj02", "bd09"],
                        help="coordinate system of the agencies file")
    common.add_argument("--uniform-population", action="store_true",
                        help="accept a units file without population, weighing every unit 1")
    common.add_argument("--out", type=Path, required=True, help="output folder")
    common.add_argument("--time-limit", type=float, default=60.0, help="solver time limit in seconds")
    sub = parser.add_subparsers(dest="command", required=True)
    cov = sub.add_parser("coverage", parents=[common], help="coverage tables and units with travel times")
    cov.add_argument("--thresholds", type=lambda s: [float(x) for x in s.split(",")], default=[15.0, 30.0, 45.0, 60.0])
    site = sub.add_parser("site", parents=[common], help="site new agencies (LSCP, MCLP, p-median, greedy)")
    site.add_argument("--model", choices=["lscp", "mclp", "pmedian", "greedy"], default="mclp")
    site.add_argument("--p", type=int, default=3, help="number of new sites (mclp, pmedian, greedy)")
    site.add_argument("--threshold", type=float, default=15.0, help="coverage threshold in minutes")
    site.add_argument("--candidates", help="candidate sites file (default: a grid over the region)")
    site.add_argument("--cell-size", type=float, default=1500.0, help="grid candidate spacing in metres")
    site.add_argument("--min-distance", type=float, default=500.0, help="exclude candidates this close to an agency (m)")
    for name, helptext in (("allocate", "assign every unit to one agency (分片包干)"),
                           ("report", "PDF report: coverage and allocation")):
        p = sub.add_parser(name, parents=[common], help=helptext)
        p.add_argument("--travel-cap", type=float, default=None, help="maximum agency-to-unit minutes")
        p.add_argument("--no-contiguity", action="store_true", help="do not require connected zones")
        p.add_argument("--solver", choices=["auto", "highs", "cpsat"], default="auto",
                       help="exact solver (auto: CP-SAT for small models with contiguity whose LP relaxation "
                            "splits many units, HiGHS otherwise)")
        if name == "report":
            p.add_argument("--lang", choices=["zh", "en"], default="zh")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        region = _region(args)
        if args.command == "coverage":
            result = run_coverage(args, region)
        elif args.command == "site":
            result = run_site(args, region)
        elif args.command == "allocate":
            result = run_allocate(args, region)[0]
        else:
            result = run_report(args, region)
    except (InputError, PlanningError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except Exception as exc:  # an unexpected failure still ends in one line, with the full trace in the log
        import logging

        logging.getLogger("planning.cli").exception("unexpected failure")
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    result["seconds"] = round(time.perf_counter() - started, 2)
    result["out"] = str(args.out)
    print(json.dumps(result, ensure_ascii=False, default=str))
    return 0
