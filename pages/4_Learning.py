"""Learning: train an adapter on the corrections, watch it learn, compare the costs."""

import time

import plotly.graph_objects as go
import streamlit as st

import ui
from lab import training_pace
from lab.consolidation import DEFAULT_METHOD, DISTILL_STEPS, REPLAY_STEPS, default_steps
from lab.costs import recent_remember_timing
from lab.errors import LabError
from lab.jobs import ConsolidationJob, TrainingJob, preparation
from lab.learning import TrainingConfig
from lab.merge import make_permanent
from lab.pinned import note_tokens
from lab.plural import plural
from lab.scenario import bundled_names, load_scenario
from lab.staging import CandidateRule, duration, standings

TRAINED_ON = {"memory": "your memory"}

st.set_page_config(page_title="Learning · Memory vs Learning Lab", layout="wide")
st.title("Learning")
st.caption("Consolidate corrections into the weights: a LoRA adapter trained on this CPU.")
key = ui.keys("learning")
lab = ui.session()
teacher = ui.teacher_mode()

METHODS = {"sft": "the answers (fine-tuning on each correction's answer)",
           "distill": "what the notes did (distillation: the model's reply with the notes in its prompt)"}
source = st.radio("Train on", ["my memory", "a scenario"], horizontal=True, key=key("source"))
method = st.radio("Learn", list(METHODS), index=list(METHODS).index(DEFAULT_METHOD), format_func=METHODS.get,
                  horizontal=True, key=key("method"),
                  help="Fine-tuning learns the words of each answer. Distillation asks the frozen model each "
                       "question with its notes in the prompt, then trains the adapter to give that reply without "
                       "them: it learns what memory did, pinned rules included.")
scenario_name = (st.selectbox("Scenario", bundled_names(), key=key("scenario"))
                 if source == "a scenario" else None)
left, right = st.columns(2)
# Each method brings its own default (distillation needs about twice SFT's steps); the key
# carries the method, so switching method resets the slider to that method's default.
steps = left.slider("training steps", 5, 200, default_steps(method), 5, key=key(f"steps-{method}"),
                    help="How many small weight updates to make. More steps learn the corrections harder "
                         "and can disturb more of what the model knew.")
rank, top_layers = TrainingConfig.rank, TrainingConfig.top_layers
learning_rate, paraphrases = TrainingConfig.learning_rate, False
# Replay and the learning rate stay in teacher mode: the forgetting exercise asks for them.
# A short label: a long one is cut off in the half-width column ("while lea…"); the help says the rest.
replay = right.checkbox("replay general knowledge", value=TrainingConfig.replay, key=key("replay"),
                        help="Holds the base model's own answers to general questions while learning: they are "
                             "mixed into the training, so training the corrections in forgets less of what it "
                             "knew. Only the words that hold each answer are replayed (“green” in “Grass is "
                             "green.”), not the wording, so a habit you teach (a sign-off, a voice) still takes: "
                             "replaying whole replies had taught the plain wording back. On by default (it "
                             "measured best on facts and habits); untick it to see forgetting.")
learning_rate = right.select_slider(
    "learning rate", [5e-4, 1e-3, 2e-3, 3e-3, 5e-3], TrainingConfig.learning_rate, key=key("lr"),
    help="How big each update is. Higher learns faster and forgets more.")
if not teacher:  # the measured defaults for a class; the knobs for exploring alone
    rank = left.select_slider("LoRA rank", [2, 4, 8, 16, 32], TrainingConfig.rank, key=key("rank"),
                              help="The size of the adapter: how many directions each adapted weight matrix "
                                   "may change in. Bigger holds more, trains slower and takes more disk.")
    top_layers = right.slider("layers adapted (from the top)", 1, 30, TrainingConfig.top_layers, key=key("layers"),
                              help="The model has 30 layers; only the top ones get an adapter. Fewer is faster.")
    paraphrases = left.checkbox("also train on paraphrases (scenarios)", key=key("paraphrases"),
                                help="Adds each scenario item's rewordings to the training set.")
if method == "distill" and steps < DISTILL_STEPS:
    left.caption(f"Distillation learns a softer target than the answers' own words: about {DISTILL_STEPS} steps "
                 "reach 0.9 of the memory arm's reliability (measured on five sets; 80 steps, on two of them).")
if replay and steps < REPLAY_STEPS:
    right.caption(f"Replay shares the steps with your corrections: about {REPLAY_STEPS} steps learn them "
                  f"all (measured on acme; at 40, 13 of 20).")
