"""Playground: one question, four arms side by side."""

import time
from pathlib import Path

import streamlit as st

import ui
from lab.agent import ARMS, validate_question
from lab.attribution import explain
from lab.errors import LabError
from lab.plural import plural
from lab.scenario import bundled_names, load_scenario

ASKED_SHOWN = 300  # characters of the question echoed under the answers

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


def no_adapter(arm: str) -> str:
    return (f"No adapter is active yet, so the “{arm}” arm has no trained weights to use. "
            "Train one on the Learning page.")


def adapter_name(result) -> str:
    """The adapter an answer was generated with, by its registry name (the folder it lives in)."""
    return Path(result.adapter).parent.name


def ago(seconds: float) -> str:
    """ago(0.42) -> '0.4 s'; ago(75) -> '1 min'; ago(7300) -> '2 h'"""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.0f} h"


def cache_note(arm: str, result) -> str | None:
    """Where a cached reply came from, said as plainly as this page knows it. The page keeps
    the exact prompts it sent (with the adapter) and when: on a first Ask with no note to
    retrieve, the memory arm's prompt *is* the base arm's, sent a moment earlier, and "someone
    already asked" hid that. Call it before recording this arm's own prompt."""
    if not result.cached:
        return None
    senders = st.session_state.get(key("sent"), {}).get(sent_key(result), {})
    if not senders:
        who = "someone in the class (or an evaluation) already sent this exact prompt with these weights"
    else:
        # The same arm asked before if it did (the base arm's prompt never changes); else the latest other arm.
        sender = arm if arm in senders else max(senders, key=senders.get)
        who = f"the {sender} arm sent this exact prompt{' with the same adapter' if result.adapter else ''} " \
              f"{ago(max(0.0, time.time() - senders[sender]))} ago"
    return (f":material/cached: From the class's reply cache: {who}. Greedy decoding is deterministic, so "
            "generating it again would give the very same reply.")


def sent_key(result) -> tuple:
    """The exact prompt and weights: an adapter retrained under the same name is a new file."""
    weights = Path(result.adapter).stat().st_mtime_ns if result.adapter and Path(result.adapter).exists() else None
    return result.prompt, result.adapter, weights


def record_sent(arm: str, result) -> None:
    sent = st.session_state.setdefault(key("sent"), {})  # (prompt, adapter, its file's time) -> {arm: when}
    sent.setdefault(sent_key(result), {})[arm] = time.time()
    while len(sent) > 64:  # a long visit keeps only its recent prompts
        sent.pop(next(iter(sent)))


def show_answer(arm: str, result) -> None:
    if isinstance(result, str):  # why this arm did not run, in the app's words
        st.info(result)
        if "adapter" in result:
            ui.page_link("pages/4_Learning.py", "Open the Learning page", icon=":material/school:")
        return
    st.container(key=key(f"reply-{arm}")).markdown(ui.literal_markdown(result.answer) or "*(empty reply)*")
    st.caption(f"{result.prompt_tokens} prompt tokens · {result.completion_tokens} reply tokens · "
               f"{result.latency_ms:.0f} ms" + (f" (retrieval {result.retrieval_ms:.0f} ms)" if result.hits else ""))
    if note := st.session_state.get(key("cache_notes"), {}).get(arm):
        st.caption(note)
    if arm in ("memory", "both"):
        if result.hits:
            notes = result.notes_in_prompt
            # The prompt's own order (pinned rules first, the best match last, beside the
            # question), not the order of scores: what the model reads, as it reads it.
            best = notes[-1] if not notes[-1].pinned else None
            st.markdown("**Notes put in the prompt**, in the prompt's order  \n" + "  \n".join(
                f"{':material/push_pin: ' if hit.pinned else ''}[{hit.id}] {ui.literal_markdown(hit.text)} · "
                f"{'pinned, ' if hit.pinned else ''}score {hit.score:.2f} · {result.note_tokens.get(hit.id, 0)} tokens"
                + (" · **closest to the question** (the best match goes last)" if hit is best else "")
                for hit in notes))
        else:
            st.caption("No note scored above the threshold: the prompt is the same as the base arm's.")
    if arm in ("learned", "both") and result.adapter:
        used, active = adapter_name(result), lab.adapters.active_name()
        st.caption(f"adapter: {used}" + ("" if used == active else
                                         f" (the active adapter is now {active or 'none'}: Ask again to use it)"))


