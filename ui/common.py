"""What every page shares: the session's language, the cached region and matrix, friendly errors, downloads.

Pages follow one pattern (see ``ui/pages/agency_map.py``)::

    from ui.common import tr, get_region, friendly_errors, download_buttons

    @friendly_errors()
    def render() -> None:
        region = get_region()
        st.title(tr("agency.title"))
        ...

    render()

and register themselves with one line in ``app.py``'s ``PAGES``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st

from geo.errors import InputError, PlanningError
from ui.strings import DEFAULT_LANGUAGE, LANGUAGES, t

log = logging.getLogger("ltci.ui")

LANG_KEY = "lang"
REGION_KEY = "region_source"


# ----------------------------------------------------------------------------------------------------------------
# Language
# ----------------------------------------------------------------------------------------------------------------
def current_lang() -> str:
    """The session's UI language (``zh`` unless the user switched)."""
    lang = st.session_state.get(LANG_KEY, DEFAULT_LANGUAGE)
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def tr(key: str, **fmt) -> str:
    """``ui.strings.t`` in the session's language."""
    return t(key, lang=current_lang(), **fmt)


def language_toggle() -> str:
    """The sidebar's 中文/English switch; the choice persists for the session."""
    st.session_state.setdefault(LANG_KEY, DEFAULT_LANGUAGE)
    st.radio(t("sidebar.language", lang=current_lang()), LANGUAGES, key=LANG_KEY, horizontal=True,
             format_func=lambda code: t(f"lang.{code}", lang=code))
    return current_lang()


def lang_widget(widget, label: str, options, *, key: str, default=None, **kwargs):
    """A choice widget whose option labels are translated, keeping its value when the language switches.

    Streamlit's browser side keeps a widget's *displayed* labels: after a language switch the chips of a
    multiselect would stay in the old language. So the widget gets a per-language key (``key@zh``), and the
    canonical value lives under ``key``: read it with ``st.session_state[key]``, and assign to it (e.g. in a
    callback) to change the choice; the widget follows. ``widget`` is ``st.multiselect``/``st.selectbox``/
    ``st.radio`` or the same method of a column or the sidebar; ``default`` is a list for multiselect, one option
    (or None) otherwise.
    """
    options = list(options)
    value = st.session_state.get(key, default)
    if getattr(widget, "__name__", "") == "multiselect":
        value = [v for v in (value or []) if v in options]
    elif value not in options:
        value = None if default is None else options[0]
    widget_key, last_key = f"{key}@{current_lang()}", f"{key}@last"
    # Seed the widget through its key (never with default=/index=, which Streamlit would flag as set twice):
    # on first draw in this language, and whenever the canonical value was changed from outside since the last
    # run (e.g. by a map click), so the browser shows the new choice too.
    if widget_key not in st.session_state or st.session_state.get(last_key, value) != value:
        st.session_state[widget_key] = value
    result = widget(label, options, key=widget_key, **kwargs)
    st.session_state[key] = st.session_state[last_key] = result
    return result


def set_lang_widget(key: str, value) -> None:
    """Change the value of a :func:`lang_widget` from code (a callback, another widget) before it is drawn."""
    st.session_state[key] = value


# ----------------------------------------------------------------------------------------------------------------
# Regions
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegionSource:
    """A way to obtain a region: ``load()`` builds it (cached per server); ``label_key`` names it in the UI."""

    key: str
    label_key: str
    load: Callable[[], object]


def _load_demo():
    from geo.region import load_demo_region

    return load_demo_region()


#: Region sources offered in the sidebar, in order. Add one with :func:`register_region_source`.
REGION_SOURCES: dict[str, RegionSource] = {"demo": RegionSource("demo", "region.demo", _load_demo)}


def register_region_source(key: str, label_key: str, load: Callable[[], object]) -> None:
    """Offer another region source in the sidebar selector (e.g. uploaded files or an OSMnx download).

    ``load`` takes no arguments; a source built from one user's uploads should instead put its region in the
    session with :func:`set_session_region`.
    """
    REGION_SOURCES[key] = RegionSource(key, label_key, load)


