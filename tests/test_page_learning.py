"""The Learning page (and the Wipe Test's chart), driven by Streamlit's AppTest on the real
model, embedder, memory and training: what a reload finds, what each figure measures, and
why a memory is or is not a candidate."""

import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # pages import `ui` from the project root, as under `streamlit run`
REFUND = ("What is the refund window at Acme Corp?", "The refund window at Acme Corp is 45 days.")


def page(name: str = "4_Learning.py") -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / name), default_timeout=300)


def reload_of(app: AppTest, name: str = "4_Learning.py") -> AppTest:
    """The same address in a new session, as a browser reload opens it: the workspace and its key."""
    again = page(name)
    again.query_params["workspace"] = app.session_state["ui.lab"].workspace.name
    again.query_params["key"] = app.session_state["ui.edit_key"]
    return again.run()


def test_a_reload_shows_the_running_training_with_its_progress_and_cancel():
    """Name an adapter, Train, reload at step 7: the training went on unseen, then replaced the
    active adapter. The reloaded page must show it, with its progress and Cancel."""
    app = page().run()
    lab = app.session_state["ui.lab"]
    lab.memory.add(REFUND[1], question=REFUND[0], answer=REFUND[1])
    app.slider(key="learning.steps-sft").set_value(200)
    app.checkbox(key="learning.replay").uncheck()  # no replay answers to prepare: straight to the steps
    app.text_input(key="learning.name-None").input("reloaded")
    app.button(key="learning.train").click().run()
    job = app.session_state["learning.job"]
    try:
        deadline = time.time() + 600
        while len(job.progress) < 2 and not job.finished and time.time() < deadline:
            time.sleep(0.5)
        assert job.stage == "training", job.error
        again = reload_of(app)
        assert not again.exception
        assert again.session_state["learning.job"] is job  # found by workspace, not by session
        [bar] = again.get("progress")
        assert bar.proto.text.startswith("training: step ") and "about" in bar.proto.text
        assert again.button(key="learning.train").disabled  # one training at a time, still
        assert any("Training **reloaded**" in c.value for c in again.sidebar.caption)
        again.button(key="learning.cancel").click().run()
        job.wait(120)
    finally:
        job.cancel()
        job.wait(120)
    assert job.state == "cancelled"
    again.run()
    assert any("cancelled" in w.value for w in again.warning) and job.reported
    assert lab.adapters.list() == [] and lab.adapters.active_name() is None  # nothing turned active
    assert "learning.job" not in reload_of(again).session_state  # its end was shown: not offered again


def test_the_costs_time_a_real_remember_and_the_estimate_says_where_it_comes_from():
    from lab import training_pace

    app = page().run()
    costs = {m.label: m for m in app.metric}
    remember = costs["to remember one correction"]
    assert remember.value.endswith(" ms") and float(remember.value.split()[0]) > 0.5  # never a cached "0.0 ms"
    assert "a new sentence embedded, added to the index and saved" in remember.proto.help
    estimate = [c.value for c in app.caption if c.value.startswith("About ")]
    assert estimate and "60 steps at 0.50 s each" in estimate[0] and "a first guess" in estimate[0]
    assert "the base model's 50 new answers to the 50 replay questions" in estimate[0]
    training_pace.record_training(steps=60, train_s=90.0, other_s=10.0)
    app.run()
    [estimate] = [c.value for c in app.caption if c.value.startswith("About ")]
    assert estimate.startswith("About 1") and "60 steps at 1.50 s each" in estimate
    assert "measured on this server's trainings" in estimate


def test_the_consolidate_table_shows_each_memorys_counts_against_the_rule():
    app = page().run()
    lab = app.session_state["ui.lab"]
    fact = lab.memory.add(REFUND[1], question=REFUND[0], answer=REFUND[1])
    rule = lab.remember("Always answer politely.", pinned=True)
    lab.memory.record_use(sent=[fact.id], tested=[fact.id])
    app.toggle(key="learning.consolidate_all").set_value(True).run()
    assert not app.exception
    assert any(c.value.startswith("The rule: sent into at least 3 answers, decisive at least 1 time") for c in app.caption)
    rows = {row["id"]: row for row in app.dataframe[0].value.to_dict("records")}
    assert rows[fact.id]["sent"] == "1 of 3" and rows[fact.id]["decisive"] == "0 of 1 (tested 1)"
    assert rows[fact.id]["unchanged for"].endswith("of 29 minutes")
    assert rows[fact.id]["why"].startswith("not yet: needs sent 2 more times; decisive when *Why?* leaves it out")
    assert "never retired (no question to check it by)" in rows[rule.id]["why"]


def test_a_consolidation_report_explains_its_prompt_tokens_and_the_rule_it_kept():
    from lab.jobs import ConsolidationJob

    app = page().run()
    lab = app.session_state["ui.lab"]
    rule = lab.remember("Always answer politely.", pinned=True)
    job = ConsolidationJob(lab, name="c", memories=[rule])
    job._outcome, job.report = "done", {  # as consolidate_memories returns it
        "name": "c", "method": "sft", "trained_on": [rule.id, 7], "retired": [7], "reused": False, "seconds": 1.0,
        "verified": {"reliability": 1.0, "locality": 1.0, "ids": [7]},
        "prompt_tokens_before": 83.0, "prompt_tokens_after": 83.0, "answers": [],
        "prompt_tokens_note": "The retired note (12 prompt tokens as note) left the memory arm's prompts for these "
                              "questions, but other notes that pass the retrieval threshold took their places",
        "unverifiable": [{"id": rule.id, "text": rule.text, "why": "it has no question, so ... never retired."}]}
    app.session_state["learning.consolidate_job"] = job
    app.run()
    assert not app.exception
    assert any(c.value.startswith("The retired note (12 prompt tokens as note)") for c in app.caption)
    assert any(f"Memory [{rule.id}]" in i.value and "never retired" in i.value for i in app.info)


def test_the_wipe_tests_legend_sits_above_the_bars_so_the_arm_names_show_whole():
    """Below the bars the legend sat on the arm names: "memory" read "memorv"."""
    import json

    scores = {"reliability": 1.0, "generalization": 0.5, "locality": 1.0, "reverse": None, "adherence": None}
    app = page("3_Wipe_Test.py").run()
    app.session_state["wipe_test.report"] = {
        "scenario": "acme", "seconds": 3.0, "before": {"base": dict(scores), "memory": dict(scores)},
        "after": {"base": dict(scores), "memory": dict(scores)}, "survived": {"memory": {}}}
    app.run()
    assert not app.exception
    charts = [json.loads(c.proto.spec) for c in app.get("plotly_chart")]
    assert charts
    for chart in charts:
        legend = chart["layout"]["legend"]
        assert legend["y"] >= 1 and legend["yanchor"] == "bottom", legend
