"""A behaviour held three ways (lab/behaviour.py), and the wipe test's pinned way, on the real
model with a small behaviour scenario. The learned way gets a real adapter file with random
weights: what is tested here is the comparison's bookkeeping, not what an adapter learned
(tests/test_workshop.py trains a real pirate adapter)."""

import json

import pytest

from lab.behaviour import compare_ways, pinned_texts, table
from lab.errors import LabError
from lab.evaluate import wipe_test
from lab.scenario import load_scenario
from lab.session import LabSession
from lora_factory import random_adapter

SMALL = {
    "name": "shouting", "title": "Answer in capitals", "kind": "behavior",
    "rule": "Always end every answer with the word OVER.",
    "items": [{"question": "What colour is the sky?", "answer": "The sky is blue. OVER.", "target": r"\bover\b",
               "correction": "When asked \"What colour is the sky?\", answer: The sky is blue. OVER."},
              {"question": "How many legs does a spider have?", "answer": "A spider has eight legs. OVER.",
               "target": r"\bover\b",
               "correction": "When asked \"How many legs does a spider have?\", answer: A spider has eight legs. OVER."}],
    "probes": [{"question": "What is the capital of Spain?", "target": r"\bover\b"},
               {"question": "How many days are in a week?", "target": r"\bover\b"},
               {"question": "What do bees make?", "target": r"\bover\b"}],
}


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "shouting.json"
    path.write_text(json.dumps(SMALL))
    return load_scenario(path)


@pytest.fixture
def session():
    opened = LabSession.open("behaviour-test")
    yield opened
    opened.close()


def test_the_ways_are_measured_and_the_users_memory_comes_back(session, small, tmp_path):
    mine = session.remember("My own note stays where it is.")
    (tmp_path / "adapter").mkdir()
    adapter = random_adapter(tmp_path / "adapter" / "adapter.gguf")
    report = compare_ways(session, small, adapter_file=adapter)
    assert [w["way"] for w in report["ways"]] == ["retrieved", "pinned rule", "pinned examples", "learned"]
    ways = {w["way"]: w for w in report["ways"]}
    assert ways["pinned rule"]["pinned"] == [small.rule] and ways["pinned examples"]["pinned"] == pinned_texts(
        small, "pinned examples")
    # A pinned note costs tokens on every answer; unrelated probes retrieve nothing; weights cost none.
    assert ways["pinned rule"]["extra_tokens"] > 5 and ways["pinned examples"]["extra_tokens"] > \
        ways["pinned rule"]["extra_tokens"]
    assert ways["learned"]["extra_tokens"] == 0 and ways["retrieved"]["extra_tokens"] >= 0
    assert all(0.0 <= w["adherence"] <= 1.0 for w in report["ways"]) and report["probes"] == 3
    assert "pinned rule" in table(report)
    assert [(m.text, m.pinned) for m in session.memory.list()] == [(mine.text, False)]


def test_without_an_adapter_the_learned_way_is_left_out_with_the_reason(session, small):
    report = compare_ways(session, small)
    assert "learned" not in [w["way"] for w in report["ways"]]
    assert "train one on the shouting scenario" in report["learned_skipped"]


def test_a_scenario_without_probes_or_rule_says_so_in_one_line(session, small, tmp_path):
    from dataclasses import replace

    with pytest.raises(LabError, match="no held-out probes"):
        compare_ways(session, replace(small, probes=()))
    with pytest.raises(LabError, match="states no rule to pin"):
        pinned_texts(replace(small, rule=None), "pinned rule")
    assert "pinned rule" not in [w["way"] for w in compare_ways(session, replace(small, rule=None))["ways"]]


def test_the_wipe_test_reports_the_pinned_way_and_the_wipe_takes_it_too(session, small):
    report = wipe_test(session, small, ("base", "memory"))
    pinned = report["pinned"]
    assert pinned["rule"] == small.rule and pinned["pinned_tokens"] > 5
    assert pinned["before"]["prompt_tokens"] > report["before"]["memory"]["prompt_tokens"]
    assert pinned["after"] == report["after"]["memory"]  # wiped: the base arm's prompt again
    assert report["after"]["memory"]["prompt_tokens"] == report["after"]["base"]["prompt_tokens"]
    assert session.memory.list() == []
    # A facts scenario states no rule: its report keeps the shape it had.
    assert "pinned" not in wipe_test(session, load_scenario("preferences"), ("base",))


def test_the_cli_prints_the_comparison_as_json(tmp_path, small):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from lab.adapters import AdapterRegistry
    from lab.workspace import Workspace

    home = tmp_path / "home"
    workspace = Workspace.open("default", root=home)
    AdapterRegistry(workspace.adapters_dir).register("noise", random_adapter(tmp_path / "noise.gguf"), {"source": "test"})
    done = subprocess.run([sys.executable, "-m", "lab", "behaviour", "--scenario", str(small.path), "--adapter", "noise",
                           "--json"], cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
                          env={**os.environ, "LAB_HOME": str(home)}, timeout=600)
    assert done.returncode == 0, done.stderr[-600:]
    report = json.loads(done.stdout)
    assert set(report) >= {"scenario", "probes", "base", "ways"} and report["scenario"] == "shouting"
    assert [w["way"] for w in report["ways"]][-1] == "learned" and report["ways"][-1]["adapter"] == "noise"
    assert {"way", "label", "adherence", "prompt_tokens", "extra_tokens"} <= set(report["ways"][0])
