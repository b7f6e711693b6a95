"""Memory vs Learning Lab: the home page. The full set of pages arrives with the app issue."""

import streamlit as st

from lab.errors import LabError
from lab.session import LabSession

st.set_page_config(page_title="Memory vs Learning Lab", page_icon="🧪", layout="wide")

st.title("Memory vs Learning Lab")
st.markdown(
    """
**Memory** keeps corrections *outside* a frozen model and slips the relevant ones into its
prompt. It works in milliseconds, and it is gone the moment the store is wiped.

**Learning** changes the model's *weights* (here: a small LoRA adapter trained on the same
corrections). It takes minutes, costs no prompt tokens, and it is still there after a wipe.

**The wipe test** tells them apart: erase the memory and see which improvement survives.
"""
)


@st.cache_resource(show_spinner="Loading the model and the embedder…")
def _status():
    session = LabSession.open()
    info = session.engine.info
    return info, session.workspace


try:
    info, workspace = _status()
    st.success(f"Model: {info.name} ({info.architecture}, {info.size_bytes / 1e6:.0f} MB) · "
               f"workspace: {workspace.name}")
except LabError as error:
    st.error(str(error))
