"""The update test on the real model, memory and training: a small scenario whose two facts change."""

import json

import pytest

from lab.errors import LabError
from lab.evaluate import METRICS
from lab.learning import TrainingConfig
from lab.scenario import load_scenario
from lab.session import LabSession
from lab.update_test import STAGES, UpdateTestJob, adapter_names, table, update_test
from two_changes import two_changes_scenario

CONTRACT = {"scenario", "before", "after_update", "update_ms", "retrain_s", "after_retrain"}
STEPS = 20  # two facts at batch 8: 80 passes over each, enough for the adapter to give them


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "two-changes.json"
    path.write_text(json.dumps(two_changes_scenario("two-changes")))
    return load_scenario(path)


def test_memory_answers_the_new_value_at_once_and_the_adapter_keeps_the_old_one(engine, embedder, small):
    session = LabSession.open("update")
    mine = session.memory.add("My cat is called Miso.")
    stages, details = [], {}
    report = update_test(session, small, ["base", "memory", "learned"], config=TrainingConfig(steps=STEPS, replay=False),
                         on_stage=stages.append, details=details)
    assert set(report) == CONTRACT and report["scenario"] == "two-changes" and stages == list(STAGES)
    for phase in ("before", "after_update", "after_retrain"):
        assert list(report[phase]) == ["base", "memory", "learned"]
        for metrics in report[phase].values():
            assert set(metrics) == {"current", "stale", *METRICS, "prompt_tokens", "latency_ms"}
    before, updated, retrained = report["before"], report["after_update"], report["after_retrain"]
    # Before: memory and the adapter both give the old values; nobody knows the new ones.
    assert before["memory"]["stale"] == 1.0 and before["learned"]["stale"] >= 2 / 3, before
    assert before["base"]["stale"] == 0.0 and all(m["current"] == 0.0 for m in before.values())
    # The facts change: memory, edited in place, gives the new value at once; the adapter the old one.
    assert updated["memory"]["current"] == 1.0 and updated["memory"]["stale"] == 0.0, updated
    assert updated["memory"]["reliability"] == 1.0  # measured against the new facts now
    assert updated["learned"]["stale"] >= 2 / 3 and updated["learned"]["current"] == 0.0, updated
    # Retrained on the new facts, the adapter gives them too.
    assert retrained["learned"]["current"] >= 2 / 3 and retrained["learned"]["stale"] == 0.0, retrained
    assert report["update_ms"] > 0 and report["retrain_s"] > 0  # measured (a time is never asserted)
    assert details["reused"] == {"old": False, "new": False} and details["steps"] == STEPS
    # The user's memory comes back; the two adapters are registered, neither activated.
    assert [m.text for m in session.memory.list()] == [mine.text] and session.memory.snapshots() == []
    assert {a.name for a in session.adapters.list()} == set(adapter_names(small))
    assert session.adapters.active_name() is None
    assert session.adapters.get("two-changes-new").meta["source"] == "scenario:two-changes-updated"
    text = table(report, details)
    assert "after the update" in text and "edited in place" in text and "retraining took" in text

    # Again: both trainings are reused from the class's cache, and every reply is the same.
    again_details = {}
    again = update_test(session, small, ["base", "memory", "learned"], config=TrainingConfig(steps=STEPS, replay=False),
                        details=again_details)
    assert again_details["reused"] == {"old": True, "new": True}
    assert all(_rates(again[p]) == _rates(report[p]) for p in ("before", "after_update", "after_retrain"))
    assert again["retrain_s"] == report["retrain_s"]  # the retraining's own time, not the reuse's
    assert "reused" in table(again, again_details)


def _rates(phase: dict) -> dict:
    """A phase without its latencies (the one thing a second run changes)."""
    return {arm: {k: v for k, v in m.items() if k != "latency_ms"} for arm, m in phase.items()}


def test_only_an_updates_scenario_can_run_and_the_job_reports_a_cancel(engine, embedder, small):
    session = LabSession.open("update-refused")
    with pytest.raises(LabError) as error:
        update_test(session, load_scenario("acme"))
    assert "kind 'updates'" in str(error.value) and "changing-facts" in str(error.value)
    with pytest.raises(LabError):
        UpdateTestJob(session, load_scenario("acme"))
    job = UpdateTestJob(session, small)
    job.cancel()
    job.start().wait(60)
    assert job.stage == "cancelled" and job.report is None and "cancelled" in job.error
    assert session.memory.list() == [] and session.adapters.list() == []


def test_the_terminal_table_says_which_adapters_the_test_left():
    """Pure: the text the CLI prints names the two adapters it leaves, and how to ask or remove one."""
    metrics = {"current": 1.0, "stale": 0.0, "reliability": 1.0, "generalization": 1.0, "locality": 1.0}
    report = {"scenario": "s", "update_ms": 12.0, "retrain_s": 40.0,
              **{phase: {"memory": dict(metrics)} for phase in ("before", "after_update", "after_retrain")}}
    text = table(report, {"adapters": {"old": "s-old", "new": "s-new"}, "active": "acme"})
    assert ("left 2 adapters in this workspace: s-old (the old facts), s-new (retrained on the new facts); replaced "
            "on every run, never activated (your active adapter is still acme)") in text
    assert "python -m lab adapters delete NAME" in text
    assert "left 2 adapters" not in table(report, {})
