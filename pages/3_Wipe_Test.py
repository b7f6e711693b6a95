"""Wipe Test: predict, run, wipe, run again, reveal."""

import plotly.graph_objects as go
import streamlit as st

import ui
from lab.errors import LabError
from lab.evaluate import METRICS, wipe_test
from lab.scenario import bundled_names, load_scenario

st.set_page_config(page_title="Wipe Test · Memory vs Learning Lab", layout="wide")
st.title("The wipe test")
st.markdown("Memory and learning both fix the answers. **Predict first:** after the memory is wiped, "
            "which arm keeps its improvement?")
lab = ui.session()
link = ui.link_settings()
teacher = ui.teacher_mode()
names = bundled_names()
scenario_name = st.selectbox("Scenario", names, index=names.index(link.scenario), key="scenario")
scenario = load_scenario(scenario_name)
st.caption(scenario.description)

prediction = {arm: st.radio(f"After the wipe, the **{arm}** arm…", ["keeps it", "loses it"], key=f"p-{arm}",
                            horizontal=True, index=None) for arm in ("memory", "learned")}
arms = ["base", "memory"] + (["learned", "both"] if lab.adapters.active() else [])
if len(arms) == 2:
    st.info("No adapter is active, so only base and memory run. Train one on the Learning page "
            "or with: python -m lab train --scenario acme --name acme")
ready = prediction["memory"] is not None
if not ready:
    st.caption("Record your prediction for the memory arm to unlock the run.")
ui.model_queue_notice(lab)
if st.button("Run the wipe test", type="primary", disabled=not ready, key="run"):
    try:
        with st.spinner(f"remembering {len(scenario.items)} corrections, evaluating {len(arms)} arms, wiping, "
                        "evaluating again… (about a minute on a 2-core laptop)"):
            st.session_state["wipe"] = wipe_test(lab, scenario, arms)
            st.session_state["wipe_prediction"] = dict(prediction)
    except LabError as error:
        ui.show_error(error)

report = st.session_state.get("wipe")
if report:
    st.subheader("Reveal")
    guesses = st.session_state.get("wipe_prediction", prediction)
    for arm, guess in guesses.items():
        if arm in report["survived"] and guess:
            kept = report["survived"][arm]["reliability"]
            truth = "keeps it" if kept else "loses it"
            (st.success if truth == guess else st.warning)(f"{arm}: you said it {guess}; it {truth}.")
    shown = [m for m in METRICS if any(report["before"][a][m] is not None for a in report["before"])]
    for column, metric in zip(st.columns(len(shown)), shown):
        figure = go.Figure()
        for phase, colour in (("before", "#4c78a8"), ("after", "#f58518")):
            figure.add_bar(name=f"{phase} the wipe", x=list(report[phase]), marker_color=colour,
                           y=[report[phase][arm][metric] for arm in report[phase]])
        figure.update_layout(title=metric, barmode="group", yaxis_range=[0, 1], height=320,
                             margin=dict(t=40, b=10), legend=dict(orientation="h"))
        column.plotly_chart(figure, use_container_width=True)
    st.caption("reliability: the corrected questions · generalization: their paraphrases · locality: unrelated "
               "questions the base got right, still right · reverse: the fact asked backwards. "
               f"{report['seconds']:.0f} s, training excluded. The memory has been given back.")
    if not teacher:
        with st.expander("raw report (JSON)"):
            st.json(report)