name = st.text_input("Adapter name", value=scenario_name or "from-memory", key=key(f"name-{scenario_name}"))
existing = name.strip() in [a.name for a in lab.adapters.list()]
overwrite = True
if existing:
    overwrite = st.checkbox(f"Replace the existing adapter **{name.strip()}**", key=key(f"replace-{name.strip()}"),
                            help="Training under an existing name overwrites it. Tick to confirm, or pick a new name.")


def estimate_caption(config: TrainingConfig, scenario, memories=None) -> str:
    """How long this training should take here, from the pace measured on this server's own
    trainings (lab/training_pace.py), with the base model's answers it prepares first."""
    pace = training_pace.current()
    try:
        prepared = preparation(lab, method=method, config=config, scenario=scenario, memories=memories)
    except LabError:
        prepared = None
    train_s = pace.training_s(config.steps)
    prepare_s = pace.preparing_s(prepared.new) if prepared else 0.0
    source = ("measured on this server's trainings" if pace.steps_measured
              else "a first guess: no training has been timed on this server yet")
    text = (f"About {train_s + prepare_s:.0f} s on this server: {config.steps} steps at {pace.seconds_per_step:.2f} s "
            f"each and {pace.other_s:.0f} s loading the base model and saving the adapter ({source})")
    if prepared and prepared.new:
        text += (f", after about {prepare_s:.0f} s for the base model's {prepared.new} new answers to the "
                 f"{prepared.what}")
    elif prepared and prepared.answers:
        text += f"; the base model's answers to the {prepared.what} are already in the class's reply cache"
    return text + ". Trainings run one at a time, so one already running comes first."


# A reload is a new session: the training it started is found again by workspace (lab.jobs.BOARD).
job: TrainingJob | None = ui.kept_job(lab, key("job"))
ui.model_queue_notice(lab)
try:
    train_config = TrainingConfig(steps=steps, rank=rank, alpha=2.0 * rank, learning_rate=learning_rate,
                                  top_layers=top_layers, paraphrases=paraphrases, replay=replay).validate()
except LabError as error:
    train_config = None
    ui.show_error(error)
if train_config is not None:
    st.caption(estimate_caption(train_config, load_scenario(scenario_name) if scenario_name else None))
if st.button("Train", type="primary", disabled=bool(job and not job.finished) or not overwrite or not train_config,
             key=key("train")):
    try:
        scenario = load_scenario(scenario_name) if scenario_name else None
        st.session_state[key("job")] = job = TrainingJob(lab, name=name.strip(), scenario=scenario, config=train_config,
                                                         method=method, slot=key("job")).start()
        st.session_state.pop(key("job_shown"), None)
        st.rerun()  # drawn again with Train disabled: a second click must not start a second training
    except LabError as error:
        ui.show_error(error)


def progress_panel():
    job = st.session_state.get(key("job"))
    if job is None:
        return
    if not job.finished:  # after a reload the widgets above are back at their defaults: say what runs
        st.markdown(f"Training **{job.name}** on {f'the {job.scenario.name} scenario' if job.scenario else 'your memory'}"
                    f", {job.config.steps} steps ({METHODS[job.method].split(' (')[0]}):")
    ui.training_progress(job, key)  # preparing, queued (place, expected start), training; Cancel throughout
    if job.progress:
        figure = go.Figure(go.Scatter(x=[p.step for p in job.progress], y=[p.loss for p in job.progress],
                                      mode="lines+markers"))
        figure.update_layout(xaxis_title="step", yaxis_title="loss", height=280, margin=dict(t=10))
        st.plotly_chart(figure, width="stretch", key=key("loss"))
    if job.state == "done":
        result = job.result
        reuse = (f", once: the same training (same data, settings and seed) had been done on this server "
                 f"before, so it was reused here in {result.seconds:.1f} s" if result.reused else "")
        st.success(f"Adapter {result.name!r} trained in {result.training_seconds:.1f} s{reuse}, and activated. "
                   "Now wipe the memory and ask again.")
    elif job.finished:
        st.warning(job.error)
    if job.finished and st.session_state.get(key("job_shown")) is not job:
        # Shown: a reload need not find it again. The Train button, the list, the costs and the
        # sidebar were drawn while it ran: redraw the whole page once.
        job.reported = True
        st.session_state[key("job_shown")] = job
        st.rerun(scope="app")


# Polls only while a training runs: a fragment that reruns every second for every visitor
# would keep thirty students' sessions busy (and read as page runs to the browser tests).
ui.poll_while(bool(job and not job.finished))(progress_panel)()

# ---- consolidate: memories that proved themselves become weights, and their notes retire ----------
st.subheader("Consolidate what proved itself")
st.caption("Memory is the staging ground. A note that was sent into many answers, changed an answer when *Why?* "
           "left it out, and has not been edited lately has proved itself: train it into an adapter, check the "
           "adapter answers without the note, then retire the note so every prompt gets shorter.")
