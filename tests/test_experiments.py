"""Sweeps and curves on a tiny scenario, real model, embedder, memory and training.

Every experiment runs in a scratch workspace, so each test also checks that the student's
own memory, undo history, adapters and active adapter come out exactly as they went in.
"""

import csv
import io
import json
import math

import pytest

from lab import experiments
from lab.errors import LabError
from lab.evaluate import METRICS, evaluate_arms
from lab.experiments import (memory_curve, rows_to_csv, rows_to_json, sweep_k, sweep_rank, sweep_threshold,
                             training_curve, values_from_text)
from lab.scenario import load_scenario
from lab.session import LabSession
from lora_factory import random_adapter
from two_facts import two_facts_scenario

TINY = two_facts_scenario("tiny")
MEMORY_COLUMNS = [*METRICS, "prompt_tokens", "latency_ms"]


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return load_scenario(path)


@pytest.fixture
def scratch_dir(tmp_path, monkeypatch):
    """Where the scratch workspaces go, so a test can see that none is left behind."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _state(session: LabSession):
    return ([(m.id, m.text) for m in session.memory.list()], session.memory.snapshots(),
            [a.name for a in session.adapters.list()], session.adapters.active_name())


def test_k_and_threshold_sweeps_measure_the_memory_arm_and_leave_the_users_memory_alone(
        engine, embedder, tiny, scratch_dir):
    session = LabSession.open("sweeps")
    session.memory.add("Our office dog is called Biscuit.")
    before = _state(session)

    seen = []
    rows = sweep_k(session, tiny, [2, 1, 2], on_point=seen.append)
    assert seen == rows and [r["k"] for r in rows] == [1, 2]  # sorted, repeats dropped
    for row in rows:
        assert list(row) == ["k", *MEMORY_COLUMNS]
        assert 0 <= row["reliability"] <= 1 and 0 <= row["generalization"] <= 1
        assert row["reverse"] is None and row["adherence"] is None  # the scenario has no such questions
        assert row["prompt_tokens"] > 0 and row["latency_ms"] > 0
    assert rows[0]["reliability"] == 1.0  # the one best note is the right one

    rows = sweep_threshold(session, tiny, [0.99, 0.3])
    assert [r["threshold"] for r in rows] == [0.3, 0.99] and list(rows[0]) == ["threshold", *MEMORY_COLUMNS]
    base = evaluate_arms(session, tiny, ["base"])["base"]
    assert rows[0]["reliability"] == 1.0 > base["reliability"]
    assert rows[1]["reliability"] == base["reliability"]  # no note is that similar: the base's answers
    assert rows[1]["prompt_tokens"] < rows[0]["prompt_tokens"]

    assert _state(session) == before
    assert session.memory.undo() == "undid add of memory 1" and len(session.memory) == 0  # still the last change
    assert list(scratch_dir.iterdir()) == []


def test_rank_sweep_trains_measures_and_deletes_its_adapters_and_keeps_the_active_one(
        engine, embedder, tiny, scratch_dir):
    session = LabSession.open("ranks")
    mine = random_adapter(scratch_dir.parent / "mine.gguf")
    session.adapters.register("mine", mine, {"source": "test"})
    session.adapters.activate("mine")
    session.memory.add("Our office dog is called Biscuit.")
    before = _state(session)

    seen = []
    rows = sweep_rank(session, tiny, [2, 1], steps=3, on_point=seen.append)
    assert seen == rows and [r["rank"] for r in rows] == [1, 2]
    for row in rows:
        assert list(row) == ["rank", *MEMORY_COLUMNS, "train_seconds", "final_loss", "adapter_kb",
                             "trainable_parameters"]
        assert 0 <= row["reliability"] <= 1 and row["train_seconds"] > 0 and row["adapter_kb"] > 0
        assert math.isfinite(row["final_loss"])
    assert rows[1]["trainable_parameters"] == 2 * rows[0]["trainable_parameters"]  # LoRA size is linear in rank
    assert rows[1]["adapter_kb"] > rows[0]["adapter_kb"]

    assert _state(session) == before
    assert list(scratch_dir.iterdir()) == []


def test_curves_give_one_row_per_point_as_they_come(engine, embedder, tiny, scratch_dir):
    session = LabSession.open("curves")
    before = _state(session)
    seen = []
    rows = memory_curve(session, tiny, [2, 0], on_point=seen.append)
    assert seen == rows and [r["corrections"] for r in rows] == [0, 2]
    assert rows[0]["reliability"] == 0.0 and rows[1]["reliability"] == 1.0

    seen = []
    rows = training_curve(session, tiny, [3, 0], on_point=seen.append)
    assert seen == rows and [r["steps"] for r in rows] == [0, 3]
    assert set(rows[1]) == {"steps", "reliability", "generalization", "locality", "seconds"}
    assert rows[0]["seconds"] == 0.0 and rows[1]["seconds"] > 0
    assert _state(session) == before and list(scratch_dir.iterdir()) == []


def test_rows_download_as_csv_and_json():
    rows = [{"k": 1, "reliability": 0.5, "locality": None, "prompt_tokens": 44.1},
            {"k": 2, "reliability": 1.0, "locality": 0.75, "prompt_tokens": 61.0}]
    read = list(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert read == [{"k": "1", "reliability": "0.5", "locality": "", "prompt_tokens": "44.1"},
                    {"k": "2", "reliability": "1.0", "locality": "0.75", "prompt_tokens": "61.0"}]
    assert [{key: (float(v) if v else None) for key, v in row.items()} for row in read] == rows
    assert json.loads(rows_to_json(rows, {"experiment": "k", "scenario": "tiny"})) == {
        "experiment": "k", "scenario": "tiny", "rows": rows}
    assert rows_to_csv([]) == ""


@pytest.mark.parametrize("call, message", [
    (lambda s: sweep_k(None, s, [0]), "every k value must be a whole number from 1 to 50, not '0'"),
    (lambda s: sweep_k(None, s, [1.5]), "every k value must be a whole number"),
    (lambda s: sweep_k(None, s, [True]), "every k value must be a whole number"),
    (lambda s: sweep_k(None, s, []), "give at least one k value"),
    (lambda s: sweep_k(None, s, "1,2"), "give the k values as a list of numbers"),
    (lambda s: sweep_k(None, s, range(1, 30)), "at most 20 k values"),
    (lambda s: sweep_threshold(None, s, [0.5, 1.2]), "every threshold value must be a number from 0 to 1, not '1.2'"),
    (lambda s: sweep_threshold(None, s, [float("nan")]), "every threshold value must be a number from 0 to 1"),
    (lambda s: sweep_rank(None, s, [0]), "every rank value must be a whole number from 1 to 256, not '0'"),
    (lambda s: sweep_rank(None, s, [2], steps=0), "every steps value must be a whole number from 1 to 1000"),
    (lambda s: memory_curve(None, s, [3]), "every corrections value must be a whole number from 0 to 2, not '3'"),
    (lambda s: training_curve(None, s, [0]), "at least one number of training steps above 0"),
    (lambda s: values_from_text("k", s, "1, two"), "k values must be numbers separated by commas"),
    (lambda s: values_from_text("threshold", s, " "), "give at least one threshold value"),
    (lambda s: values_from_text("rank", s, "2, 0"), "every rank value must be a whole number from 1 to 256"),
    (lambda s: experiments.run("depth", None, s, [1]), "no experiment 'depth'"),
])
def test_invalid_values_are_one_clear_line_before_anything_runs(tiny, call, message):
    # No session is needed (None): the values are checked before any memory or model is touched.
    with pytest.raises(LabError) as error:
        call(tiny)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_values_from_text_and_defaults(tiny):
    assert values_from_text("k", tiny, "5, 1 2,,3") == [1, 2, 3, 5]
    assert values_from_text("threshold", tiny, "0.7 0.3") == [0.3, 0.7]
    assert experiments.defaults("memory_curve", tiny) == [0, 1, 2]
    assert experiments.defaults("rank", tiny) == [2, 4, 8, 16]
    assert experiments.adapters_trained("training_curve", [0, 10, 20]) == 2
    quick, slow = (experiments.estimate_seconds(key, tiny, [2, 4]) for key in ("k", "rank"))
    assert 0 < quick < slow
