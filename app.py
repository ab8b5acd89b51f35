"""LTCI care agency planner: the Streamlit entry point (``streamlit run app.py``).

A thin router. Each page is a script in ``ui/pages/`` registered by one line in :data:`PAGES`; the sidebar holds
what every page shares: the language, the region and the map data attribution.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from ui.common import current_lang, get_region, language_toggle, region_selector, tr
from ui.workspace_session import workspace_sidebar

#: (page script, string key of its title in ui/strings.py, icon). The first page is the default.
PAGES: list[tuple[str, str, str]] = [
    ("ui/pages/agency_map.py", "nav.agency_map", ":material/map:"),
    ("ui/pages/coverage.py", "nav.coverage", ":material/radar:"),
    ("ui/pages/siting.py", "nav.siting", ":material/add_location_alt:"),
    ("ui/pages/allocation.py", "nav.allocation", ":material/hexagon:"),
    ("ui/pages/data.py", "nav.data", ":material/database:"),
]

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
st.set_page_config(page_title="长护险护理机构规划 · LTCI planner", page_icon=str(Path(__file__).parent / "static" / "img" / "favicon.png"),
                   layout="wide")

with st.sidebar:
    language_toggle()
    region_selector()
    workspace_sidebar()

navigation = st.navigation(
    [st.Page(path, title=tr(key), icon=icon, default=i == 0) for i, (path, key, icon) in enumerate(PAGES)]
)

with st.sidebar:
    st.divider()
    try:
        region = get_region()
        st.caption(tr("region.summary", townships=len(region.townships), units=len(region.units),
                      agencies=len(region.agencies), nodes=region.network.node_count))
    except Exception as exc:  # the page itself shows the friendly message; the sidebar stays usable
        logging.getLogger("ltci.ui").warning("region summary unavailable: %s", exc)
    st.caption(tr("attribution"))
    st.caption(tr("app.title") + (" · 中文" if current_lang() == "zh" else " · English"))

navigation.run()
