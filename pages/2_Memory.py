"""Memory: what the agent remembers, and the wipe button."""

import pandas as pd
import streamlit as st

import ui
from lab.errors import LabError

st.set_page_config(page_title="Memory · Memory vs Learning Lab", layout="wide")
st.title("Memory")
lab = ui.session()
store = lab.memory

memories = store.list()
st.caption(f"{len(memories)} memories in workspace `{lab.workspace.name}`")
st.dataframe(pd.DataFrame([{"id": m.id, "text": m.text, "question": m.question, "source": m.source,
                            "updated": m.updated_at} for m in memories],
                          columns=["id", "text", "question", "source", "updated"]),
             hide_index=True, use_container_width=True)

query = st.text_input("Search the memory")
if query:
    try:
        for hit in store.search(query, k=5):
            st.write(f"[{hit.id}] score {hit.score:.3f} — {hit.text}")
    except LabError as error:
        ui.show_error(error)

left, middle, right = st.columns(3)
with left:
    new = st.text_input("Remember")
    if st.button("Add") and new:
        try:
            store.add(new)
            st.rerun()
        except LabError as error:
            ui.show_error(error)
with middle:
    target = st.number_input("Memory id", min_value=1, step=1)
    if st.button("Delete"):
        try:
            store.delete(int(target))
            st.rerun()
        except LabError as error:
            ui.show_error(error)
    if st.button("Undo the last change"):
        try:
            st.toast(store.undo())
            st.rerun()
        except LabError as error:
            ui.show_error(error)
with right:
    sure = st.checkbox("I understand: the wipe erases every memory")
    if st.button("Wipe memory", type="primary", disabled=not sure):
        st.toast(f"wiped {store.wipe()} memories")
        st.rerun()
