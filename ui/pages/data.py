"""数据管理: the workspace's contents, the agency registry (import, validation report, export, status edits),
planning units, plan history, siting scenarios, the audit log, backups, and the region sources.

Reading is open to every session; anything that writes needs a planner (see :mod:`ui.workspace_session`), and the
store refuses a resident's write even if a control slipped through.
"""

from __future__ import annotations

import io
import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from geo.errors import InputError, Report
from ui.common import (
    MIME_TYPES, REGION_KEY, current_lang, download_buttons, friendly_errors, set_session_region, table_bytes, tr,
)
from ui.strings import label, modes_label, t
from ui.workspace_session import (
    current_actor, get_workspace, invalidate_region, is_online, is_planner, planner_notice, workspace_location,
    workspace_region,
)

P = "data."  # session-state prefix of this page
COORD_SYSTEMS = ("wgs84", "gcj02", "bd09")
EDITABLE_STATUSES = ("designated", "suspended", "terminated")
REGISTRY_FORMATS = ("csv", "xlsx", "geojson")
OSM_TYPES = ["osm", "bz2", "pbf", "graphml", "xml", "gz"]
#: Reports up to this many entries are plain HTML tables; longer ones a scrollable grid.
REPORT_HTML_ROWS = 40


def _flash(level: str, text: str) -> None:
    """Show ``text`` after the rerun that follows a write."""
    st.session_state[P + "flash"] = (level, text)


def _show_flash() -> None:
    flash = st.session_state.pop(P + "flash", None)
    if flash:
        level, text = flash
        {"success": st.success, "warning": st.warning, "error": st.error}.get(level, st.info)(text)


def _nonce(name: str) -> int:
    """A counter in a widget key: bumping it gives a fresh (empty) uploader after an import."""
    return int(st.session_state.get(P + "nonce." + name, 0))


def _bump(name: str) -> None:
    st.session_state[P + "nonce." + name] = _nonce(name) + 1


