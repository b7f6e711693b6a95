"""Wipe Test: predict, (train,) run, wipe, run again, reveal."""

import plotly.graph_objects as go
import streamlit as st

import ui
from lab.errors import LabError
from lab.evaluate import METRICS, wipe_test
from lab.jobs import TrainingJob
from lab.scenario import bundled_names, load_scenario

st.set_page_config(page_title="Wipe Test · Memory vs Learning Lab", layout="wide")
key = ui.keys("wipe_test")
st.title("The wipe test")
st.markdown("Memory and learning both fix the answers. **Predict first:** after the memory is wiped, "
            "which arm keeps its improvement?")
lab = ui.session()
settings = ui.link_settings()
teacher = ui.teacher_mode()
names = bundled_names()
scenario_name = st.selectbox("Scenario", names, index=names.index(settings.scenario), key=key("scenario_box"),
                             on_change=lambda: ui.update_link(scenario=st.session_state[key("scenario_box")]),
                             disabled=ui.settings_locked())
scenario = load_scenario(scenario_name)
st.caption(f"{scenario.description} The test puts this scenario's own {len(scenario.items)} corrections in a "
           "scratch memory; your own memories are set aside meanwhile and given back untouched.")


def source_text(source: str | None) -> str:
    if not source:
        return "unknown data"
    return "your memory" if source == "memory" else f"the {source.split(':', 1)[-1]} scenario"


# ---- the learned arm: which adapter it tests, and training one from here ---------------------
active = lab.adapters.active()
trained_here = bool(active and active.meta.get("source") == f"scenario:{scenario.name}")
job = ui.kept_job(lab, key("job"))  # a reload finds the training it started (lab.jobs.BOARD)
with st.container(border=True):
    if trained_here:
        st.markdown(f"The learned arms use the adapter **{active.name}**, trained on these corrections.")
    elif active:
        st.warning(f"The active adapter **{active.name}** was trained on {source_text(active.meta.get('source'))}, "
                   "not on these corrections: the learned arm will probably improve nothing here.", icon=":material/school:")
    else:
        st.info("No adapter is active, so only the base and memory arms can run. Train one on these "
                "corrections to see what learning keeps.", icon=":material/school:")
    earlier = lab.adapters.trained_on(f"scenario:{scenario.name}")
    if not trained_here and earlier:
        if st.button(f"Use the adapter {earlier.name}, trained on these corrections earlier", key=key("use")):
            lab.adapters.activate(earlier.name)
            st.rerun()
    if not trained_here:
        busy = bool(job and not job.finished)
        if st.button(f"Train the learned arm on these {len(scenario.items)} corrections first", key=key("train"),
                     disabled=busy):
            try:
                # A free name: an adapter the student trained under this name is never replaced unasked.
                name = lab.adapters.free_name(scenario.name)
                st.session_state[key("job")] = job = TrainingJob(lab, name=name, scenario=scenario,
                                                                 slot=key("job")).start()
                st.rerun()  # drawn again with the button disabled: a second click must not train twice
            except LabError as error:
                ui.show_error(error)


def training_panel():
    job = st.session_state.get(key("job"))
    if job is None or st.session_state.get(key("job_shown")) is job:
        return
    ui.training_progress(job, key)  # queued (place, expected start) or running; Cancel either way
    if job.finished:
        job.reported = True  # its outcome is shown below: a reload need not find it again
    if job.state == "done":
        st.session_state[key("job_shown")] = job
        result = job.result
        st.session_state[key("trained_notice")] = (
            f"Adapter **{result.name}** ready on these corrections in {result.seconds:.1f} s: the same training "
            f"had been done on this server before (in {result.training_seconds:.0f} s), so it was reused; it is "
            "now active." if result.reused else
            f"Trained adapter **{result.name}** on these corrections in {result.seconds:.0f} s; it is now active.")
        st.rerun(scope="app")  # the adapter box and the predictions above change
    elif job.finished:
        st.warning(job.error)


# Polls only while a training runs: a fragment that reruns every second for every visitor
# would keep thirty students' sessions busy (and read as page runs to the browser tests).
ui.poll_while(bool(job and not job.finished))(training_panel)()
if notice := st.session_state.get(key("trained_notice")):
    st.success(notice)

# ---- predict, then run --------------------------------------------------------------------------
arms = ["base", "memory"] + (["learned", "both"] if active else [])
predicted_arms = ["memory"] + (["learned"] if active else [])
prediction = {arm: st.radio(f"After the wipe, the **{arm}** arm…", ["keeps it", "loses it"],
                            key=key(f"predict_{arm}"), horizontal=True, index=None) for arm in predicted_arms}
if not active:
    st.caption("The learned arm is not in this run: it has no adapter. Train one above to predict it too.")
ready = all(guess is not None for guess in prediction.values())
if not ready:
    st.caption("Record your prediction" + (" for each arm" if len(prediction) > 1 else "") + " to unlock the run.")


def draw_charts(before: dict, after: dict, tag: str) -> None:
    shown = [m for m in METRICS if any(before.get(a, {}).get(m) is not None for a in before)]
    if not shown:
        return
    for column, metric in zip(st.columns(len(shown)), shown):
        figure = go.Figure()
        for phase, values, colour in (("before", before, "#4c78a8"), ("after", after, "#f58518")):
            figure.add_bar(name=f"{phase} the wipe", x=list(values), marker_color=colour,
                           y=[values[arm][metric] for arm in values])
        # The legend above the bars: below them it sat on the arm names and clipped them ("memorv").
        figure.update_layout(title=metric, barmode="group", yaxis_range=[0, 1], height=340,
                             margin=dict(t=80, b=10), xaxis=dict(automargin=True),
                             legend=dict(orientation="h", x=0, y=1.02, xanchor="left", yanchor="bottom"))
        column.plotly_chart(figure, width="stretch", key=key(f"chart-{tag}-{metric}"))


