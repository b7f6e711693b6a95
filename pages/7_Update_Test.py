"""Update Test: the facts change. Memory is edited in place; the adapter must be retrained."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import ui
from lab.errors import LabError
from lab.update_test import (PHASE_TITLES, PHASES, STAGE_TEXT, UpdateTestJob, adapter_names, adapters_left_text,
                             headline, update_scenarios)
from lab.scenario import load_scenario

st.set_page_config(page_title="Update Test · Memory vs Learning Lab", layout="wide")
key = ui.keys("update_test")
st.title("The update test: a fact changes")
st.markdown("Prices go up, managers leave, opening hours move. A note in memory is **edited in place** and "
            "the next answer uses it; an adapter holds the old fact in its weights until it is **retrained**. "
            "The test remembers the old facts and trains an adapter on them, asks every arm, changes the facts, "
            "asks again, then retrains and asks a last time.")
lab = ui.session()
settings = ui.link_settings()
teacher = ui.teacher_mode()

names = update_scenarios()
if settings.scenario in names:
    index = names.index(settings.scenario)
else:
    index = 0
    st.caption(f"The link's scenario, {settings.scenario}, has no facts that change, so this page uses "
               f"{names[0]}.")
scenario_name = st.selectbox("Scenario (facts that change)", names, index=index, key=key("scenario_box"),
                             on_change=lambda: ui.update_link(scenario=st.session_state[key("scenario_box")]),
                             disabled=ui.settings_locked())
scenario = load_scenario(scenario_name)
old_name, new_name = adapter_names(scenario)
st.caption(f"{scenario.description} The test uses a scratch memory; your own memories are set aside meanwhile "
           f"and given back untouched, and your active adapter stays active. It leaves its two adapters in your "
           f"list, **{old_name}** and **{new_name}** (replaced on every run, never activated), so you can ask them "
           "yourself afterwards.")
with st.expander(f"The {len(scenario.items)} facts, before and after"):
    st.dataframe(pd.DataFrame([{"question": i.question, "before": i.answer, "after": i.update.answer}
                               for i in scenario.items]), hide_index=True, width="stretch")

job = st.session_state.get(key("job"))
running = bool(job and not job.finished)
ui.model_queue_notice(lab)
if st.button("Run the update test", type="primary", disabled=running, key=key("run")):
    try:
        st.session_state[key("job")] = UpdateTestJob(lab, scenario).start()
        st.session_state.pop(key("job_shown"), None)
        st.rerun()  # drawn again with the button disabled and the progress polling
    except LabError as error:
        ui.show_error(error)

COLOURS = {"current": "#54a24b", "stale": "#e45756"}
SHORT = {"before": "before", "after_update": "updated", "after_retrain": "retrained"}  # the charts' phase labels


def draw_charts(phases: dict, tag: str) -> None:
    """Per arm: the share of replies giving the new value (current) and the old one (stale), by phase."""
    arms = [arm for arm in phases.get("before", {})]
    if not arms:
        return
    for column, arm in zip(st.columns(len(arms)), arms):
        figure = go.Figure()
        shown = [p for p in PHASES if arm in phases.get(p, {})]
        for measure, label in (("current", "new value"), ("stale", "old value")):
            figure.add_bar(name=label, x=[SHORT[p] for p in shown], marker_color=COLOURS[measure],
                           y=[phases[p][arm][measure] for p in shown])
        figure.update_layout(title=arm, barmode="group", yaxis_range=[0, 1], height=320, yaxis_tickformat=".0%",
                             xaxis=dict(tickangle=0, categoryorder="array", categoryarray=list(SHORT.values())),
                             margin=dict(t=70, b=10), legend=dict(orientation="h", y=1.02, yanchor="bottom"))
        column.plotly_chart(figure, width="stretch", key=key(f"chart-{tag}-{arm}"))


def progress_panel():
    job = st.session_state.get(key("job"))
    if job is None or st.session_state.get(key("job_shown")) is job:
        return
    if not job.finished:
        done = sum(len(arms) for arms in job.partial.values())
        total = len(PHASES) * len(job.arms)
        where = STAGE_TEXT.get(job.stage, job.stage)
        if job.running_arm and job.stage in PHASES:
            where += f": the **{job.running_arm[1]}** arm"
        st.progress(done / total, text=f"{where} ({done} of {total} measured)")
        if job.training is not None and not job.training.finished:
            ui.training_progress(job.training, key)  # its place in the training queue, or its steps; Cancel
        else:
            if job.waiting:
                st.info(job.waiting, icon=":material/hourglass_top:")
            if st.button("Cancel the update test", key=key("cancel_test")):
                job.cancel()
        draw_charts(job.partial, "live")
        return
    st.session_state[key("job_shown")] = job
    if job.stage == "done":
        st.session_state[key("report")], st.session_state[key("details")] = job.report, job.details
        st.rerun(scope="app")  # the results below are drawn by the whole page
    elif job.stage == "cancelled":
        st.info(job.error, icon=":material/cancel:")
    else:
        st.warning(job.error, icon=":material/error:")


# Polls only while the test runs (see ui.poll_while): an idle page costs nobody anything.
ui.poll_while(running)(progress_panel)()

report = st.session_state.get(key("report"))
if report and report["scenario"] == scenario.name:
    details = st.session_state.get(key("details")) or {}
    st.subheader("What each arm said")
    st.markdown(headline(report))
    cost = st.columns(3)
    cost[0].metric("editing memory", f"{report['update_ms']:.0f} ms",
                   help=f"all {len(scenario.items)} memories rewritten and re-embedded, timed")
    if report["retrain_s"] is not None:
        cost[1].metric("retraining the adapter", f"{report['retrain_s']:.0f} s",
                       help=f"{details.get('steps', '?')} steps on the new facts")
        cost[2].metric("retraining takes", f"{report['retrain_s'] * 1000 / max(report['update_ms'], 0.1):,.0f}× longer")
        if (details.get("reused") or {}).get("new"):
            st.caption(f":material/cached: This server had already done the same retraining (same facts, settings "
                       f"and seed), so it was reused here in {details['retrain_wall_s']:.2f} s; "
                       f"{report['retrain_s']:.0f} s is what it took when it ran.")
    draw_charts(report, "final")
    # The two adapters stay: a teacher can activate the old one and show the stale answer live.
    listed = {a.name for a in lab.adapters.list()}
    left = [name for name in adapter_names(scenario) if name in listed]
    if left:
        with st.container(border=True):
            st.markdown(adapters_left_text(left, lab.adapters.active_name()))
            if st.button(f"Delete these {len(left)} adapters" if len(left) > 1 else "Delete this adapter",
                         key=key("delete_adapters")):
                for name in left:
                    lab.adapters.delete(name)
                st.rerun()
    rows = [{"arm": arm, "phase": PHASE_TITLES[phase], "new value (current)": report[phase][arm]["current"],
             "old value (stale)": report[phase][arm]["stale"], "reliability": report[phase][arm]["reliability"],
             "generalization": report[phase][arm]["generalization"], "locality": report[phase][arm]["locality"]}
            for arm in report["before"] for phase in PHASES]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=36 * (len(rows) + 1) + 3,
                 column_config={c: st.column_config.NumberColumn(format="%.2f") for c in rows[0] if c not in
                                ("arm", "phase")})
    st.caption("current: replies about the changed facts that give the new value · stale: those still giving the "
               "old one · reliability and generalization: the item questions and their paraphrases, against the "
               "facts as they stand in that phase · locality: unrelated questions the base got right, still "
               "right. Your memory has been given back.")
    if not teacher:
        with st.expander("raw report (JSON)"):
            st.json(report)
