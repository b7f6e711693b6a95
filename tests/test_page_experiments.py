"""The Experiments page, driven by Streamlit's AppTest on the real model, embedder and memory."""

import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # pages import `ui` from the project root, as under `streamlit run`


def page(**params) -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / "5_Experiments.py"), default_timeout=600)
    app.query_params.update(params)
    return app


def test_opens_on_the_visits_scenario_acme_by_default():
    app = page().run()
    assert not app.exception and app.selectbox(key="experiments.scenario").value == "acme"


def test_k_sweep_draws_charts_a_table_and_downloads_and_leaves_the_memory_alone():
    app = page(scenario="poisoning").run()
    assert not app.exception
    assert app.selectbox(key="experiments.scenario").value == "poisoning"
    lab = app.session_state["ui.lab"]
    lab.memory.add("Our office dog is called Biscuit.")
    app.radio(key="experiments.experiment").set_value("k").run()
    assert app.text_input(key="experiments.values-k-poisoning").value == "1, 2, 3, 5"
    assert not app.warning  # no training: no minutes-long warning
    app.text_input(key="experiments.values-k-poisoning").input("1, 2")
    app.button(key="experiments.run").click().run()
    assert not app.exception and not app.error

    (run,) = app.session_state["experiments.runs"]
    assert run["key"] == "k" and run["scenario"] == "poisoning" and [r["k"] for r in run["rows"]] == [1, 2]
    assert len(app.get("plotly_chart")) == 3  # the scores, prompt tokens and latency
    assert len(app.get("download_button")) == 2
    assert len(app.dataframe) == 1
    assert [m.text for m in lab.memory.list()] == ["Our office dog is called Biscuit."]
    assert [b.proto.label for b in app.get("download_button")] == ["Download CSV", "Download JSON"]

def test_bad_values_are_one_line_and_the_run_button_is_off():
    app = page(scenario="poisoning").run()
    app.radio(key="experiments.experiment").set_value("threshold").run()
    app.text_input(key="experiments.values-threshold-poisoning").input("0.5, 1.5").run()
    assert not app.exception
    assert [e.value for e in app.error] == ["every threshold value must be a number from 0 to 1, not '1.5'"]
    assert app.button(key="experiments.run").disabled


def test_training_experiments_warn_before_the_button_and_the_scenario_comes_from_the_link():
    app = page(scenario="preferences").run()
    assert app.selectbox(key="experiments.scenario").value == "preferences"
    app.radio(key="experiments.experiment").set_value("rank").run()
    assert not app.exception
    assert "trains 4 adapter(s)" in app.warning[0].value and "minute" in app.warning[0].value