def set_session_region(key: str, region) -> None:
    """Use ``region`` for source ``key`` in this session only (uploads are per user, not per server)."""
    st.session_state[f"region_obj:{key}"] = region


def session_region_keys() -> list[str]:
    return [k.split(":", 1)[1] for k in st.session_state if str(k).startswith("region_obj:")]


@st.cache_resource(show_spinner=False, max_entries=4)
def _cached_region(source_key: str):
    return REGION_SOURCES[source_key].load()


def clear_region_cache() -> None:
    """Forget every loaded region, e.g. after the workspace's agency registry changed."""
    _cached_region.clear()


def region_selector() -> str:
    """The sidebar's region source selector; returns the chosen source key."""
    options = list(dict.fromkeys(list(REGION_SOURCES) + session_region_keys()))
    if st.session_state.get(REGION_KEY) not in options:
        st.session_state[REGION_KEY] = options[0]
    lang = current_lang()

    def name(key: str) -> str:
        source = REGION_SOURCES.get(key)
        return t(source.label_key, lang=lang) if source else key

    return lang_widget(st.selectbox, tr("sidebar.region"), options, key=REGION_KEY, default=options[0],
                       format_func=name)


def region_key() -> str:
    """An id of the session's current region, for cache keys."""
    return str(st.session_state.get(REGION_KEY, "demo"))


def get_region():
    """The session's current region (loaded once per server and reused across reruns and sessions)."""
    key = region_key()
    custom = st.session_state.get(f"region_obj:{key}")
    if custom is not None:
        return custom
    if key not in REGION_SOURCES:
        key = "demo"
    with st.spinner(tr("region.loading")):
        return _cached_region(key)


def _agency_fingerprint(agencies) -> tuple:
    return (tuple(agencies["agency_id"].astype(str)), tuple(np.round(agencies.geometry.x, 7)),
            tuple(np.round(agencies.geometry.y, 7)))


@st.cache_resource(show_spinner=False, max_entries=16)
def _cached_matrix(_region, region_id: str, agency_key: tuple, engine: str):
    return _region.travel_matrix(engine=engine)


def get_travel_matrix(region=None, *, engine: str = "auto"):
    """The region's agencies × units minutes, computed once per (region, agency ids and positions)."""
    region = get_region() if region is None else region
    with st.spinner(tr("matrix.building")):
        return _cached_matrix(region, f"{region_key()}:{region.name}:{region.network.fingerprint()}",
                              _agency_fingerprint(region.agencies), engine)


@st.cache_resource(show_spinner=False, max_entries=8)
def _cached_basemap_roads(_region, region_id: str):
    from geo.network import edges_frame
    from ui.maps import basemap_roads

    return basemap_roads(edges_frame(_region.network, min_class="tertiary"))


def get_basemap_roads(region=None):
    """The region's main roads merged per class for the offline vector basemap (built once)."""
    region = get_region() if region is None else region
    return _cached_basemap_roads(region, f"{region_key()}:{region.name}:{region.network.fingerprint()}")


def tianditu_key() -> str | None:
    """The Tianditu key from the environment or ``st.secrets`` (``TIANDITU_KEY``), else None."""
    key = os.environ.get("TIANDITU_KEY")
    if key:
        return key
    try:
        return st.secrets.get("TIANDITU_KEY") or None
    except Exception:  # no secrets file at all is the usual case, not an error
        return None


# ----------------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------------
def show_error(exc: BaseException) -> None:
    """Show ``exc`` as a message that says what to fix; the traceback goes to the server log only."""
    if isinstance(exc, InputError):
        log.warning("input error shown to the user: %s", exc, exc_info=exc)
        st.error(tr("error.input", message=getattr(exc, "message", str(exc))))
        if exc.problems:
            with st.expander(tr("error.problems"), expanded=len(exc.problems) <= 5):
                st.markdown("\n".join(f"- {p}" for p in exc.problems[:50]))
                if len(exc.problems) > 50:
                    st.markdown(f"- … (+{len(exc.problems) - 50})")
    elif isinstance(exc, PlanningError):
        log.warning("planning error shown to the user: %s", exc, exc_info=exc)
        st.error(tr("error.planning", message=str(exc)))
    else:
        log.error("unexpected error on page", exc_info=exc)
        st.error(tr("error.unexpected", kind=type(exc).__name__))


