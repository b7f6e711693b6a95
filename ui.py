"""Glue between Streamlit and the lab: the one place the pages get their session from.

The model and the embedder are loaded once per server process (st.cache_resource) and
shared by every browser session; each browser session gets its own workspace, so one
student never sees another's memory or adapters.
"""

from __future__ import annotations

import uuid

import streamlit as st

from lab.errors import LabError
from lab.session import LabSession


@st.cache_resource(show_spinner="Loading the model and the embedder (first visit only)…")
def _shared_models():
    from lab.embedder import get_embedder
    from lab.engine import get_engine

    return get_engine(), get_embedder()


def session() -> LabSession:
    """This browser session's lab: its own workspace, the shared model."""
    _shared_models()
    if "lab" not in st.session_state:
        name = st.query_params.get("workspace") or f"browser-{uuid.uuid4().hex[:12]}"
        st.session_state["lab"] = LabSession.open(name)
    return st.session_state["lab"]


def show_error(error: LabError) -> None:
    st.error(str(error), icon="⚠️")
