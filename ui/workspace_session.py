"""The glue between Streamlit sessions and the workspace store: the open workspace, the planner login, the region.

One workspace is opened per server process (``st.cache_resource``) at ``$LTCI_WORKSPACE`` or the demo default;
it is created from ``data/`` on first start and never overwritten (:func:`workspace.seed.open_demo_workspace`).

The demo region the pages show takes its agency registry from the workspace, so an import or a status change on
the data page reaches the map, coverage and planning pages. This module offers it to the shell through the
public :func:`ui.common.register_region_source` (the ``demo`` source is replaced by the workspace-backed one) and
clears the shell's region cache whenever the workspace changes.

Login: with no login configured every session is the local planner and the sidebar says the app runs in open
demo mode. With one configured (``LTCI_PLANNER_PASSWORD_HASH`` / ``LTCI_PLANNER_USER`` or Streamlit secrets),
a session is a resident until a planner logs in through the sidebar form; pages that change data call
:func:`current_actor` and pass it to the store, whose write methods refuse a resident anyway.

Pages use::

    from ui.workspace_session import current_actor, get_workspace, is_planner, planner_notice

    store = get_workspace()
    if is_planner():
        store.save_scenario(name, sites, actor=current_actor())
    else:
        planner_notice()
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Mapping

import streamlit as st

from workspace.auth import (
    LOCAL_PLANNER, RESIDENT, SECRET_HASH_KEY, SECRET_USER_KEY, Actor, check_login, default_throttle,
    planner_credentials,
)
from workspace.seed import default_workspace_location, open_demo_workspace
from workspace.store import WorkspaceStore

log = logging.getLogger("ltci.ui.workspace")

ACTOR_KEY = "workspace.actor"
LOGIN_MESSAGE_KEY = "workspace.login_message"
#: Host and port probed before an OSMnx download (the Overpass API OSMnx talks to).
OVERPASS_HOST = ("overpass-api.de", 443)


# ----------------------------------------------------------------------------------------------------------------
# The workspace
# ----------------------------------------------------------------------------------------------------------------
def workspace_location() -> str:
    """Where this server's workspace lives: ``$LTCI_WORKSPACE`` or ``workspaces/demo-andorra.gpkg``."""
    return default_workspace_location()


@st.cache_resource(show_spinner=False, max_entries=4)
def _open_workspace(location: str) -> WorkspaceStore:
    # One store per location and process: a second SQLite connection per session would only add lock traffic.
    return open_demo_workspace(location)


def get_workspace() -> WorkspaceStore:
    """The server's workspace store, opened (and on first start created from ``data/``) once per process."""
    from ui.common import tr

    with st.spinner(tr("workspace.opening")):
        return _open_workspace(workspace_location())


def workspace_revision(store: WorkspaceStore | None = None) -> int:
    """The id of the newest audit entry: every write to the workspace adds one in its own transaction."""
    store = get_workspace() if store is None else store
    latest = store.read_audit_log(limit=1)
    return int(latest["id"].iloc[0]) if len(latest) else 0


# ----------------------------------------------------------------------------------------------------------------
# The region with the workspace's registry
# ----------------------------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=1)
def _base_demo_region():
    from geo.region import load_demo_region

    return load_demo_region()


@st.cache_resource(show_spinner=False, max_entries=4)
def _registry_region(location: str, revision: int):
    """The demo region with the registry of the workspace at ``location`` as of ``revision``."""
    agencies = _open_workspace(location).read_agencies()
    region = _base_demo_region().with_agencies(agencies)
    region.meta["workspace"] = location
    return region


def workspace_region():
    """The demo region with the workspace's agency registry (rebuilt only when the workspace changed).

    The network, units and the region's travel-matrix cache are shared with the embedded demo region; only the
    registry comes from the workspace.
    """
    store = get_workspace()
    return _registry_region(workspace_location(), workspace_revision(store))


_seen_lock = threading.Lock()
_seen: dict[str, tuple] = {}


def sync_region_cache() -> None:
    """Clear the shell's cached regions when the workspace (location or contents) changed since the last run.

    Called once per script run from the sidebar, before any page asks for its region, so every session sees a
    registry change on its next rerun.
    """
    import ui.common as common

    state = (workspace_location(), workspace_revision())
    with _seen_lock:
        changed = _seen.get("demo") != state
        _seen["demo"] = state
    if changed:
        common.clear_region_cache()


def invalidate_region() -> None:
    """Forget the cached region now (after this session changed the registry)."""
    import ui.common as common

    with _seen_lock:
        _seen.pop("demo", None)
    common.clear_region_cache()


def _install_region_source() -> None:
    from ui.common import register_region_source

    # Same key and label as the shell's embedded demo source, so the selector and every page keep working.
    register_region_source("demo", "region.demo", workspace_region)


_install_region_source()


# ----------------------------------------------------------------------------------------------------------------
# Login
# ----------------------------------------------------------------------------------------------------------------
def _secrets() -> Mapping | None:
    """The planner settings from ``st.secrets`` (None when there is no secrets file, the usual case)."""
    try:
        return {k: st.secrets[k] for k in (SECRET_HASH_KEY, SECRET_USER_KEY) if k in st.secrets}
    except Exception:  # no secrets.toml at all: not an error, the environment may still configure a login
        return None


