"""Playground: one question, four arms side by side."""

import time

import streamlit as st

import ui
from lab.agent import ARMS
from lab.attribution import explain
from lab.errors import LabError
from lab.plural import plural
from lab.scenario import bundled_names, load_scenario

st.set_page_config(page_title="Playground · Memory vs Learning Lab", layout="wide")
key = ui.keys("playground")
st.title("Playground")
st.caption("Ask once, see all four arms. Correct a wrong answer and ask again.")
lab = ui.session()
settings = ui.link_settings()
teacher = ui.teacher_mode()

with st.sidebar:
    if teacher:  # a class sees the shared link's settings, not the knobs
        st.caption(f"k = {settings.k} · threshold = {settings.threshold:g} (set by the link)")
    else:
        st.slider("memories to retrieve (k)", 1, 20, min(settings.k, 20), key=key("k"),
                  on_change=lambda: ui.update_link(k=st.session_state[key("k")]),
                  help="At most this many notes, best first, go into the memory arms' prompt.")
        st.slider("similarity threshold", 0.0, 1.0, min(max(settings.threshold, 0.0), 1.0), 0.05,
                  key=key("threshold"), on_change=lambda: ui.update_link(threshold=st.session_state[key("threshold")]),
                  help="A note scoring below this (cosine similarity to the question) stays out of the prompt.")
    settings = ui.current_settings()
    st.caption(f"workspace: `{lab.workspace.name}` · {plural(len(lab.memory), 'memory')} · "
               f"adapter: {lab.adapters.active_name() or 'none'}")

# ---- the question: kept under this page's own keys, so it survives a visit to another page ----
names = bundled_names()
if teacher:
    scenario_name = settings.scenario
else:
    scenario_name = st.selectbox("Scenario", names, index=names.index(settings.scenario), key=key("scenario_box"),
                                 on_change=lambda: ui.update_link(scenario=st.session_state[key("scenario_box")]))
scenario = load_scenario(scenario_name)
examples = {item.question: item for item in scenario.items}
st.session_state.setdefault(key("question"), next(iter(examples), ""))
st.session_state.setdefault(key("question_box"), st.session_state[key("question")])


def pick_example():
    if st.session_state[key("pick")]:
        st.session_state[key("question_box")] = st.session_state[key("pick")]


st.selectbox(f"Example questions from *{scenario.title}*", [""] + list(examples), key=key("pick"),
             on_change=pick_example, format_func=lambda q: q or "— choose one, or type your own below —")
question = st.text_input("Question", key=key("question_box"))
st.session_state[key("question")] = question


def suggested_correction(asked: str) -> str:
    """The scenario's own correction when the question is one of its items (or their rewordings)."""
    for item in scenario.items:
        if asked.strip().lower() in [q.lower() for q in (item.question, *item.paraphrases)]:
            return item.answer
    return ""


def show_answer(arm: str, result) -> None:
    if isinstance(result, str):  # why this arm did not run, in the app's words
        st.info(result)
        if "adapter" in result:
            ui.page_link("pages/4_Learning.py", "Open the Learning page", icon=":material/school:")
        return
    st.container(key=key(f"reply-{arm}")).markdown(result.answer or "*(empty reply)*")
    st.caption(f"{result.prompt_tokens} prompt tokens · {result.completion_tokens} reply tokens · "
               f"{result.latency_ms:.0f} ms" + (f" (retrieval {result.retrieval_ms:.0f} ms)" if result.hits else ""))
    if result.cached:
        st.caption(":material/cached: From the class's reply cache: someone already asked exactly this prompt "
                   "with these weights. Greedy decoding is deterministic, so generating it again would give "
                   "the very same reply.")
    if arm in ("memory", "both"):
        if result.hits:
            st.markdown("**Notes put in the prompt**  \n" + "  \n".join(
                f"{':material/push_pin: ' if hit.pinned else ''}[{hit.id}] {hit.text} · "
                f"{'pinned, ' if hit.pinned else ''}score {hit.score:.2f} · {result.note_tokens.get(hit.id, 0)} tokens"
                for hit in result.hits))
        else:
            st.caption("No note scored above the threshold: the prompt is the same as the base arm's.")
    if arm in ("learned", "both") and result.adapter:
        st.caption(f"adapter: {lab.adapters.active_name() or result.adapter}")
    with st.expander("exact prompt (chat template)"):
        st.code(result.prompt, language=None)


