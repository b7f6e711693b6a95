"""Wipe Test: predict, run, wipe, run again, reveal."""

import plotly.graph_objects as go
import streamlit as st

import ui
from lab.errors import LabError
from lab.evaluate import wipe_test
from lab.scenario import bundled_names, load_scenario

st.set_page_config(page_title="Wipe Test · Memory vs Learning Lab", layout="wide")
st.title("The wipe test")
st.markdown("Memory and learning both fix the answers. **Predict first:** after the memory is wiped, "
            "which arm keeps its improvement?")
lab = ui.session()
names = bundled_names()
scenario_name = st.selectbox("Scenario", names, index=names.index(st.query_params.get("scenario", "acme"))
                             if st.query_params.get("scenario", "acme") in names else 0)
prediction = {arm: st.radio(f"After the wipe, the **{arm}** arm…", ["keeps it", "loses it"], key=f"p-{arm}",
                            horizontal=True) for arm in ("memory", "learned")}
arms = ["base", "memory"] + (["learned", "both"] if lab.adapters.active() else [])
if len(arms) == 2:
    st.info("No adapter is active, so only base and memory run. Train one on the Learning page "
            "or with: python -m lab train --scenario acme --name acme")

if st.button("Run the wipe test", type="primary"):
    try:
        with st.spinner("remembering, evaluating, wiping, evaluating again…"):
            st.session_state["wipe"] = wipe_test(lab, load_scenario(scenario_name), arms)
    except LabError as error:
        ui.show_error(error)

report = st.session_state.get("wipe")
if report:
    figure = go.Figure()
    for phase in ("before", "after"):
        figure.add_bar(name=f"{phase} the wipe", x=list(report[phase]),
                       y=[report[phase][arm]["reliability"] for arm in report[phase]])
    figure.update_layout(barmode="group", yaxis_title="reliability", yaxis_range=[0, 1])
    st.plotly_chart(figure, use_container_width=True)
    for arm, guess in prediction.items():
        if arm in report["survived"]:
            kept = report["survived"][arm]["reliability"]
            truth = "keeps it" if kept else "loses it"
            (st.success if truth == guess else st.warning)(f"{arm}: you said it {guess}; it {truth}.")
    st.caption(f"{report['seconds']:.0f} s, training excluded")