ui.model_queue_notice(lab)
live = st.empty()
if st.button("Run the wipe test", type="primary", disabled=not ready, key=key("run")):
    partial = {"before": {}, "after": {}}
    steps = 2 * len(arms)

    with st.status("Running the wipe test…", expanded=True) as status:
        bar = st.progress(0.0)
        waiting = st.empty()  # where this test stands while other students' requests go first

        def on_progress(phase, arm, metrics):
            waiting.empty()
            done = len(partial["before"]) + len(partial["after"])
            if metrics is None:
                where = "with the corrections in memory" if phase == "before" else "after wiping the memory"
                bar.progress(done / steps, text=f"{phase} the wipe: asking the **{arm}** arm, {where} "
                                                f"({done + 1} of {steps})")
                return
            partial[phase][arm] = metrics
            with live.container():
                draw_charts(partial["before"], partial["after"], f"live{done}")

        try:
            report = wipe_test(lab, scenario, arms, on_progress=on_progress,
                               on_wait=lambda place: waiting.info(place.describe(), icon=":material/hourglass_top:"))
            st.session_state[key("report")] = report
            st.session_state[key("prediction")] = dict(prediction)
            st.session_state[key("adapter")] = ({"name": active.name, "source": active.meta.get("source")}
                                                if active else None)
            status.update(label=f"Wipe test finished in {report['seconds']:.0f} s: the reveal is below. "
                                "Your memory has been given back.", state="complete", expanded=False)
        except LabError as error:
            status.update(label="The wipe test stopped", state="error")
            ui.show_error(error)
    live.empty()

# ---- the reveal ----------------------------------------------------------------------------------
report = st.session_state.get(key("report"))
if report and report["scenario"] == scenario.name:
    st.subheader("Reveal")
    guesses = st.session_state.get(key("prediction"), {})
    used = st.session_state.get(key("adapter"))
    for arm, guess in guesses.items():
        survived = report["survived"].get(arm)
        if survived is None:
            continue
        before = report["before"][arm]["reliability"]
        verdicts = [v for v in (survived.get("reliability"), *survived.values()) if v is not None]
        adapter_note = (f" (adapter **{used['name']}**, trained on {source_text(used['source'])})"
                        if used and arm == "learned" else "")
        if not verdicts:
            st.info(f"**{arm}**{adapter_note}: it improved nothing over the base model on these questions "
                    f"(reliability {before:.2f} before the wipe), so there was nothing to keep or lose."
                    + (" Train an adapter on these corrections above and run it again." if arm == "learned" else ""))
            continue
        truth = "keeps it" if verdicts[0] else "loses it"
        (st.success if truth == guess else st.warning)(
            f"**{arm}**{adapter_note}: you said it {guess}; it {truth} (reliability {before:.2f} before the wipe, "
            f"{report['after'][arm]['reliability']:.2f} after).")
    draw_charts(report["before"], report["after"], "final")
    if pinned := report.get("pinned"):
        with st.container(border=True):
            st.markdown(f"**The pinned way.** Agents keep rules in every prompt instead of hoping a note is "
                        f"retrieved. Here the rule *{pinned['rule']}* was pinned beside the stored examples, "
                        f"at **{pinned['pinned_tokens']} extra prompt tokens on every answer**.")
            metric = "adherence" if pinned["before"].get("adherence") is not None else "reliability"
            figure = go.Figure(go.Bar(
                x=["memory: examples retrieved", "memory: + the rule pinned", "after the wipe", "learned (after)"],
                y=[report["before"]["memory"][metric], pinned["before"][metric], pinned["after"][metric],
                   report["after"].get("learned", {}).get(metric)],
                marker_color=["#4c78a8", "#54a24b", "#f58518", "#b279a2"]))
            figure.update_layout(title=f"{metric} on held-out questions", yaxis_range=[0, 1], height=300,
                                 margin=dict(t=40, b=10))
            st.plotly_chart(figure, width="stretch", key=key("chart-pinned"))
            st.caption("A pinned memory is still memory: the wipe clears it with the rest. Whatever the 135M model "
                       "makes of a pinned instruction is measured, not assumed; `python -m lab behaviour --scenario "
                       f"{scenario.name}` compares a pinned rule with pinned worked examples too.")
    st.caption("reliability: the corrected questions · generalization: their paraphrases · locality: unrelated "
               "questions the base got right, still right · reverse: the fact asked backwards · adherence: "
               f"held-out questions for a behaviour. {report['seconds']:.0f} s, training excluded. "
               "Your memory has been given back.")
    replies = report.get("replies") or {}
    if replies.get("from_cache"):
        st.caption(f":material/cached: {replies['from_cache']} of {replies['asked']} replies came from the class's "
                   "reply cache: someone had already asked exactly these prompts with these weights, and greedy "
                   "decoding gives the same reply every time, so the lab reused them instead of generating them "
                   "again. The verdicts are the same either way.")
    if not teacher:
        with st.expander("raw report (JSON)"):
            st.json(report)