RULE = CandidateRule()
st.caption(f"The rule: sent into at least {RULE.min_retrievals} answers, decisive at least {RULE.min_decisive} "
           f"time{'s' if RULE.min_decisive != 1 else ''} when *Why?* left it out, unchanged for "
           f"{duration(RULE.min_age_days)}, and a question to train and check it on (a pinned rule needs none). "
           "Each memory's counts are in its row.")
stored = lab.memory.list()
standing = {s.memory.id: s for s in standings(lab.memory, RULE)}
proven = {i for i, s in standing.items() if s.candidate}
show_all = st.toggle("Show every memory, not only the candidates", key=key("consolidate_all"),
                     value=not proven and bool(stored))
shown = [m for m in stored if show_all or m.id in proven]


def why_row(s) -> str:
    """Why a memory is, or is not yet, a candidate; what becomes of a pinned rule."""
    if s.candidate:
        text = "candidate: meets every test"
    else:
        text = "not yet: needs " + s.lacks()
    if s.memory.pinned and not s.memory.question:
        text += " · a pinned rule is distilled on general questions and never retired (no question to check it by)"
    return text


picked_ids: list[int] = []
if not shown:
    st.info("No memory has proved itself yet: ask questions the memory answers on the Playground, and press "
            "*Why?* to see which notes are decisive. Or show every memory above.")
else:
    table = st.data_editor(
        [{"train": m.id in proven, "id": m.id, "kind": "pinned" if m.pinned else "retrieved", "text": m.text,
          "sent": standing[m.id].sent, "decisive": standing[m.id].decisive, "unchanged for": standing[m.id].unchanged,
          "why": why_row(standing[m.id])} for m in shown],
        column_config={"train": st.column_config.CheckboxColumn(help="consolidate this memory"),
                       "text": st.column_config.TextColumn(width="large"),
                       "sent": st.column_config.TextColumn(help="answers it was sent into, of the rule's minimum"),
                       "decisive": st.column_config.TextColumn(
                           help="times *Why?* left it out and the answer changed, of the rule's minimum; "
                                "tested: how often *Why?* tried"),
                       "unchanged for": st.column_config.TextColumn(
                           help="time since it was written or last edited, of the rule's minimum"),
                       "why": st.column_config.TextColumn(width="large")},
        disabled=["id", "kind", "text", "sent", "decisive", "unchanged for", "why"], hide_index=True,
        width="stretch", key=key("consolidate_pick"))
    picked_ids = [row["id"] for row in table if row["train"]]
c_left, c_right = st.columns(2)
c_name = c_left.text_input("Name of the consolidated adapter", value="consolidated", key=key("consolidate_name"))
c_retire = c_right.checkbox("Retire the notes the adapter verifies", value=True, key=key("consolidate_retire"),
                            help="Verified notes leave the memory (Undo on the Memory page brings them back): "
                                 "the answers stay, in the weights, and the prompts get shorter.")
c_job: ConsolidationJob | None = ui.kept_job(lab, key("consolidate_job"))
if picked_ids and train_config is not None:
    chosen_now = [m for m in stored if m.id in picked_ids]
    st.caption(estimate_caption(TrainingConfig(steps=steps, replay=replay), None, chosen_now))
if st.button(f"Consolidate {len(picked_ids)} memor{'y' if len(picked_ids) == 1 else 'ies'}", key=key("consolidate"),
             disabled=not picked_ids or bool(c_job and not c_job.finished)):
    try:
        chosen = [m for m in stored if m.id in picked_ids]
        config = TrainingConfig(steps=steps, replay=replay).validate()
        st.session_state[key("consolidate_job")] = c_job = ConsolidationJob(
            lab, name=c_name.strip(), memories=chosen, method=method, retire=c_retire, config=config,
            slot=key("consolidate_job")).start()
        st.rerun()  # drawn again with the button disabled
    except LabError as error:
        ui.show_error(error)