if st.button("Ask", type="primary", key=key("ask")):
    try:  # checked once here: a bad question is one line, not one refusal per arm
        asked = validate_question(question)
    except LabError as error:
        ui.show_error(error)
    else:
        st.session_state[key("asked")] = asked
        st.session_state[key("answers")] = {}
        st.session_state[key("cache_notes")] = {}
        st.session_state.pop(key("why"), None)
        st.session_state.pop(key("notice"), None)
        st.session_state[key("correction_box")] = suggested_correction(asked)

answers = st.session_state.get(key("answers"))
if answers is not None:
    columns = dict(zip(ARMS, st.columns(4)))
    for arm in ARMS:
        with columns[arm], st.container(key=key(f"arm-{arm}")):
            st.subheader(arm)
            body = st.empty()
            has_adapter = lab.adapters.active() is not None
            if answers.get(arm) == no_adapter(arm) and has_adapter:
                del answers[arm]  # one was trained or activated on another page since: answer now
            if arm not in answers:  # asked on this run: stream it
                if arm in ("learned", "both") and not has_adapter:
                    answers[arm] = no_adapter(arm)
                else:
                    streamed = []

                    def on_token(piece, body=body, streamed=streamed):
                        streamed.append(piece)
                        body.markdown(ui.literal_markdown("".join(streamed)))

                    try:
                        answers[arm] = lab.agent.answer(st.session_state[key("asked")], arm, k=settings.k,
                                                        min_score=settings.threshold, on_token=on_token,
                                                        on_wait=lambda place, body=body: body.info(
                                                            place.describe(), icon=":material/hourglass_top:"))
                    except LabError as error:
                        answers[arm] = error.app_message
                    else:
                        notes = st.session_state.setdefault(key("cache_notes"), {})
                        notes[arm] = cache_note(arm, answers[arm])
                        record_sent(arm, answers[arm])
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
    asked = st.session_state[key("asked")]
    shown = asked if len(asked) <= ASKED_SHOWN else asked[:ASKED_SHOWN].rstrip() + f"… ({len(asked)} characters)"
    st.caption(f"Asked: “{ui.literal_markdown(shown)}”. The answers stay here until the next *Ask*.")
    # The exact prompts at full width: in four narrow columns they were cut off.
    with st.expander("Exact prompts, as each arm sent them (chat template)"):
        for arm, result in [(arm, answers[arm]) for arm in ARMS if not isinstance(answers.get(arm, ""), str)]:
            st.markdown(f"**{arm}**" + (f" · adapter {adapter_name(result)}" if result.adapter else ""))
            st.code(result.prompt, language=None, wrap_lines=True)


def remember() -> None:
    correction = st.session_state.get(key("correction_box"), "")
    if not correction.strip():
        st.session_state[key("notice")] = ("error", "Type the right answer first, as a full sentence.")
        return
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
    st.markdown(f"**Without any memory:** {ui.literal_markdown(why.base_answer)}  \n"
                f"**With the memories:** {ui.literal_markdown(why.answer)}")
    for ablation in why.ablations:
        verdict = "**changed the answer**" if ablation.changed else "made no difference"
        (st.success if ablation.changed else st.info)(
            f"Leaving out [{ablation.id}] “{ui.literal_markdown(ablation.text)}” (score {ablation.score:.2f}) "
            f"{verdict}: {ui.literal_markdown(ablation.answer_without)}")
    if not why.decisive:
        st.caption("No single memory was decisive: the others carried the same information, "
                   "or the model ignored the notes.")

if answers is not None:
    st.divider()
    st.subheader("Correct this")
    if st.session_state.get(key("correction_box")):
        st.caption("Filled in from the scenario's own answer. Edit it if you like, then remember it.")
    st.text_input("The right answer, as a full sentence", key=key("correction_box"))
    # A callback: it runs before the page is drawn, so the sidebar's count already includes it.
    st.button("Remember the correction", key=key("remember"), on_click=remember)
    if notice := st.session_state.get(key("notice")):
        kind, text = notice
        # An error can quote the note ("already remembered as [1]: …"): shown as typed.
        if kind == "success":
            st.success(text)
        else:
            st.error(ui.literal_markdown(text))