if st.button("Ask", type="primary", key=key("ask")):
    st.session_state[key("asked")] = question
    st.session_state[key("answers")] = {}
    st.session_state.pop(key("why"), None)
    st.session_state.pop(key("notice"), None)
    st.session_state[key("correction_box")] = suggested_correction(question)

answers = st.session_state.get(key("answers"))
if answers is not None:
    columns = dict(zip(ARMS, st.columns(4)))
    for arm in ARMS:
        with columns[arm], st.container(key=key(f"arm-{arm}")):
            st.subheader(arm)
            body = st.empty()
            if arm not in answers:  # asked on this run: stream it
                if arm in ("learned", "both") and not lab.adapters.active():
                    answers[arm] = (f"No adapter is active yet, so the {arm} arm has no trained weights to use. "
                                    "Train one on the Learning page.")
                else:
                    streamed = []

                    def on_token(piece, body=body, streamed=streamed):
                        streamed.append(piece)
                        body.markdown("".join(streamed))

                    try:
                        answers[arm] = lab.agent.answer(st.session_state[key("asked")], arm, k=settings.k,
                                                        min_score=settings.threshold, on_token=on_token,
                                                        on_wait=lambda place, body=body: body.info(
                                                            place.describe(), icon=":material/hourglass_top:"))
                    except LabError as error:
                        answers[arm] = error.app_message
            with body.container():
                show_answer(arm, answers[arm])
    asked_arms = {arm: result for arm, result in answers.items() if not isinstance(result, str)}
    if "base" in asked_arms and len(asked_arms) > 1:
        # What memory costs, in the model's own tokens: retrieved notes when they match, pinned ones always.
        base_tokens = asked_arms["base"].prompt_tokens

        def cost(arm: str, result) -> str:
            extra = result.prompt_tokens - base_tokens
            if not extra:
                return f"{arm} {result.prompt_tokens}"
            pinned_part = f", {result.pinned_tokens} of them pinned" if result.pinned_tokens else ""
            return f"{arm} {result.prompt_tokens} (+{extra}{pinned_part})"

        st.caption("Prompt tokens per arm: " + " · ".join(cost(arm, result) for arm, result in asked_arms.items())
                   + ". An adapter adds none: what it learned is in the weights.")
    st.caption(f"Asked: “{st.session_state[key('asked')]}”. The answers stay here until the next *Ask*.")

memory_answer = (answers or {}).get("memory")
if memory_answer is not None and not isinstance(memory_answer, str) and memory_answer.hits:
    if st.button("Why? Which memory changed the answer?", key=key("why_button")):
        try:
            with st.spinner("answering again with each memory left out in turn…"):
                st.session_state[key("why")] = explain(lab.agent, st.session_state[key("asked")], k=settings.k,
                                                       min_score=settings.threshold)
        except LabError as error:
            ui.show_error(error)
why = st.session_state.get(key("why"))
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

if answers is not None:
    st.divider()
    st.subheader("Correct this")
    if st.session_state.get(key("correction_box")):
        st.caption("Filled in from the scenario's own answer. Edit it if you like, then remember it.")
    correction = st.text_input("The right answer, as a full sentence", key=key("correction_box"))
    if st.button("Remember the correction", key=key("remember")):
        if not correction.strip():
            st.session_state[key("notice")] = ("error", "Type the right answer first, as a full sentence.")
        else:
            try:
                started = time.perf_counter()
                memory = lab.memory.add(correction, question=st.session_state[key("asked")], answer=correction,
                                        unique=True)
                took_ms = (time.perf_counter() - started) * 1000
                st.session_state[key("notice")] = (
                    "success", f"Remembered [{memory.id}] in {took_ms:.0f} ms (embedded, indexed, saved). Ask "
                               "again to see the memory arm use it; the model's weights did not change.")
            except LabError as error:
                st.session_state[key("notice")] = ("error", error.app_message)
    if notice := st.session_state.get(key("notice")):
        kind, text = notice
        (st.success if kind == "success" else st.error)(text)
