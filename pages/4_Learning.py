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

st.set_page_config(page_title="Learning · Memory vs Learning Lab", layout="wide")
st.title("Learning")
st.caption("Consolidate corrections into the weights: a LoRA adapter trained on this CPU.")
lab = ui.session()

source = st.radio("Train on", ["my memory", "a scenario"], horizontal=True)
scenario_name = st.selectbox("Scenario", bundled_names()) if source == "a scenario" else None
left, right = st.columns(2)
steps = left.slider("training steps", 5, 200, TrainingConfig.steps, 5)
rank, top_layers = TrainingConfig.rank, TrainingConfig.top_layers
learning_rate, paraphrases, replay = TrainingConfig.learning_rate, False, False
if not ui.teacher_mode():  # the measured defaults for a class; the knobs for exploring alone
    rank = left.select_slider("LoRA rank", [2, 4, 8, 16, 32], TrainingConfig.rank)
    top_layers = right.slider("layers adapted (from the top)", 1, 30, TrainingConfig.top_layers)
    learning_rate = right.select_slider("learning rate", [5e-4, 1e-3, 2e-3, 3e-3, 5e-3], TrainingConfig.learning_rate)
    paraphrases = left.checkbox("also train on paraphrases (scenarios)")
    replay = right.checkbox("replay: hold the base model's answers to general questions while learning")
    if replay and steps < REPLAY_STEPS:
        right.caption(f"Replay shares the steps with your corrections: about {REPLAY_STEPS} steps learn them "
                      f"all (measured on acme; at 40, 13 of 20).")
name = st.text_input("Adapter name", value=scenario_name or "from-memory")

job: TrainingJob | None = st.session_state.get("job")
ui.model_queue_notice(lab)
if st.button("Train", type="primary", disabled=bool(job and not job.finished)):
    try:
        config = TrainingConfig(steps=steps, rank=rank, alpha=2.0 * rank, learning_rate=learning_rate,
                                top_layers=top_layers, paraphrases=paraphrases, replay=replay).validate()
        scenario = load_scenario(scenario_name) if scenario_name else None
        st.session_state["job"] = job = TrainingJob(lab, name=name, scenario=scenario, config=config).start()
    except LabError as error:
        ui.show_error(error)


@st.fragment(run_every=1.0)
def progress_panel():
    job = st.session_state.get("job")
    if job is None:
        return
    last = job.progress[-1] if job.progress else None
    st.progress(last.step / last.steps if last else 0.0,
                text=(f"step {last.step}/{last.steps} · loss {last.loss:.3f} · {last.tokens_per_s:.0f} tokens/s · "
                      f"ETA {last.eta_s:.0f} s") if last else "loading the base model…")
    if job.progress:
        figure = go.Figure(go.Scatter(x=[p.step for p in job.progress], y=[p.loss for p in job.progress],
                                      mode="lines+markers"))
        figure.update_layout(xaxis_title="step", yaxis_title="loss", height=280, margin=dict(t=10))
        st.plotly_chart(figure, use_container_width=True)
    if not job.finished:
        if st.button("Cancel training"):
            job.cancel()
    elif job.state == "done":
        st.success(f"Adapter {job.result.name!r} trained in {job.result.seconds:.1f} s and activated. "
                   "Now wipe the memory and ask again.")
    else:
        st.warning(job.error)


progress_panel()

st.subheader("Adapters")
for info in lab.adapters.list():
    cols = st.columns([3, 1, 1, 1])
    meta = info.meta
    cols[0].write(f"{'✅ ' if info.active else ''}**{info.name}** · {info.to_json()['size_bytes'] / 1e6:.1f} MB · "
                  f"{meta.get('seconds', '?')} s · {meta.get('source', '')}")
    if cols[1].button("Activate", key=f"a-{info.name}", disabled=info.active):
        lab.adapters.activate(info.name)
        st.rerun()
    if cols[2].button("Delete", key=f"d-{info.name}"):
        lab.adapters.delete(info.name)
        st.rerun()
    merged = info.path.parent / "merged.gguf"
    if cols[3].button("Make permanent", key=f"m-{info.name}",
                      help="merge the adapter into a new standalone model file: no adapter, no memory, "
                           "nothing left to wipe or switch off"):
        try:
            with st.spinner("merging the adapter into the weights…"):
                made = make_permanent(lab, info.name)
            st.success(f"Wrote a standalone model ({made['size_bytes'] / 1e6:.0f} MB, {made['seconds']:.1f} s).")
        except LabError as error:
            ui.show_error(error)
    if merged.exists():
        st.caption(f"Permanent copy of **{info.name}**: `{merged}`. Use it as the base with "
                   f"`python -m lab ask --model {merged} \"QUESTION\"` or `LAB_MODEL={merged} bash scripts/app.sh`.")
if lab.adapters.active_name() and st.button("Deactivate"):
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
cost[0].metric("to remember one correction", f"{embed_ms:.0f} ms", help="embedding it, measured just now; "
               "the SQLite write and the index update add a few ms")
cost[1].metric("to train the active adapter", f"{active.meta.get('seconds', 0):.0f} s" if active else "—")
cost[2].metric("active adapter on disk", f"{active.to_json()['size_bytes'] / 1e6:.1f} MB" if active else "—",
               help="the memory store grows by about 2 KB per note instead")
cost[3].metric("prompt tokens a memory adds", f"{tokens_per_memory:.0f} per note" if tokens_per_memory else "—",
               help="every retrieved note is read by the model on every question; an adapter adds none")
