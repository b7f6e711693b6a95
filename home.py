"""Memory vs Learning Lab: the home page (app.py routes to it)."""

import streamlit as st

import ui
from lab.errors import LabError
from lab.plural import plural
from lab.scenario import bundled_names, load_scenario


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
               f"all-MiniLM-L6-v2 · workspace: {lab.workspace.name} · {plural(len(lab.memory), 'memory')} · "
               f"adapter: {lab.adapters.active_name() or 'none'}")
except LabError as error:
    ui.show_error(error)

st.markdown("**The five-minute demo:** pick a scenario below. Ask one of its questions in the **Playground** "
            "and watch the base model get it wrong, correct it, ask again. Then open the **Wipe Test**, train the "
            "learned arm there on the same corrections, and see which fix survives the wipe.")

st.subheader("Start with a scenario")
# Each start button opens the Playground with the scenario in the link, so its questions are
# offered there and the link can be shared as it is.
names = bundled_names()
for row in range(0, len(names), 3):
    for column, name in zip(st.columns(3), names[row:row + 3]):
        scenario = load_scenario(name)
        with column.container(border=True):
            st.markdown(f"**{scenario.title}**  \n*{scenario.kind}* · {len(scenario.items)} items")
            st.caption(scenario.description[:220] + ("…" if len(scenario.description) > 220 else ""))
            if st.button("Start", key=f"home.start-{name}"):
                st.switch_page("pages/1_Playground.py", query_params={"scenario": name})
            st.page_link("pages/3_Wipe_Test.py", label="straight to the wipe test →",
                         query_params={"scenario": name})

st.subheader("The pages")
st.markdown(
    "- **Playground**: one question, four arms (base, memory, learned, both), with the evidence.\n"
    "- **Memory**: what is stored, the retrieval explorer and a map of the embeddings.\n"
    "- **Learning**: train an adapter on the corrections; watch the loss; compare costs.\n"
    "- **Wipe Test**: predict, wipe, reveal.\n"
    "- **Update Test**: a fact changes; memory is edited in milliseconds, the adapter retrained in minutes.\n"
    "- **Experiments**: curves and sweeps, with downloads.\n"
    "- **Workshop**: guided exercises that check themselves.")