def consolidation_panel():
    job = st.session_state.get(key("consolidate_job"))
    if job is None:
        return
    ui.training_progress(job, lambda name: key(f"consolidate_{name}"))  # its own Cancel beside the training's
    if job.state == "done":
        report = job.report
        verified = report["verified"]
        st.success(f"Adapter **{report['name']}** ({report['method']}) trained on "
                   f"{plural(len(report['trained_on']), 'memory')}; verified without notes: reliability "
                   f"{verified['reliability']}, locality {verified['locality']}; retired {len(report['retired'])}.")
        before_col, after_col, saved_col = st.columns(3)
        before_col.metric("memory-arm prompt tokens before", report["prompt_tokens_before"],
                          help="the memory arm's prompt for the consolidated memories' questions, averaged, "
                               "before retiring")
        after_col.metric("after", report["prompt_tokens_after"],
                         help="the same questions' prompts with the memory as it is now")
        saved_col.metric("saved per answer", round(report["prompt_tokens_before"] - report["prompt_tokens_after"], 1))
        if note := report.get("prompt_tokens_note"):
            st.caption(note)
        st.dataframe([{"id": a["id"], "question": a["question"], "adapter, no notes": a["reply"],
                       "verified": "✔" if a["verified"] else "✖ kept in memory"} for a in report["answers"]],
                     hide_index=True, width="stretch")
        for kept in report.get("unverifiable", []):
            st.info(f"Memory [{kept['id']}] *{kept['text']}* was trained on and stays in memory: {kept['why']}",
                    icon=":material/push_pin:")
    elif job.finished:
        st.warning(job.error)
    if job.finished and st.session_state.get(key("consolidate_shown")) is not job:
        job.reported = True  # shown; the rest of the page was drawn while it ran: redraw it once
        st.session_state[key("consolidate_shown")] = job
        st.rerun(scope="app")


ui.poll_while(bool(c_job and not c_job.finished))(consolidation_panel)()

st.subheader("Adapters")
for info in lab.adapters.list():
    cols = st.columns([3, 1, 1, 1])
    meta = info.meta
    cols[0].write(f"{':material/check_circle: active · ' if info.active else ''}**{info.name}** · "
                  f"{info.to_json()['size_bytes'] / 1e6:.1f} MB · "
                  f"{'reused an identical training, ' if meta.get('reused') else ''}"
                  f"trained in {meta.get('seconds', '?')} s on "
                  f"{TRAINED_ON.get(meta.get('source'), str(meta.get('source', '?')).replace('scenario:', 'scenario '))}")
    if cols[1].button("Activate", key=key(f"activate-{info.name}"), disabled=info.active):
        lab.adapters.activate(info.name)
        st.rerun()
    if cols[2].button("Delete", key=key(f"delete-{info.name}")):
        lab.adapters.delete(info.name)
        st.rerun()
    merged = info.path.parent / "merged.gguf"
    if cols[3].button("Make permanent", key=key(f"permanent-{info.name}"),
                      help="merge the adapter into a new standalone model file: no adapter, no memory, "
                           "nothing left to wipe or switch off"):
        try:
            with st.spinner("merging the adapter into the weights…"):
                made = make_permanent(lab, info.name)
            st.success(f"Wrote a standalone model ({made['size_bytes'] / 1e6:.0f} MB, {made['seconds']:.1f} s).")
        except LabError as error:
            ui.show_error(error)
    if merged.exists():
        st.caption(f"Permanent copy of **{info.name}**: `{merged}`, a standalone model with the corrections in "
                   "its weights. To make it the lab's base model, start the lab with the LAB_MODEL setting "
                   "pointing at this file (see the README).")
if lab.adapters.active_name() and st.button("Deactivate", key=key("deactivate")):
    lab.adapters.deactivate()
    st.rerun()

st.subheader("What each costs")
active = lab.adapters.active()
memories = lab.memory.list()
tokens_per_memory = (sum(note_tokens(lab.engine, m.text) for m in memories) / len(memories)) if memories else None
# Measured, not quoted: a real remember of a sentence no cache holds, in a scratch store (lab/costs.py).
remember = recent_remember_timing(lab.memory.embedder)
remember_ms = remember["ms"]
cost = st.columns(4)
cost[0].metric("to remember one correction", f"{remember_ms:.1f} ms" if remember_ms < 10 else f"{remember_ms:.0f} ms",
               help=f"measured at {time.strftime('%H:%M:%S', time.localtime(remember['at']))}: a new sentence "
                    "embedded, added to the index and saved (SQLite and the index file), in a scratch store "
                    "that is removed afterwards")
cost[1].metric("to train the active adapter", f"{active.meta.get('seconds', 0):.0f} s" if active else "—")
cost[2].metric("active adapter on disk", f"{active.to_json()['size_bytes'] / 1e6:.1f} MB" if active else "—",
               help="the memory store grows by about 2 KB per note instead")
cost[3].metric("prompt tokens a memory adds", f"{tokens_per_memory:.0f} per note" if tokens_per_memory else "—",
               help="what a note adds to a prompt when sent, formatting included (the Memory page's figure), "
                    "averaged over your memories; an adapter adds none")
