"""Memory vs Learning Lab: the home page."""

import streamlit as st

import ui
from lab.errors import LabError

st.set_page_config(page_title="Memory vs Learning Lab", page_icon="🧪", layout="wide")

st.title("Memory vs Learning Lab")
memory_col, learning_col, wipe_col = st.columns(3)
memory_col.markdown(
    "### Memory\nCorrections are kept **outside** a frozen model and slipped into its prompt when a "
    "question looks related. Stored in milliseconds, specific, and gone the moment the store is wiped.")
learning_col.markdown(
    "### Learning\nA small LoRA adapter is trained on the same corrections and changes the model's "
    "**weights**. It takes seconds to minutes, costs no prompt tokens, can generalise a habit, "
    "and can disturb what the model knew.")
wipe_col.markdown(
    "### The wipe test\nErase the memory and ask again. An improvement that vanishes lived in "
    "memory; one that stays lives in the weights. Most \"self-learning\" agents are the first kind.")

try:
    lab = ui.session()
    info = lab.engine.info
    st.success(f"Model: {info.name} ({info.architecture}, {info.size_bytes / 1e6:.0f} MB) · embedder: "
               f"all-MiniLM-L6-v2 · workspace: {lab.workspace.name} · {len(lab.memory)} memories · "
               f"adapter: {lab.adapters.active_name() or 'none'}")
except LabError as error:
    ui.show_error(error)

st.markdown("**Start here:** ask a question in the **Playground**, correct the wrong answer, "
            "then run the **Wipe Test**. The **Memory** page shows and edits what is stored.")