class friendly_errors(contextlib.ContextDecorator):
    """Context manager and decorator: any ``Exception`` inside becomes a friendly ``st.error`` and is logged.

    Streamlit's own control flow (``st.rerun``, ``st.stop``) derives from ``BaseException`` and passes through.
    """

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        show_error(exc)
        return True


# ----------------------------------------------------------------------------------------------------------------
# Downloads
# ----------------------------------------------------------------------------------------------------------------
MIME_TYPES: dict[str, str] = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "gpkg": "application/geopackage+sqlite3",
    "geojson": "application/geo+json",
}


def _plain_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Geometry as lon/lat columns for points, WKT otherwise; everything else unchanged."""
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame:
        return pd.DataFrame(frame)
    geom = frame.geometry
    table = pd.DataFrame(frame.drop(columns=[geom.name]))
    if len(geom) and (geom.geom_type == "Point").all():
        table["lon"], table["lat"] = geom.x.to_numpy(), geom.y.to_numpy()
    elif len(geom):
        table["wkt"] = geom.to_wkt().to_numpy()
    return table


def table_bytes(frame: pd.DataFrame, fmt: str, *, layer: str = "table") -> bytes:
    """A table as file bytes: ``csv`` (UTF-8 with BOM so Excel shows Chinese), ``xlsx``, ``gpkg`` or ``geojson``.

    Raises
    ------
    InputError
        A spatial format asked of a table without geometry, or an unknown format.
    """
    fmt = fmt.lower().lstrip(".")
    if fmt == "csv":
        return _plain_table(frame).to_csv(index=False).encode("utf-8-sig")
    if fmt == "xlsx":
        buffer = io.BytesIO()
        table = _plain_table(frame)
        with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
            table.to_excel(writer, index=False, sheet_name=layer[:31])
            sheet = writer.sheets[layer[:31]]
            # Ids, codes and phones stay text in Excel (a 12-digit code must not become 1.2E+11).
            for i, col in enumerate(table.columns, start=1):
                if table[col].dtype == object or str(table[col].dtype).startswith("str"):
                    for (cell,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                        cell.number_format = "@"
        return buffer.getvalue()
    if fmt in ("gpkg", "geojson"):
        if not isinstance(frame, gpd.GeoDataFrame):
            raise InputError(f"a {fmt} download needs a table with geometry")
        if fmt == "geojson":
            return frame.to_json(na="null", drop_id=True, ensure_ascii=False).encode("utf-8")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{layer}.gpkg"
            frame.to_file(path, layer=layer, driver="GPKG", engine="pyogrio")
            return path.read_bytes()
    raise InputError(f"unknown download format {fmt!r}; use csv, xlsx, gpkg or geojson")


def download_buttons(frame: pd.DataFrame, *, basename: str, formats=("csv", "xlsx"), key: str,
                     columns=None) -> None:
    """One ``st.download_button`` per format, side by side, for ``frame``."""
    cols = st.columns(len(formats)) if columns is None else columns
    for fmt, col in zip(formats, cols):
        with col:
            st.download_button(tr(f"download.{fmt}"), data=table_bytes(frame, fmt, layer=basename),
                               file_name=f"{basename}.{fmt}", mime=MIME_TYPES[fmt], key=f"{key}.{fmt}",
                               width="stretch", on_click="ignore")


def deferred_download(name: str, build):
    """A download callable that builds its bytes only on click; failures go to the server log with their
    traceback, and Streamlit shows the user a short error."""
    def run() -> bytes:
        try:
            return build()
        except Exception:
            logging.getLogger("ui.downloads").exception("building the %s download failed", name)
            raise
    return run
