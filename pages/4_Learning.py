"""Learning: train an adapter on the corrections, watch it learn, compare the costs."""

import time

import plotly.graph_objects as go
import streamlit as st

import ui
from lab.consolidation import REPLAY_STEPS
from lab.errors import LabError
from lab.jobs import TrainingJob
from lab.learning import TrainingConfig
from lab.merge import make_permanent
from lab.scenario import bundled_names, load_scenario

TRAINED_ON = {"memory": "your memory"}

st.set_page_config(page_title="Learning · Memory vs Learning Lab", layout="wide")
st.title("Learning")
st.caption("Consolidate corrections into the weights: a LoRA adapter trained on this CPU.")
key = ui.keys("learning")
lab = ui.session()
teacher = ui.teacher_mode()

source = st.radio("Train on", ["my memory", "a scenario"], horizontal=True, key=key("source"))
scenario_name = (st.selectbox("Scenario", bundled_names(), key=key("scenario"))
                 if source == "a scenario" else None)
left, right = st.columns(2)
steps = left.slider("training steps", 5, 200, TrainingConfig.steps, 5, key=key("steps"),
                    help="How many small weight updates to make. More steps learn the corrections harder "
                         "and can disturb more of what the model knew.")
rank, top_layers = TrainingConfig.rank, TrainingConfig.top_layers
learning_rate, paraphrases = TrainingConfig.learning_rate, False
# Replay and the learning rate stay in teacher mode: the forgetting exercise asks for them.
replay = right.checkbox("replay: hold the base model's answers to general questions while learning",
                        key=key("replay"),
                        help="Mixes in the model's own right answers to unrelated questions, so training "
                             "the corrections in forgets less of what it knew. Leave it off to see forgetting.")
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
if replay and steps < REPLAY_STEPS:
    right.caption(f"Replay shares the steps with your corrections: about {REPLAY_STEPS} steps learn them "
                  f"all (measured on acme; at 40, 13 of 20).")
name = st.text_input("Adapter name", value=scenario_name or "from-memory", key=key(f"name-{scenario_name}"))
existing = name.strip() in [a.name for a in lab.adapters.list()]
overwrite = True
if existing:
    overwrite = st.checkbox(f"Replace the existing adapter **{name.strip()}**", key=key(f"replace-{name.strip()}"),
                            help="Training under an existing name overwrites it. Tick to confirm, or pick a new name.")

job: TrainingJob | None = st.session_state.get(key("job"))
ui.model_queue_notice(lab)
if st.button("Train", type="primary", disabled=bool(job and not job.finished) or not overwrite, key=key("train")):
    try:
        config = TrainingConfig(steps=steps, rank=rank, alpha=2.0 * rank, learning_rate=learning_rate,
                                top_layers=top_layers, paraphrases=paraphrases, replay=replay).validate()
        scenario = load_scenario(scenario_name) if scenario_name else None
        st.session_state[key("job")] = job = TrainingJob(lab, name=name.strip(), scenario=scenario,
                                                         config=config).start()
        st.session_state.pop(key("job_shown"), None)
    except LabError as error:
        ui.show_error(error)


def progress_panel():
    job = st.session_state.get(key("job"))
    if job is None:
        return
    ui.training_progress(job, key)  # queued (place, expected start) or running; Cancel either way
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
        if st.session_state.get(key("job_shown")) is not job:
            # The list and the costs below were drawn before it finished: redraw the whole page once.
            st.session_state[key("job_shown")] = job
            st.rerun(scope="app")
    elif job.finished:
        st.warning(job.error)


# Polls only while a training runs: a fragment that reruns every second for every visitor
# would keep thirty students' sessions busy (and read as page runs to the browser tests).
ui.poll_while(bool(job and not job.finished))(progress_panel)()

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
tokens_per_memory = (sum(lab.engine.count_tokens(m.text) for m in memories) / len(memories)) if memories else None
# Measured here, not quoted: embedding one sentence is most of what remembering costs.
started = time.perf_counter()
lab.memory.embedder.embed_one("The refund window at Acme Corp is 45 days.")
embed_ms = (time.perf_counter() - started) * 1000
cost = st.columns(4)
cost[0].metric("to remember one correction", f"{embed_ms:.1f} ms" if embed_ms < 10 else f"{embed_ms:.0f} ms", help="embedding it, measured just now; "
               "the SQLite write and the index update add a few ms")
cost[1].metric("to train the active adapter", f"{active.meta.get('seconds', 0):.0f} s" if active else "—")
cost[2].metric("active adapter on disk", f"{active.to_json()['size_bytes'] / 1e6:.1f} MB" if active else "—",
               help="the memory store grows by about 2 KB per note instead")
cost[3].metric("prompt tokens a memory adds", f"{tokens_per_memory:.0f} per note" if tokens_per_memory else "—",
               help="every retrieved note is read by the model on every question; an adapter adds none")
