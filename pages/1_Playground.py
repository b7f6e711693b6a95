"""Playground: one question, four arms side by side."""

import streamlit as st

import ui
from lab.agent import ARMS, DEFAULT_K, DEFAULT_MIN_SCORE
from lab.errors import LabError

st.set_page_config(page_title="Playground · Memory vs Learning Lab", layout="wide")
st.title("Playground")
st.caption("Ask once, see all four arms. Correct a wrong answer and ask again.")
lab = ui.session()

with st.sidebar:
    k = st.slider("memories to retrieve (k)", 1, 10, int(st.query_params.get("k", DEFAULT_K)))
    threshold = st.slider("similarity threshold", 0.0, 1.0, float(st.query_params.get("threshold", DEFAULT_MIN_SCORE)), 0.05)
    st.caption(f"workspace: `{lab.workspace.name}` · {len(lab.memory)} memories · "
               f"adapter: {lab.adapters.active_name() or 'none'}")

question = st.text_input("Question", value=st.session_state.get("question", "What is the refund window at Acme Corp?"))
if st.button("Ask", type="primary"):
    st.session_state["question"] = question
    st.session_state["answers"] = {}
    columns = dict(zip(ARMS, st.columns(4)))
    for arm in ARMS:
        with columns[arm]:
            st.subheader(arm)
            box = st.empty()
            streamed = []

            def on_token(piece, box=box, streamed=streamed):
                streamed.append(piece)
                box.markdown("".join(streamed))

            try:
                result = lab.agent.answer(question, arm, k=k, min_score=threshold, on_token=on_token,
                                          on_wait=lambda: box.info("waiting for the model…"))
                st.session_state["answers"][arm] = result
            except LabError as error:
                box.warning(str(error))

for arm, result in st.session_state.get("answers", {}).items():
    with st.expander(f"{arm}: {result.answer[:80]}", expanded=False):
        st.write(f"{result.prompt_tokens} prompt tokens · {result.completion_tokens} completion tokens · "
                 f"{result.latency_ms:.0f} ms")
        for hit in result.hits:
            st.write(f"[{hit.id}] score {hit.score:.3f} — {hit.text}")
        st.code(result.prompt, language=None)

if st.session_state.get("answers"):
    st.divider()
    st.subheader("Correct this")
    correct = st.text_input("The right answer", key="correction")
    if st.button("Remember the correction") and correct.strip():
        try:
            memory = lab.memory.add(correct, question=st.session_state["question"], answer=correct)
            st.success(f"Remembered [{memory.id}]. Ask again to see the memory arm use it.")
        except LabError as error:
            ui.show_error(error)