def _plain(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


# ----------------------------------------------------------------------------------------------------------------
# Contents, backup and download
# ----------------------------------------------------------------------------------------------------------------
def _backup_bytes(store) -> bytes:
    """A consistent copy of the workspace (SQLite online backup, safe while others write) as bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        return store.backup_to(Path(tmp) / "workspace.gpkg").read_bytes()


def _backup_folder() -> Path:
    location = workspace_location()
    if "://" in location:
        from geo import settings

        return settings.root_dir / "workspaces" / "backups"
    return Path(location).resolve().parent / "backups"


def _contents_section(store) -> None:
    contents = store.contents()
    cols = st.columns(6)
    for col, key in zip(cols, ("agencies", "units", "plans", "plan_versions", "scenarios", "audit_entries")):
        col.metric(tr(f"data.count.{key}"), f"{contents[key]:,}")
    st.caption(tr("data.location", location=contents["location"], version=contents["schema_version"]))

    planner = is_planner()
    c1, c2, _ = st.columns([1, 1, 2])
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    with c1:
        if st.button(tr("data.backup"), key=P + "backup", disabled=not planner, width="stretch",
                     help=tr("data.backup_help")):
            with friendly_errors():
                folder = _backup_folder()
                target = store.backup_to(folder / f"{Path(workspace_location()).stem}-{stamp}.gpkg")
                store.record_audit("backup", {"path": str(target)}, actor=current_actor())
                st.session_state[P + "last_backup"] = str(target)
        last = st.session_state.get(P + "last_backup")
        if last and Path(last).exists():
            st.caption(tr("data.backup_done", path=last))
            st.download_button(tr("data.backup_download"), data=Path(last).read_bytes(), file_name=Path(last).name,
                               mime=MIME_TYPES["gpkg"], key=P + "backup_dl", on_click="ignore", width="stretch")
    with c2:
        # Built only when clicked (a callable), so an ordinary rerun never copies the whole workspace.
        st.download_button(tr("data.download_workspace"), data=lambda: _backup_bytes(store),
                           file_name=f"workspace-{stamp}.gpkg", mime=MIME_TYPES["gpkg"], key=P + "workspace_dl",
                           disabled=not planner, on_click="ignore", width="stretch",
                           help=tr("data.download_workspace_help"))


# ----------------------------------------------------------------------------------------------------------------
# Validation reports
# ----------------------------------------------------------------------------------------------------------------
def _report_table(report: Report) -> pd.DataFrame:
    frame = report.to_frame()
    lang = current_lang()
    frame["severity"] = [label("data.severity", s, lang=lang) for s in frame["severity"]]
    frame["row"] = frame["row"].astype("Int64")
    return frame.rename(columns={c: tr(f"data.report.{c}") for c in frame.columns})



def show_report(report: Report, *, filename: str, accepted: int | None, file_error: InputError | None = None,
                key: str) -> None:
    """A validation report: a one-line verdict and a table with every rejected or suspicious row and its reason."""
    if file_error is not None:
        st.error(tr("data.report.unreadable", file=filename, message=file_error.message))
    else:
        st.markdown(tr("data.report.summary", file=filename, accepted=accepted, errors=len(report.errors),
                       warnings=len(report.warnings)))
    if report.problems:
        table = _report_table(report)
        if len(table) <= REPORT_HTML_ROWS:
            # A plain HTML table: every reason is readable (and reaches screen readers) without scrolling a grid.
            st.table(table.astype(object).where(table.notna(), ""), hide_index=True, border="horizontal")
        else:
            st.dataframe(table, hide_index=True, width="stretch", key=key + ".table")
        download_buttons(table, basename="validation_report", key=key + ".dl")
    elif file_error is None:
        st.success(tr("data.report.clean"))


# ----------------------------------------------------------------------------------------------------------------
# Agency registry
# ----------------------------------------------------------------------------------------------------------------
def _registry_table(agencies) -> pd.DataFrame:
    lang = current_lang()
    return pd.DataFrame({
        tr("col.agency_id"): agencies["agency_id"].astype(str).to_numpy(),
        tr("col.name"): agencies["name"].astype(str).to_numpy(),
        tr("col.care_type"): [label("care_type", c, lang=lang) for c in agencies["care_type"]],
        tr("col.status"): [label("status", s, lang=lang) for s in agencies["status"]],
        tr("col.township"): agencies["township"].astype(str).to_numpy() if "township" in agencies else "",
        tr("col.address"): agencies["address"].astype(str).to_numpy(),
        tr("col.phone"): agencies["phone"].astype(str).to_numpy(),
        tr("col.service_modes"): [modes_label(m, lang=lang) for m in agencies["service_modes"].fillna("")],
        tr("col.capacity"): agencies["capacity"].to_numpy(),
        tr("col.clients_served"): agencies["clients_served"].to_numpy(),
        tr("col.certified_caregivers"): agencies["certified_caregivers"].to_numpy(),
        tr("col.lon"): agencies.geometry.x.round(6).to_numpy(),
        tr("col.lat"): agencies.geometry.y.round(6).to_numpy(),
    })


def _registry_section(store, region) -> None:
    agencies = store.read_agencies()
    lang = current_lang()
    st.markdown(tr("data.registry.count", n=len(agencies)))
    st.dataframe(_registry_table(agencies), hide_index=True, width="stretch", key=P + "registry_table")
    cols = st.columns(len(REGISTRY_FORMATS) + 1)
    language = "zh" if lang == "zh" else "en"
    for col, fmt in zip(cols, REGISTRY_FORMATS):
        with col:
            from geo.registry import agencies_to_bytes

            # Built on click (a callable), not on every rerun of this busy page.
            st.download_button(tr(f"download.{fmt}"),
                               data=lambda fmt=fmt: agencies_to_bytes(agencies, fmt, language=language),
                               file_name=f"agencies.{fmt}", mime=MIME_TYPES[fmt], key=P + f"registry_dl.{fmt}",
                               on_click="ignore", width="stretch")
    cols[-1].caption(tr("data.registry.export_note"))

    _status_editor(store, agencies)
    st.divider()
    _registry_import(store, region)


def _status_editor(store, agencies) -> None:
    st.subheader(tr("data.status.title"))
    if agencies.empty:
        st.caption(tr("data.registry.empty"))
        return
    lang = current_lang()
    names = dict(zip(agencies["agency_id"].astype(str), agencies["name"].astype(str)))
    status_of = dict(zip(agencies["agency_id"].astype(str), agencies["status"].astype(str)))
    c1, c2, c3, c4 = st.columns([2, 1, 2, 1], vertical_alignment="bottom")
    agency_id = c1.selectbox(tr("data.status.agency"), list(names), key=P + "status_agency",
                             format_func=lambda a: f"{names.get(a, a)} · {a} · {label('status', status_of.get(a, ''), lang=lang)}")
    new_status = c2.selectbox(tr("data.status.new"), EDITABLE_STATUSES, key=P + "status_new",
                              format_func=lambda s: label("status", s, lang=lang))
    reason = c3.text_input(tr("data.status.reason"), key=P + "status_reason",
                           placeholder=tr("data.status.reason_placeholder"))
    planner = is_planner()
    unchanged = status_of.get(agency_id) == new_status
    if c4.button(tr("data.status.save"), key=P + "status_save", disabled=not planner or unchanged, type="primary",
                 width="stretch"):
        with friendly_errors():
            actor = current_actor()
            row = agencies[agencies["agency_id"].astype(str) == agency_id].copy()
            old = str(row["status"].iloc[0])
            row["status"] = new_status
            store.upsert_agencies(row, actor=actor, source="data page: status change")
            store.record_audit("change_status", {"agency_id": agency_id, "name": names[agency_id], "from": old,
                                                 "to": new_status, "reason": reason.strip()}, actor=actor)
            invalidate_region()
            _flash("success", tr("data.status.saved", name=names[agency_id], old=label("status", old, lang=lang),
                                 new=label("status", new_status, lang=lang)))
            st.rerun()
    if unchanged:
        st.caption(tr("data.status.unchanged"))


def _registry_import(store, region) -> None:
    from geo.registry import read_agencies

    st.subheader(tr("data.import.title"))
    lang = current_lang()
    c1, c2, c3, c4 = st.columns([2, 1.2, 1, 1])
    upload = c1.file_uploader(tr("data.import.file"), key=P + f"agency_file.{_nonce('agency')}",
                              help=tr("data.import.file_help"))
    coord = c2.radio(tr("data.import.coord"), COORD_SYSTEMS, key=P + "agency_coord",
                     format_func=lambda v: t(f"coord.{v}", lang=lang))
    strict = c3.toggle(tr("data.import.strict"), key=P + "agency_strict", help=tr("data.import.strict_help"))
    mode = c4.radio(tr("data.import.mode"), ("upsert", "replace"), key=P + "agency_mode",
                    format_func=lambda m: t(f"data.import.mode.{m}", lang=lang))
    if upload is None:
        st.caption(tr("data.import.hint"))
        return
    data = upload.getvalue()
    agencies, file_error = None, None
    try:
        agencies, report = read_agencies(io.BytesIO(data), filename=upload.name, coord_system=coord,
                                         region=region.boundary, strict=False)
    except InputError as exc:  # the file as a whole cannot be read: its problems are the report
        report, file_error = Report(list(exc.problems)), exc
    show_report(report, filename=upload.name, accepted=None if agencies is None else len(agencies),
                file_error=file_error, key=P + "agency_report")
    if agencies is None:
        return
    if strict and report.errors:
        st.error(tr("data.import.strict_refused", errors=len(report.errors)))
        return
    if agencies.empty:
        st.warning(tr("data.import.nothing"))
        return
    if report.errors:
        st.warning(tr("data.import.partial", accepted=len(agencies), errors=len(report.errors)))
    planner = is_planner()
    if not planner:
        planner_notice()
    if st.button(tr(f"data.import.go.{mode}", n=len(agencies)), key=P + "agency_import", type="primary",
                 disabled=not planner):
        with friendly_errors():
            actor = current_actor()
            if mode == "replace":
                written = store.replace_agencies(agencies, actor=actor, source=upload.name)
                text = tr("data.import.done.replace", n=written, file=upload.name)
            else:
                result = store.upsert_agencies(agencies, actor=actor, source=upload.name)
                text = tr("data.import.done.upsert", file=upload.name, inserted=result.get("inserted", 0),
                          updated=result.get("updated", 0))
            invalidate_region()
            _bump("agency")
            _flash("success", text)
            st.rerun()


# ----------------------------------------------------------------------------------------------------------------
# Units
# ----------------------------------------------------------------------------------------------------------------
def _units_section(store, region) -> None:
    from geo.unit_files import read_unit_file

    units = store.read_units()
    st.markdown(tr("data.units.count", n=len(units), townships=units["township"].nunique() if "township" in units else 0,
                   population=float(units["population"].sum()) if "population" in units else 0.0))
    shown = pd.DataFrame(units.drop(columns=units.geometry.name))
    st.dataframe(shown, hide_index=True, width="stretch", key=P + "units_table")
    for col, fmt in zip(st.columns(3), ("csv", "xlsx", "gpkg")):
        col.download_button(tr(f"download.{fmt}"), data=lambda fmt=fmt: table_bytes(units, fmt, layer="units"),
                            file_name=f"units.{fmt}", mime=MIME_TYPES[fmt], key=P + f"units_dl.{fmt}",
                            on_click="ignore", width="stretch")
    st.caption(tr("data.units.region_note"))

    st.subheader(tr("data.units.import_title"))
    lang = current_lang()
    c1, c2 = st.columns([2, 1])
    upload = c1.file_uploader(tr("data.units.file"), key=P + f"units_file.{_nonce('units')}",
                              help=tr("data.units.file_help"))
    missing = c2.radio(tr("data.units.missing_population"), ("raise", "uniform"), key=P + "units_missing",
                       format_func=lambda m: t(f"data.units.missing.{m}", lang=lang))
    if upload is None:
        return
    new_units, file_error = None, None
    try:
        road_xy = np.column_stack([region.network.lon, region.network.lat])
        new_units, report = read_unit_file(io.BytesIO(upload.getvalue()), filename=upload.name,
                                           boundary=region.townships, extent=region.network.extent_polygon(),
                                           missing_population=missing, road_nodes_xy=road_xy)
    except InputError as exc:
        report, file_error = Report(list(exc.problems)), exc
    show_report(report, filename=upload.name, accepted=None if new_units is None else len(new_units),
                file_error=file_error, key=P + "units_report")
    if new_units is None or new_units.empty:
        return
    planner = is_planner()
    if not planner:
        planner_notice()
    if st.button(tr("data.units.import", n=len(new_units)), key=P + "units_import", type="primary",
                 disabled=not planner):
        with friendly_errors():
            written = store.replace_units(new_units, actor=current_actor(), source=upload.name)
            _bump("units")
            _flash("success", tr("data.units.done", n=written, file=upload.name))
            st.rerun()


# ----------------------------------------------------------------------------------------------------------------
# Plans and scenarios
# ----------------------------------------------------------------------------------------------------------------
def _versions_table(versions: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        tr("data.plans.version"): versions["version"].to_numpy(),
        tr("data.plans.created_at"): versions["created_at"].to_numpy(),
        tr("data.plans.created_by"): versions["created_by"].to_numpy(),
        tr("data.plans.parent"): versions["parent_version"].astype("Int64").to_numpy(),
        tr("data.plans.n_units"): versions["n_units"].to_numpy(),
        tr("data.plans.summary"): [_plain(s) for s in versions["summary"]],
    })


def _plans_section(store) -> None:
    plans = store.list_plans()
    if plans.empty:
        st.info(tr("data.plans.none"))
        return
    st.dataframe(plans.rename(columns={c: tr(f"data.plans.col.{c}") for c in plans.columns}), hide_index=True,
                 width="stretch", key=P + "plans_table")
    plan_id = st.selectbox(tr("data.plans.plan"), list(plans["plan_id"]), key=P + "plan_id")
    versions = store.list_plan_versions(plan_id)
    numbers = [int(v) for v in versions["version"]]
    st.dataframe(_versions_table(versions), hide_index=True, width="stretch", key=P + "versions_table")

    view, compare, restore = st.columns(3)
    with view:
        st.markdown(f"**{tr('data.plans.view')}**")
        version = st.selectbox(tr("data.plans.version"), numbers[::-1], key=P + "view_version")
        plan = store.load_plan(plan_id, int(version))
        st.caption(tr("data.plans.view_caption", n=len(plan.assignments), changes=len(plan.changes),
                      parameters=_plain(plan.meta.parameters)))
        st.dataframe(plan.assignments, hide_index=True, width="stretch", height=240, key=P + "plan_rows")
        if len(plan.changes):
            st.dataframe(plan.changes, hide_index=True, width="stretch", height=160, key=P + "plan_changes")
        download_buttons(plan.assignments, basename=f"plan_{plan_id}_v{version}", key=P + "plan_dl")
    with compare:
        st.markdown(f"**{tr('data.plans.compare')}**")
        a = st.selectbox(tr("data.plans.version_a"), numbers, index=max(0, len(numbers) - 2), key=P + "cmp_a")
        b = st.selectbox(tr("data.plans.version_b"), numbers, index=len(numbers) - 1, key=P + "cmp_b")
        diff = store.compare_plans(plan_id, int(a), int(b))
        st.markdown(tr("data.plans.diff_count", n=len(diff), a=a, b=b))
        if len(diff):
            st.dataframe(diff, hide_index=True, width="stretch", height=240, key=P + "plan_diff")
            download_buttons(diff, basename=f"plan_{plan_id}_v{a}_v{b}", key=P + "diff_dl")
    with restore:
        st.markdown(f"**{tr('data.plans.restore')}**")
        older = numbers[:-1]
        if not older:
            st.caption(tr("data.plans.restore_none"))
            return
        old = st.selectbox(tr("data.plans.version"), older[::-1], key=P + "restore_version")
        st.caption(tr("data.plans.restore_help", latest=numbers[-1]))
        planner = is_planner()
        if not planner:
            planner_notice()
        if st.button(tr("data.plans.restore_go", version=old), key=P + "restore_go", disabled=not planner,
                     type="primary"):
            with friendly_errors():
                new = store.restore_plan(plan_id, int(old), actor=current_actor())
                _flash("success", tr("data.plans.restored", plan=plan_id, old=old, new=new.version))
                st.rerun()


def _scenarios_section(store) -> None:
    scenarios = store.list_scenarios()
    if scenarios.empty:
        st.info(tr("data.scenarios.none"))
        return
    st.dataframe(scenarios.rename(columns={c: tr(f"data.scenarios.col.{c}") for c in scenarios.columns}),
                 hide_index=True, width="stretch", key=P + "scenarios_table")
    names = dict(zip(scenarios["scenario_id"].astype(int), scenarios["name"].astype(str)))
    chosen = st.selectbox(tr("data.scenarios.pick"), list(names), format_func=lambda i: f"#{i} {names[i]}",
                          key=P + "scenario")
    scenario = store.load_scenario(int(chosen))
    c1, c2 = st.columns(2)
    with c1:
        st.markdown(f"**{tr('data.scenarios.parameters')}**")
        st.json(scenario.parameters, expanded=False)
    with c2:
        st.markdown(f"**{tr('data.scenarios.results')}**")
        st.json(scenario.results, expanded=False)
    sites = scenario.agencies_frame()
    if len(sites):
        table = pd.DataFrame(sites.drop(columns=sites.geometry.name))
        table["lon"], table["lat"] = sites.geometry.x.round(6).to_numpy(), sites.geometry.y.round(6).to_numpy()
        st.dataframe(table, hide_index=True, width="stretch", key=P + "scenario_sites")
        download_buttons(sites, basename=f"scenario_{chosen}", formats=("csv", "xlsx", "gpkg"), key=P + "scn_dl")


def _audit_section(store) -> None:
    log = store.read_audit_log(limit=500)
    if log.empty:
        st.info(tr("data.audit.none"))
        return
    table = pd.DataFrame({
        tr("data.audit.ts"): log["ts"].to_numpy(),
        tr("data.audit.user"): log["user"].to_numpy(),
        tr("data.audit.action"): log["action"].to_numpy(),
        tr("data.audit.detail"): [_plain(d) for d in log["detail"]],
    })
    st.caption(tr("data.audit.caption", n=len(table)))
    st.dataframe(table, hide_index=True, width="stretch", key=P + "audit_table")
    download_buttons(table, basename="audit_log", key=P + "audit_dl")


# ----------------------------------------------------------------------------------------------------------------
# Region sources
# ----------------------------------------------------------------------------------------------------------------
def _switch_region(key: str) -> None:
    st.session_state[REGION_KEY] = key


def _region_loaded(key: str, region) -> None:
    set_session_region(key, region)
    st.session_state[P + "loaded_region"] = key


def _show_loaded_region() -> None:
    key = st.session_state.get(P + "loaded_region")
    region = st.session_state.get(f"region_obj:{key}") if key else None
    if region is None:
        return
    st.success(tr("data.region.loaded", name=region.name, units=len(region.units), agencies=len(region.agencies),
                  nodes=region.network.node_count))
    reports = (region.meta or {}).get("reports") or {}
    for kind in ("units", "agencies"):
        report = reports.get(kind)
        if report is not None and report.problems:
            with st.expander(tr(f"data.region.report.{kind}", n=len(report.problems))):
                st.dataframe(_report_table(report), hide_index=True, width="stretch", key=P + f"region_rep.{kind}")
    if st.session_state.get(REGION_KEY) != key:
        st.button(tr("data.region.switch"), key=P + "switch_region", on_click=_switch_region, args=(key,),
                  type="primary")


def _upload_region_form() -> None:
    from geo.region import load_region

    lang = current_lang()
    st.markdown(f"**{tr('data.region.upload_title')}**")
    osm = st.file_uploader(tr("data.region.osm_file"), type=OSM_TYPES, key=P + "region_osm",
                           help=tr("data.region.osm_help"))
    c1, c2 = st.columns(2)
    units = c1.file_uploader(tr("data.region.units_file"), key=P + "region_units")
    agencies = c2.file_uploader(tr("data.region.agencies_file"), key=P + "region_agencies")
    c3, c4, c5 = st.columns(3)
    coord = c3.radio(tr("data.import.coord"), COORD_SYSTEMS, key=P + "region_coord",
                     format_func=lambda v: t(f"coord.{v}", lang=lang))
    missing = c4.radio(tr("data.units.missing_population"), ("raise", "uniform"), key=P + "region_missing",
                       format_func=lambda m: t(f"data.units.missing.{m}", lang=lang))
    name = c5.text_input(tr("data.region.name"), key=P + "region_name",
                         placeholder=Path(osm.name).name.split(".")[0] if osm is not None else "")
    if st.button(tr("data.region.load"), key=P + "region_load", disabled=osm is None, type="primary"):
        loaded = None
        with friendly_errors(), st.status(tr("data.region.loading"), expanded=True) as status:
            with tempfile.TemporaryDirectory() as tmp:
                paths = {}
                for kind, upload in (("osm", osm), ("units", units), ("agencies", agencies)):
                    if upload is not None:
                        path = Path(tmp) / Path(upload.name).name
                        path.write_bytes(upload.getvalue())
                        paths[kind] = path
                st.write(tr("data.region.step.network"))
                region = load_region(osm=paths["osm"], units=paths.get("units"), agencies=paths.get("agencies"),
                                     name=name.strip() or Path(osm.name).name.split(".")[0], coord_system=coord,
                                     missing_population=missing)
            st.write(tr("data.region.step.done"))
            status.update(label=tr("data.region.loaded_short", name=region.name), state="complete")
            loaded = f"📁 {region.name}"
            _region_loaded(loaded, region)
        if loaded:
            st.rerun()  # show the loaded region (and its switch button) at the top of the section


def _download_region_form() -> None:
    from geo.region import load_region

    st.markdown(f"**{tr('data.region.download_title')}**")
    online = is_online()
    if not online:
        st.warning(tr("data.region.offline"), icon=":material/cloud_off:")
    lang = current_lang()
    how = st.radio(tr("data.region.download_by"), ("place", "boundary"), key=P + "download_by", horizontal=True,
                   format_func=lambda v: t(f"data.region.by.{v}", lang=lang), disabled=not online)
    source, label_text = None, None
    if how == "place":
        place = st.text_input(tr("data.region.place"), key=P + "place", disabled=not online,
                              placeholder=tr("data.region.place_placeholder"))
        if place.strip():
            source, label_text = place.strip(), place.strip()
    else:
        boundary = st.file_uploader(tr("data.region.boundary_file"), type=["geojson", "json", "gpkg"],
                                    key=P + "boundary", disabled=not online)
        if boundary is not None:
            import geopandas as gpd

            with friendly_errors():
                frame = gpd.read_file(io.BytesIO(boundary.getvalue()))
                if frame.crs is None:
                    raise InputError(tr("data.region.boundary_no_crs"))
                source = frame.to_crs("EPSG:4326").geometry.union_all()
                label_text = Path(boundary.name).stem
    if st.button(tr("data.region.download"), key=P + "download_go", disabled=not online or source is None,
                 type="primary"):
        loaded = None
        with friendly_errors(), st.status(tr("data.region.downloading"), expanded=True) as status:
            st.write(tr("data.region.step.network"))
            region = load_region(osm=source, name=label_text, missing_population="uniform")
            status.update(label=tr("data.region.loaded_short", name=region.name), state="complete")
            loaded = f"🌐 {region.name}"
            _region_loaded(loaded, region)
        if loaded:
            st.rerun()


def _regions_section() -> None:
    st.caption(tr("data.region.intro"))
    _show_loaded_region()
    left, right = st.columns(2)
    with left:
        _upload_region_form()
    with right:
        _download_region_form()


# ----------------------------------------------------------------------------------------------------------------
@friendly_errors()
def render() -> None:
    st.title(tr("data.title"))
    store = get_workspace()
    region = workspace_region()
    st.caption(tr("data.intro", region=region.name))
    if not is_planner():
        planner_notice()
    _show_flash()
    _contents_section(store)
    tabs = st.tabs([tr(f"data.tab.{k}") for k in ("registry", "units", "plans", "scenarios", "audit", "regions")])
    sections = (lambda: _registry_section(store, region), lambda: _units_section(store, region),
                lambda: _plans_section(store), lambda: _scenarios_section(store), lambda: _audit_section(store),
                _regions_section)
    for tab, section in zip(tabs, sections):
        # One broken section (say a malformed scenario) must not take the others down.
        with tab, friendly_errors():
            section()


render()
