"""Metrics and the wipe test on a small scenario, real model and memory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.evaluate import evaluate_arms, remember_scenario, survivors, wipe_test
from lab.scenario import load_scenario
from lab.session import LabSession
from two_facts import two_facts_scenario

ROOT = Path(__file__).resolve().parent.parent
SMALL = two_facts_scenario("small")


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.json"
    path.write_text(json.dumps(SMALL))
    return load_scenario(path), path


def test_memory_improves_and_the_wipe_takes_it_away(engine, embedder, small):
    scenario, _ = small
    session = LabSession.open("eval")
    mine = session.memory.add("My cat is called Miso.")
    report = wipe_test(session, scenario, ["base", "memory"])
    before, after = report["before"], report["after"]
    assert before["base"]["reliability"] == 0.0 and before["memory"]["reliability"] == 1.0
    assert after["memory"] == {**after["base"], "prompt_tokens": after["memory"]["prompt_tokens"],
                               "latency_ms": after["memory"]["latency_ms"]}  # back to the base, exactly
    assert before["memory"]["locality"] == 1.0
    assert before["memory"]["reverse"] is None and before["memory"]["adherence"] is None  # no questions
    assert report["survived"]["memory"]["reliability"] is False
    assert report["survived"]["base"]["reliability"] is None
    # The user's memory comes back, and nothing of the scenario stays in it.
    assert [m.text for m in session.memory.list()] == [mine.text] and session.memory.snapshots() == []


def test_remembering_a_scenario_starts_from_an_empty_memory(engine, embedder, small):
    scenario, _ = small
    session = LabSession.open("eval2")
    session.memory.add("Something the student remembered earlier.")
    assert remember_scenario(session, scenario) == 2
    assert sorted(m.question for m in session.memory.list()) == sorted(i.question for i in scenario.items)
    metrics = evaluate_arms(session, scenario, ["memory"], logprob=True)["memory"]
    assert metrics["answer_logprob"] < 0 and metrics["prompt_tokens"] > 0


def test_survivors_marks_only_real_improvements():
    before = {"base": {"reliability": 0.1}, "memory": {"reliability": 0.9}, "learned": {"reliability": 0.9}}
    after = {"base": {"reliability": 0.1}, "memory": {"reliability": 0.1}, "learned": {"reliability": 0.9}}
    marks = survivors(before, after)
    assert marks["memory"]["reliability"] is False and marks["learned"]["reliability"] is True
    assert marks["base"]["reliability"] is None and marks["memory"]["locality"] is None


def test_wipe_test_cli_json_and_your_memory_comes_back(small, tmp_path):
    _, path = small
    env = {**os.environ, "LAB_HOME": str(tmp_path / "home")}

    def lab(*args):
        result = subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        return result.stdout

    lab("remember", "My own note that must survive the evaluation.")
    report = json.loads(lab("wipe-test", "--scenario", str(path), "--arms", "base,memory", "--json"))
    assert set(report) >= {"scenario", "before", "after", "seconds"} and report["scenario"] == "small"
    assert set(report["before"]["memory"]) >= {"reliability", "generalization", "locality", "reverse", "adherence",
                                               "prompt_tokens", "latency_ms"}
    evaluated = json.loads(lab("eval", "--scenario", str(path), "--arms", "base,memory", "--json"))
    assert set(evaluated) == {"scenario", "arms"} and evaluated["arms"]["memory"]["reliability"] == 1.0
    memories = json.loads(lab("memory", "list", "--json"))["memories"]
    assert [m["text"] for m in memories] == ["My own note that must survive the evaluation."]
    assert "survived" in lab("wipe-test", "--scenario", str(path), "--arms", "base,memory")
