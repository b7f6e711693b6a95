"""Glue between Streamlit and the lab: the one place the pages get their session from.

The model and the embedder are loaded once per server process (st.cache_resource) and
shared by every browser session; each browser session gets its own workspace, so one
student never sees another's memory or adapters.
"""

from __future__ import annotations

import uuid

import streamlit as st

from lab.errors import LabError
from lab.links import LinkSettings, parse_link
from lab.session import LabSession


@st.cache_resource(show_spinner="Loading the model and the embedder (first visit only)…")
def _shared_models():
    from lab.embedder import get_embedder
    from lab.engine import get_engine

    return get_engine(), get_embedder()


def _run_through_app_py() -> None:
    """Make sure pages run inside app.py's navigation.

    Until app.py has run once, Streamlit treats a server whose script sits next to a
    `pages/` folder as an old-style multipage app: a link straight to /Playground as the
    server's first visit runs the page alone, and the sidebar calls the home page "app".
    Streamlit keeps that mode in a private flag, which app.py's st.navigation clears;
    clearing it here and running again takes the page through app.py, to the same page
    (both modes name a page by its URL path)."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the old mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def session() -> LabSession:
    """This browser session's lab: its own workspace, the shared model."""
    _run_through_app_py()
    _shared_models()
    if "lab" not in st.session_state:
        name = st.query_params.get("workspace") or f"browser-{uuid.uuid4().hex[:12]}"
        st.session_state["lab"] = LabSession.open(name)
    return st.session_state["lab"]


WAITING = "Waiting for the model: another student's request is running…"


def model_queue_notice(lab: LabSession) -> None:
    """Say so when the shared model is busy: a long run would otherwise just look stuck."""
    if lab.engine.busy:
        st.info(f"{WAITING} ({lab.engine.waiting} queued). Yours starts as soon as it is free.")


def show_error(error: LabError) -> None:
    st.error(str(error), icon="⚠️")


# ---- teacher mode and shareable links ------------------------------------------------------


def _toggle_teacher_mode() -> None:
    st.session_state["teacher"] = st.session_state["teacher_toggle"]
    # Written into the URL, so a link copied from the address bar keeps the mode.
    if st.session_state["teacher"]:
        st.query_params["teacher"] = "1"
    else:
        st.query_params.pop("teacher", None)


def teacher_mode() -> bool:
    """Whether advanced controls should be hidden: on with ?teacher=1 in the URL or the sidebar
    toggle. Draws the toggle, so call it once per page run. The choice is kept in session state
    (not only in the widget) so it survives moving between pages."""
    if "teacher" not in st.session_state:
        st.session_state["teacher"] = parse_link(st.query_params.to_dict())[0].teacher
    st.sidebar.toggle("Teacher mode", value=st.session_state["teacher"], key="teacher_toggle",
                      on_change=_toggle_teacher_mode,
                      help="Hides advanced controls (raw details, resets, fine-tuning) for a class. "
                           "The setting goes into the page's link.")
    return bool(st.session_state["teacher"])


def link_settings() -> LinkSettings:
    """The settings a shared link carries (?scenario=&arm=&k=&threshold=&teacher=). A bad value
    falls back to its default, with one warning line on the page instead of a traceback."""
    settings, warning = parse_link(st.query_params.to_dict())
    if warning:
        st.warning(warning, icon="🔗")
    return settings
