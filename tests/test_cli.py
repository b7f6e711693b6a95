"""`python -m lab` as a user runs it: real processes, real model, JSON contracts, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def lab(*args, home, check=True):
    env = {**os.environ, "LAB_HOME": str(home)}
    env.pop("LAB_DEBUG", None)
    result = subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def lab_json(*args, home):
    return json.loads(lab(*args, "--json", home=home).stdout)


def test_the_done_when_session(tmp_path):
    question = "What is the refund window at Acme Corp?"
    first = lab_json("ask", question, "--arm", "memory", home=tmp_path)
    assert set(first) == {"answer", "arm", "hits", "prompt_tokens", "completion_tokens", "latency_ms"}
    assert first["arm"] == "memory" and first["hits"] == [] and "45" not in first["answer"]

    remembered = lab_json("remember", "The refund window at Acme Corp is 45 days.", home=tmp_path)
    assert isinstance(remembered["id"], int)

    fixed = lab("ask", question, "--arm", "memory", home=tmp_path).stdout
    assert "45 days" in fixed and f"[{remembered['id']}] score 0." in fixed

    fixed_json = lab_json("ask", question, "--arm", "memory", home=tmp_path)
    assert "45 days" in fixed_json["answer"]
    assert fixed_json["hits"][0]["id"] == remembered["id"] and fixed_json["hits"][0]["score"] > 0.6

    assert lab_json("memory", "wipe", home=tmp_path) == {"wiped": 1}
    after = lab_json("ask", question, "--arm", "memory", home=tmp_path)
    assert after["hits"] == [] and after["answer"] == first["answer"]


def test_memory_commands_round_trip(tmp_path):
    ws = ["--workspace", "cls"]
    a = lab_json("remember", "Acme Corp was founded in 1999.", *ws, home=tmp_path)["id"]
    b = lab_json("remember", "Acme Corp sells anvils.", "--question", "What does Acme Corp sell?",
                 "--answer", "anvils", *ws, home=tmp_path)["id"]
    listed = lab_json("memory", "list", *ws, home=tmp_path)["memories"]
    assert [m["id"] for m in listed] == [a, b] and listed[1]["answer"] == "anvils"
    hits = lab_json("memory", "search", "When was Acme founded?", *ws, home=tmp_path)["hits"]
    assert hits[0]["id"] == a and set(hits[0]) == {"id", "text", "score"}
    assert lab_json("memory", "snapshot", "two", *ws, home=tmp_path) == {"snapshot": "two", "count": 2}
    assert lab_json("memory", "delete", str(a), *ws, home=tmp_path) == {"deleted": a}
    assert "undone" in lab_json("memory", "undo", *ws, home=tmp_path)
    assert len(lab_json("memory", "list", *ws, home=tmp_path)["memories"]) == 2
    export = tmp_path / "out.json"
    assert lab_json("memory", "export", str(export), *ws, home=tmp_path)["exported"] == 2
    lab_json("memory", "wipe", *ws, home=tmp_path)
    assert lab_json("memory", "import", str(export), *ws, home=tmp_path) == {"imported": 2}
    lab_json("memory", "wipe", *ws, home=tmp_path)
    assert lab_json("memory", "restore", "two", *ws, home=tmp_path) == {"restored": "two", "count": 2}
    # Another workspace sees none of it.
    assert lab_json("memory", "list", "--workspace", "other", home=tmp_path) == {"memories": []}


def test_an_edit_brings_the_answer_along_and_counts_are_in_words(tmp_path):
    head = "The new head of research is Tomasz Wierzbicki."
    made = lab_json("remember", head, "--question", "Who is the new head of research?", "--answer", "Tomasz Wierzbicki",
                    home=tmp_path)["id"]
    edited = lab_json("memory", "edit", str(made), "The new head of research is Amara.", home=tmp_path)
    assert edited == {"id": made, "text": "The new head of research is Amara.", "answer": "Amara"}
    assert lab("memory", "wipe", home=tmp_path).stdout.startswith("wiped 1 memory (")


@pytest.mark.parametrize("args, message", [
    (["ask", "What?", "--arm", "learned"], "python -m lab train"),
    (["ask", "", "--arm", "memory"], "empty"),
    (["ask", "What?", "--arm", "wrong"], "invalid choice"),
    (["remember", "a\x01b"], "control characters"),
    (["remember", "   "], "empty"),
    (["memory", "delete", "999"], "999"),
    (["memory", "delete", "abc"], "invalid int"),
    (["memory", "undo"], "nothing to undo"),
    (["memory", "restore", "nope"], "nope"),
    (["memory", "import", "/no/such/file.json"], "/no/such/file.json"),
    (["ask", "What?", "--workspace", "../evil"], "invalid workspace name"),
    (["ask", "What?", "--model", "/no/such/model.gguf"], "model file not found"),
    (["adapters", "activate", "ghost"], "no adapter named"),
    (["frobnicate"], "invalid choice"),
])
def test_errors_are_one_line_on_stderr_with_nonzero_exit(tmp_path, args, message):
    result = lab(*args, home=tmp_path, check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_remember_100k_characters_is_refused_and_nothing_is_stored(tmp_path):
    result = lab("remember", "x" * 100_000, home=tmp_path, check=False)
    assert result.returncode != 0 and "too long" in result.stderr
    assert lab_json("memory", "list", home=tmp_path) == {"memories": []}


def test_truncated_model_via_env(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 8)
    env_home = tmp_path / "h"
    result = subprocess.run([sys.executable, "-m", "lab", "ask", "hi"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "LAB_HOME": str(env_home), "LAB_MODEL": str(bad)}, timeout=120)
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert str(bad) in result.stderr and ("truncated" in result.stderr or "damaged" in result.stderr)


def test_status_and_help(tmp_path):
    status = lab_json("status", home=tmp_path)
    assert status["model"]["architecture"] == "llama" and status["workspace"]["name"] == "default"
    assert "ask" in lab("--help", home=tmp_path).stdout


def test_a_second_process_gets_the_first_ones_reply_from_the_class_cache(tmp_path):
    question = "What is the capital of Norway?"
    first = lab_json("ask", question, home=tmp_path)
    assert lab_json("cache", home=tmp_path)["entries"] == 1
    second = json.loads(lab("ask", question, "--json", "--show-prompt", home=tmp_path).stdout)
    assert second["answer"] == first["answer"] and second["cached"] is True
    assert lab_json("status", home=tmp_path)["reply_cache"]["entries"] == 1
    cleared = lab_json("cache", "--clear", home=tmp_path)
    assert cleared["cleared"] == 1 and cleared["entries"] == 0
    assert json.loads(lab("ask", question, "--json", "--show-prompt", home=tmp_path).stdout)["cached"] is False


def test_update_test_json_contract_table_and_one_line_errors(tmp_path):
    from two_changes import two_changes_scenario

    path = tmp_path / "two-changes.json"
    path.write_text(json.dumps(two_changes_scenario("two-changes")))
    lab("remember", "My own note that must survive the update test.", home=tmp_path)
    env = {**os.environ, "LAB_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "lab", "update-test", "--scenario", str(path), "--steps", "20",
                          "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert set(report) == {"scenario", "before", "after_update", "update_ms", "retrain_s", "after_retrain",
                           "adapters_left"}  # the two adapters it leaves in the workspace, named
    assert report["adapters_left"] == ["two-changes-old", "two-changes-new"]
    assert report["scenario"] == "two-changes" and isinstance(report["update_ms"], float)
    for phase in ("before", "after_update", "after_retrain"):
        assert list(report[phase]) == ["base", "memory", "learned", "both"]
        assert {"current", "stale", "reliability", "generalization", "locality", "prompt_tokens",
                "latency_ms"} <= set(report[phase]["memory"])
    assert report["after_update"]["memory"]["current"] == 1.0 and report["after_update"]["learned"]["stale"] > 0
    memories = lab_json("memory", "list", home=tmp_path)["memories"]
    assert [m["text"] for m in memories] == ["My own note that must survive the update test."]
    # Without --json: a table (both trainings now reused from the class's cache, so it is quick).
    text = lab("update-test", "--scenario", str(path), "--steps", "20", home=tmp_path).stdout
    assert "after the update" in text and "memory edited in place in" in text and "reused" in text
    assert "left 2 adapters in this workspace: two-changes-old" in text
    refused = lab("update-test", "--scenario", "acme", home=tmp_path, check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "kind 'updates'" in refused.stderr