def login_state() -> tuple[bool, str | None]:
    """``(login required, configuration problem or None)``.

    A malformed hash counts as a login that is required but cannot succeed: falling back to open demo mode
    would open the app to everyone because of a typo.
    """
    try:
        return planner_credentials(secrets=_secrets()) is not None, None
    except ValueError as exc:
        return True, str(exc)


def login_required() -> bool:
    """``True`` when the deployment configures a planner login (or a broken one)."""
    return login_state()[0]


def current_actor() -> Actor:
    """The session's actor: the local planner in open demo mode, else the logged-in planner or a resident."""
    if not login_required():
        return LOCAL_PLANNER
    actor = st.session_state.get(ACTOR_KEY)
    return actor if isinstance(actor, Actor) and actor.role == "planner" else RESIDENT


def is_planner() -> bool:
    """Whether this session may change workspace data."""
    return current_actor().role == "planner"


def planner_notice() -> None:
    """Tell a resident session that the action needs a planner login (shown instead of the action)."""
    from ui.common import tr

    st.info(tr("auth.needs_planner"), icon=":material/lock:")


def log_in(user: str, password: str) -> bool:
    """Check a login; on success the session becomes that planner and the audit log records it."""
    from ui.common import tr

    try:
        result = check_login(user, password, secrets=_secrets(), throttle=default_throttle)
    except ValueError as exc:  # a malformed configured hash
        st.session_state[LOGIN_MESSAGE_KEY] = ("error", str(exc))
        return False
    if result.ok:
        st.session_state[ACTOR_KEY] = result.actor
        st.session_state[LOGIN_MESSAGE_KEY] = ("success", tr("auth.logged_in", user=result.actor.user))
        try:
            get_workspace().record_audit("login", {"user": result.actor.user}, actor=result.actor)
        except Exception as exc:  # the login stands even if the audit write fails; the log says why
            log.error("could not record the login in the audit log: %s", exc)
        return True
    log.warning("failed planner login for %r (retry after %.0f s)", user, result.retry_after)
    if result.retry_after > 0:
        text = tr("auth.failed_wait", seconds=max(1, round(result.retry_after)))
    else:
        text = tr("auth.failed")
    st.session_state[LOGIN_MESSAGE_KEY] = ("error", text)
    return False


def log_out() -> None:
    actor = st.session_state.pop(ACTOR_KEY, None)
    if isinstance(actor, Actor) and actor.role == "planner":
        try:
            get_workspace().record_audit("logout", {"user": actor.user}, actor=actor)
        except Exception as exc:
            log.error("could not record the logout in the audit log: %s", exc)
    st.session_state.pop(LOGIN_MESSAGE_KEY, None)


def _submit_login() -> None:
    log_in(st.session_state.get("workspace.login_user", ""), st.session_state.get("workspace.login_password", ""))
    st.session_state["workspace.login_password"] = ""


def login_sidebar() -> None:
    """The sidebar's login part: the open-demo-mode note, or the planner login form / logged-in status."""
    from ui.common import tr

    required, problem = login_state()
    if not required:
        st.caption(tr("auth.open_demo"))
        return
    if problem:
        st.error(tr("auth.misconfigured", message=problem))
    actor = current_actor()
    if actor.role == "planner":
        st.success(tr("auth.logged_in", user=actor.user), icon=":material/verified_user:")
        st.button(tr("auth.logout"), key="workspace.logout", on_click=log_out)
        return
    message = st.session_state.pop(LOGIN_MESSAGE_KEY, None)
    with st.expander(tr("auth.login_title"), expanded=message is not None):
        with st.form("workspace.login_form", clear_on_submit=False, border=False):
            st.text_input(tr("auth.user"), key="workspace.login_user")
            st.text_input(tr("auth.password"), type="password", key="workspace.login_password")
            st.form_submit_button(tr("auth.login"), on_click=_submit_login)
        if message:
            level, text = message
            (st.error if level == "error" else st.success)(text)
    st.caption(tr("auth.resident_note"))


def workspace_sidebar() -> None:
    """Everything the workspace adds to the sidebar on every page: keep the region in step, then the login."""
    try:
        sync_region_cache()
    except Exception as exc:  # the pages show the friendly message when the workspace cannot be opened
        log.error("workspace unavailable: %s", exc)
    login_sidebar()


# ----------------------------------------------------------------------------------------------------------------
# Connectivity (for OSMnx downloads)
# ----------------------------------------------------------------------------------------------------------------
def _probe(host: str, port: int, timeout_s: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@st.cache_data(ttl=60, show_spinner=False)
def is_online(host: str = OVERPASS_HOST[0], port: int = OVERPASS_HOST[1], *, timeout_s: float = 2.0) -> bool:
    """Whether the Overpass API answers a TCP connect within ``timeout_s`` (remembered for a minute).

    The probe runs in a thread joined with the same timeout, because a name lookup is not bounded by the
    socket timeout and a hung resolver must not freeze the page.
    """
    outcome: list[bool] = []
    worker = threading.Thread(target=lambda: outcome.append(_probe(host, port, timeout_s)), daemon=True)
    worker.start()
    worker.join(timeout_s + 0.5)
    return bool(outcome and outcome[0])
