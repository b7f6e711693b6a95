"""Playground: one question, four arms side by side."""

import time

import streamlit as st

import ui
from lab.agent import ARMS
from lab.attribution import explain
from lab.errors import LabError
from lab.scenario import load_scenario

st.set_page_config(page_title="Playground · Memory vs Learning Lab", layout="wide")
st.title("Playground")
st.caption("Ask once, see all four arms. Correct a wrong answer and ask again.")
lab = ui.session()
link = ui.link_settings()
teacher = ui.teacher_mode()

with st.sidebar:
    if teacher:  # a class sees the shared link's settings, not the knobs
        k, threshold = link.k, link.threshold
        st.caption(f"k = {k} · threshold = {threshold:g} (set by the link)")
    else:
        k = st.slider("memories to retrieve (k)", 1, 10, min(link.k, 10), key="k")
        threshold = st.slider("similarity threshold", 0.0, 1.0, min(max(link.threshold, 0.0), 1.0), 0.05,
                              key="threshold", help="a memory scoring below this stays out of the prompt")
    st.caption(f"workspace: `{lab.workspace.name}` · {len(lab.memory)} memories · "
               f"adapter: {lab.adapters.active_name() or 'none'}")

examples = [item.question for item in load_scenario(link.scenario).items]
st.session_state.setdefault("question_box", "What is the refund window at Acme Corp?")
st.selectbox(f"Example questions from the *{link.scenario}* scenario", [""] + examples, key="pick",
             on_change=lambda: st.session_state.update(question_box=st.session_state["pick"] or
                                                       st.session_state["question_box"]))
question = st.text_input("Question", key="question_box")
if st.button("Ask", type="primary", key="ask"):
    st.session_state["question"] = question
    st.session_state["answers"] = {}
    st.session_state.pop("why", None)
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
                                          on_wait=lambda box=box: box.info(ui.WAITING))
                st.session_state["answers"][arm] = result
            except LabError as error:
                box.warning(str(error))

for arm, result in st.session_state.get("answers", {}).items():
    with st.expander(f"**{arm}**: {result.answer[:100]}", expanded=arm == link.arm):
        st.write(f"{result.prompt_tokens} prompt tokens · {result.completion_tokens} completion tokens · "
                 f"{result.latency_ms:.0f} ms" + (f" · retrieval {result.retrieval_ms:.0f} ms" if result.hits else ""))
        for hit in result.hits:
            st.write(f"[{hit.id}] score {hit.score:.3f} — {hit.text}")
        if arm in ("memory", "both") and not result.hits:
            st.write("no memory scored above the threshold: the prompt is the same as without memory")
        st.code(result.prompt, language=None)

answers = st.session_state.get("answers", {})
if answers.get("memory") and answers["memory"].hits:
    if st.button("Why? Which memory changed the answer?", key="why_button"):
        try:
            with st.spinner("answering again with each memory left out in turn…"):
                st.session_state["why"] = explain(lab.agent, st.session_state["question"], k=k, min_score=threshold)
        except LabError as error:
            ui.show_error(error)
why = st.session_state.get("why")
if why:
    st.markdown(f"**Without any memory:** {why.base_answer}  \n**With the memories:** {why.answer}")
    for ablation in why.ablations:
        verdict = "**changed the answer**" if ablation.changed else "made no difference"
        (st.success if ablation.changed else st.info)(
            f"Leaving out [{ablation.id}] “{ablation.text}” (score {ablation.score:.2f}) {verdict}: "
            f"{ablation.answer_without}")
    if not why.decisive:
        st.caption("No single memory was decisive: the others carried the same information, "
                   "or the model ignored the notes.")

if answers:
    st.divider()
    st.subheader("Correct this")
    correct = st.text_input("The right answer, as a full sentence", key="correction")
    if st.button("Remember the correction", key="remember") and correct.strip():
        try:
            started = time.perf_counter()
            memory = lab.memory.add(correct, question=st.session_state["question"], answer=correct)
            took_ms = (time.perf_counter() - started) * 1000
            st.success(f"Remembered [{memory.id}] in {took_ms:.0f} ms (embedded, indexed, saved). "
                       "Ask again to see the memory arm use it; the model's weights did not change.")
        except LabError as error:
            ui.show_error(error)
