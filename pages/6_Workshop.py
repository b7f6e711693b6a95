"""Workshop: guided exercises, each checked against what is really in the lab (lab/workshop.py)."""

from dataclasses import replace

import streamlit as st

import ui
from lab import workshop
from lab.agent import ARMS
from lab.errors import LabError
from lab.links import build_link
from lab.scenario import bundled_names

st.set_page_config(page_title="Workshop · Memory vs Learning Lab", layout="wide")
st.title("Workshop")
st.caption("Guided exercises. Each check looks at your workspace's real memory and adapters and asks the "
           "model afresh: there is nothing to tick by hand.")
lab = ui.session()
teacher = ui.teacher_mode()
settings = replace(ui.link_settings(), teacher=teacher)
bar = st.empty()  # filled at the end, once this run's checks are counted

# The link's values are the defaults. Teacher mode hides the fine-tuning: the class gets the link's.
if not teacher:
    with st.sidebar:
        st.subheader("Settings")
        names = bundled_names()
        settings = replace(settings,
                           scenario=st.selectbox("scenario (forgetting, wipe test)", names,
                                                 index=names.index(settings.scenario), key="ws-scenario"),
                           k=int(st.number_input("memories to retrieve (k)", 1, 50, settings.k, key="ws-k")),
                           threshold=st.slider("similarity threshold", -1.0, 1.0, float(settings.threshold), 0.05,
                                               key="ws-threshold"))

if "workshop" not in st.session_state:  # progress survives a reload: it is saved in the workspace
    st.session_state["workshop"] = workshop.load_progress(lab.workspace)
progress = st.session_state["workshop"]

with st.container(border=True):
    st.markdown("**Try it here** — the same calls as the Playground, with the settings above.")
    question_col, arm_col = st.columns([4, 1])
    question = question_col.text_input("Question", workshop.REFUND_QUESTION, key="ws-question")
    settings = replace(settings, arm=arm_col.selectbox("Arm", ARMS, index=ARMS.index(settings.arm), key="ws-arm"))
    note = st.text_input("A note to remember", key="ws-note", placeholder=workshop.REFUND_NOTE)
    ask_col, remember_col, undo_col = st.columns(3)
    try:
        if ask_col.button("Ask", key="ws-ask", type="primary"):
            st.session_state["ws-answer"] = lab.agent.answer(question, settings.arm, k=settings.k,
                                                             min_score=settings.threshold)
        if remember_col.button("Remember", key="ws-remember"):
            st.success(f"Remembered [{lab.memory.add(note).id}].")
        if undo_col.button("Undo the last memory change", key="ws-undo"):
            st.info(lab.memory.undo())
    except LabError as error:
        ui.show_error(error)
    if answer := st.session_state.get("ws-answer"):
        st.markdown(f"**{answer.arm}:** {answer.answer}")
        st.caption("retrieved: " + ("; ".join(f"[{h.id}] {h.text} ({h.score:.2f})" for h in answer.hits) or "none"))
    st.caption(f"workspace `{lab.workspace.name}` · {len(lab.memory)} memories · "
               f"adapter: {lab.adapters.active_name() or 'none'}")


# Helpers that shorten a step. They change the lab because the student asks them to; checks never do.
def poison_helpers(state):
    if st.button("Remember the wrong note", key="ws-poison"):
        st.success(f"Remembered [{lab.memory.add(workshop.POISON_NOTE).id}] {workshop.POISON_NOTE}")


def behaviour_helpers(state):
    if st.button("Load the pirate examples into memory", key="ws-pirate"):
        st.success(f"Added {workshop.remember_pirate_examples(lab)} pirate examples.")


def wipe_helpers(state):
    arms = ["memory"] + (["learned"] if lab.adapters.active() else [])
    guesses = {arm: st.radio(f"After the wipe the **{arm}** arm…", workshop.PREDICTION_CHOICES, horizontal=True,
                             key=f"ws-predict-{arm}", format_func=lambda c: f"{c} the improvement")
               for arm in arms}
    if "learned" not in arms:
        st.caption("No adapter is active, so only the memory arm is predicted (train one to add learned).")
    save_col, run_col = st.columns(2)
    if save_col.button("Save my prediction", key="ws-save-prediction"):
        workshop.save_prediction(state, guesses)
        workshop.save_progress(lab.workspace, progress)
    if run_col.button(f"Run the wipe test ({settings.scenario})", key="ws-run-wipe",
                      disabled="prediction" not in state):
        with st.spinner("remembering, evaluating, wiping, evaluating again (a minute or two)…"):
            workshop.run_wipe_test(lab, settings.scenario, state)
        workshop.save_progress(lab.workspace, progress)
    if "prediction" in state:
        st.caption("Saved prediction: " + ", ".join(f"{arm} {guess}" for arm, guess in state["prediction"].items()))


def threshold_helpers(state):
    state["threshold"] = st.slider("threshold for this exercise", 0.0, 1.0, 0.0, 0.05, key="ws-ex-threshold")
    if st.button("Ask the laptop question at this threshold", key="ws-ask-laptop"):
        answer = lab.agent.answer(workshop.NEAR_MISS_QUESTION, "memory", k=settings.k, min_score=state["threshold"])
        st.markdown(f"**memory:** {answer.answer}")
        st.caption("retrieved: " + ("; ".join(f"[{h.id}] {h.text} ({h.score:.2f})" for h in answer.hits) or "none"))


HELPERS = {"poison-repair": poison_helpers, "behaviour": behaviour_helpers,
           "wipe-prediction": wipe_helpers, "threshold": threshold_helpers}

first_open = next((e.id for e in workshop.EXERCISES if not progress.get(e.id, {}).get("done")), None)
for number, exercise in enumerate(workshop.EXERCISES, 1):
    entry = progress.setdefault(exercise.id, {})
    state = entry.setdefault("state", {})
    with st.expander(f"{'✅' if entry.get('done') else '⬜'} {number}. {exercise.title}",
                     expanded=exercise.id == st.session_state.get("ws-open", first_open)):
        st.markdown(f"**Goal.** {exercise.goal}")
        st.markdown("\n".join(f"{i}. {step}" for i, step in enumerate(exercise.steps, 1)))
        try:
            if exercise.id in HELPERS:
                HELPERS[exercise.id](state)
            if st.button("Check my work", key=f"check-{exercise.id}", type="primary"):
                with st.spinner("checking against the lab…"):
                    workshop.run_check(exercise, lab, settings, progress)
                workshop.save_progress(lab.workspace, progress)
                st.session_state["ws-open"] = exercise.id
                st.rerun()  # redraw the ✅ marks and the progress bar
        except LabError as error:
            ui.show_error(error)
        if result := entry.get("result"):
            if result["passed"]:
                st.success(result["detail"], icon="✅")
            else:
                st.warning(result["detail"], icon="❌")
        if not teacher and st.toggle("raw details", key=f"raw-{exercise.id}"):
            st.json(entry)

done = workshop.done_count(progress)
bar.progress(done / len(workshop.EXERCISES), text=f"{done} of {len(workshop.EXERCISES)} exercises done")

with st.sidebar:
    st.markdown("**Link to share**")
    st.code(build_link(settings), language=None)
    st.caption("Relative to this app's address. It opens the Workshop with these settings.")
    if not teacher and st.button("Reset my progress", key="ws-reset"):
        st.session_state["workshop"] = {}
        workshop.save_progress(lab.workspace, {})
        st.rerun()
