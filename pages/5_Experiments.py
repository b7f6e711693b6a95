"""Experiments: change one setting, watch every metric move, download the numbers."""

import time

import plotly.graph_objects as go
import streamlit as st

import ui
from lab import experiments
from lab.errors import LabError
from lab.experiments import EXPERIMENTS
from lab.scenario import bundled_names, load_scenario

st.set_page_config(page_title="Experiments · Memory vs Learning Lab", layout="wide")
st.title("Experiments")
st.markdown("Change **one** setting, keep everything else fixed, and measure. Runs use a scratch "
            "workspace: your own memories and adapters are left exactly as they are.")
key = ui.keys("experiments")
lab = ui.session()


def chart(rows: list[dict], x: str, columns, title: str, scores: bool) -> go.Figure:
    figure = go.Figure()
    for column in columns:
        if any(row.get(column) is not None for row in rows):  # a metric with no questions has no line
            figure.add_scatter(x=[row[x] for row in rows], y=[row.get(column) for row in rows],
                               mode="lines+markers", name=column)
    figure.update_layout(title=title, xaxis_title=x, height=330, margin=dict(t=40, b=10),
                         yaxis_range=[-0.05, 1.05] if scores else None)
    return figure


def show(run: dict) -> None:
    """One run's charts, table and downloads (keys carry the run's number: several can be on screen)."""
    experiment, rows = EXPERIMENTS[run["key"]], run["rows"]
    st.caption(experiment.guide)
    st.plotly_chart(chart(rows, experiment.x, experiment.scores, "scores (share right)", True),
                    width="stretch", key=key(f"scores-{run['id']}"))
    if experiment.costs:
        for column, cost in zip(st.columns(len(experiment.costs)), experiment.costs):
            column.plotly_chart(chart(rows, experiment.x, [cost], cost, False),
                                width="stretch", key=key(f"{cost}-{run['id']}"))
    st.dataframe(rows, hide_index=True)
    stem = f"{run['scenario']}-{run['key']}-{run['id']}"
    about = {name: run[name] for name in ("experiment", "scenario", "steps", "seconds") if run[name] is not None}
    left, right = st.columns(2)
    left.download_button("Download CSV", experiments.rows_to_csv(rows), f"{stem}.csv", "text/csv",
                         key=key(f"csv-{run['id']}"), on_click="ignore")
    right.download_button("Download JSON", experiments.rows_to_json(rows, about), f"{stem}.json",
                          "application/json", key=key(f"json-{run['id']}"), on_click="ignore")


names = bundled_names()
# The visit's scenario (acme unless a link or another page chose one): its curves climb.
scenario_name = st.selectbox("Scenario", names, index=names.index(ui.link_settings().scenario), key=key("scenario"),
                             on_change=lambda: ui.update_link(scenario=st.session_state[key("scenario")]),
                             disabled=ui.settings_locked())
experiment_key = st.radio("Experiment", list(EXPERIMENTS), format_func=lambda k: EXPERIMENTS[k].label,
               horizontal=True, key=key("experiment"))
experiment = EXPERIMENTS[experiment_key]
try:
    scenario = load_scenario(scenario_name)
except LabError as error:
    ui.show_error(error)
    st.stop()

# The key names the scenario too, so the defaults follow it (the memory curve's depend on its size).
default = ", ".join(f"{v:g}" for v in experiments.defaults(experiment_key, scenario))
values_text = st.text_input(f"Values: {experiment.values_label}", default,
                            key=key(f"values-{experiment_key}-{scenario_name}"))
steps = experiments.RANK_STEPS
if experiment_key == "rank":
    steps = st.number_input("training steps per adapter", 1, 1000, experiments.RANK_STEPS, key=key("rank_steps"))

try:
    values = experiments.values_from_text(experiment_key, scenario, values_text)
    estimate = experiments.estimate_seconds(experiment_key, scenario, values, steps=steps)
    if experiment.trains:  # say it before the button: a student should know what they are starting
        st.warning(f"This trains {experiments.adapters_trained(experiment_key, values)} adapter(s) on the CPU: expect "
                   f"roughly {max(1, round(estimate / 60))} minute(s), more while others use the machine. "
                   "Fewer values or fewer steps are quicker.")
    else:
        st.caption(f"No training, only questions: roughly {max(10, round(estimate, -1)):.0f} s.")
except LabError as error:
    values = None
    ui.show_error(error)

runs = st.session_state.setdefault(key("runs"), [])
ui.model_queue_notice(lab)
if st.button("Run", type="primary", key=key("run"), disabled=values is None):
    progress = st.progress(0.0, text="measuring the first point…")
    live = st.empty()
    done: list[dict] = []

    def on_point(row: dict) -> None:
        done.append(row)
        progress.progress(min(1.0, len(done) / len(values)),
                          text=f"measured {experiment.x} = {row[experiment.x]} ({len(done)}/{len(values)})")
        with live.container():  # the chart and table so far, redrawn as each point comes in
            st.plotly_chart(chart(done, experiment.x, experiment.scores, "scores so far", True),
                            key=key(f"live-{len(done)}"))
            st.dataframe(done, hide_index=True)

    try:
        start = time.perf_counter()
        rows = experiments.run(experiment_key, lab, scenario, values, steps=steps, on_point=on_point)
        runs.append({"id": len(runs) + 1, "key": experiment_key, "experiment": experiment.label, "scenario": scenario_name,
                     "steps": steps if experiment_key == "rank" else None, "rows": rows,
                     "seconds": round(time.perf_counter() - start, 1)})
    except LabError as error:
        ui.show_error(error)
    progress.empty()
    live.empty()

if runs:
    latest = runs[-1]
    st.subheader(f"Run {latest['id']}: {latest['experiment']} on {latest['scenario']} "
                 f"({latest['seconds']:.0f} s)")
    show(latest)
    for earlier in reversed(runs[:-1]):  # kept so a student can compare settings and scenarios
        with st.expander(f"Run {earlier['id']}: {earlier['experiment']} on {earlier['scenario']}"):
            show(earlier)
    if st.button("Clear the results", key=key("clear")):
        runs.clear()
        st.rerun()
