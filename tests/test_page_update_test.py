"""The Update Test page, driven by Streamlit's AppTest on the real model, memory and training.

AppTest runs the page in this process, so the bundled scenarios can be a copy with the small
two-facts scenario beside them: the page's test takes a minute or two, not the ten facts'
several. tests/test_browser_update_test.py runs the bundled changing-facts in chromium."""

import json
import shutil
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from two_changes import two_changes_scenario

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # pages import `ui` from the project root, as under `streamlit run`


@pytest.fixture
def with_two_changes(tmp_path, monkeypatch):
    import lab.scenario
    import lab.update_test

    folder = tmp_path / "scenarios"
    shutil.copytree(lab.scenario.BUNDLED_DIR, folder)
    (folder / "two-changes.json").write_text(json.dumps(two_changes_scenario("two-changes")))
    monkeypatch.setattr(lab.scenario, "BUNDLED_DIR", folder)
    monkeypatch.setattr(lab.scenario, "SCHEMA_PATH", folder / "schema.json")
    monkeypatch.setattr(lab.update_test, "UPDATE_STEPS", 20)


def page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "7_Update_Test.py"), default_timeout=300)


def test_the_page_runs_the_test_off_its_thread_and_shows_each_phase(with_two_changes):
    app = page()
    app.query_params["scenario"] = "acme"  # no facts that change: the page says so and picks one that does
    app.run()
    assert not app.exception
    assert any("has no facts that change" in c.value for c in app.caption)
    box = app.selectbox(key="update_test.scenario_box")
    assert set(box.options) == {"changing-facts", "two-changes"}
    box.select("two-changes").run()
    lab = app.session_state["ui.lab"]
    mine = lab.memory.add("My cat is called Miso.")
    app.button(key="update_test.run").click().run()
    assert not app.exception
    job = app.session_state["update_test.job"]
    try:
        assert app.button(key="update_test.run").disabled or job.finished  # one test at a time
        job.wait(1200)
    finally:  # never leave it training as the interpreter exits
        job.cancel()
        job.wait(120)
    assert job.stage == "done", job.error
    app.run()
    assert not app.exception
    report = app.session_state["update_test.report"]
    assert report["after_update"]["memory"]["current"] == 1.0 and report["after_update"]["learned"]["stale"] > 0
    assert any("After the update memory gives the new value" in m.value for m in app.markdown)
    labels = [m.label for m in app.metric]
    assert "editing memory" in labels and "retraining the adapter" in labels
    assert len(app.get("plotly_chart")) == 4  # one chart per arm
    assert app.dataframe  # the facts, and the table of every arm and phase
    assert [m.text for m in lab.memory.list()] == [mine.text]  # given back
    assert all(k.startswith(("update_test.", "ui.")) for k in app.session_state.keys() if not k.startswith("$$"))


def test_the_page_says_which_adapters_the_test_leaves_and_deletes_them_on_request(tmp_path):
    """The test registers two adapters in the user's list (never activated): the page says so
    before the run and after it, and offers to delete them."""
    from lora_factory import random_adapter

    metrics = {"current": 1.0, "stale": 0.0, "reliability": 1.0, "generalization": 1.0, "locality": 1.0}
    report = {"scenario": "changing-facts", "update_ms": 12.0, "retrain_s": 40.0,
              **{phase: {"memory": dict(metrics), "learned": dict(metrics)}
                 for phase in ("before", "after_update", "after_retrain")}}
    app = page()
    app.query_params["scenario"] = "changing-facts"
    app.run()
    assert any("It leaves its two adapters in your list, **changing-facts-old** and **changing-facts-new**" in c.value
               for c in app.caption)
    lab = app.session_state["ui.lab"]
    for i, name in enumerate(("changing-facts-old", "changing-facts-new")):
        lab.adapters.register(name, random_adapter(tmp_path / f"{name}.gguf", seed=i), {"source": "test"})
    app.session_state["update_test.report"] = report
    app.run()
    assert not app.exception
    [left] = [m.value for m in app.markdown if m.value.startswith("The test left 2 adapters")]
    assert "were never activated: no adapter is active" in left
    app.button(key="update_test.delete_adapters").click().run()
    assert not app.exception and lab.adapters.list() == []
    assert not [m for m in app.markdown if m.value.startswith("The test left")]
