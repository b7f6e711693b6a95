"""Workspace limits on the real store and registry: each limit gives one line and changes nothing."""

import json

import pytest

from lab.errors import LabError
from lab.learning import TrainingConfig
from lab.limits import Limits, LimitReached, folder_bytes
from lab.session import LabSession


def _state(session) -> tuple:
    """Everything a refused attempt must leave as it was."""
    return (tuple((m.id, m.text) for m in session.memory.list()), tuple(a.name for a in session.adapters.list()),
            session.adapters.active_name())


def _one_line(error) -> str:
    for text in (str(error.value), error.value.app_message):
        assert text and "\n" not in text
    return str(error.value)


def test_the_defaults_suit_a_class_and_the_environment_overrides_them(monkeypatch):
    assert Limits.from_env() == Limits(memories=2000, adapters=20, bytes=500_000_000)
    monkeypatch.setenv("LAB_MAX_MEMORIES", "50")
    monkeypatch.setenv("LAB_MAX_ADAPTERS", "3")
    monkeypatch.setenv("LAB_MAX_WORKSPACE_MB", "1.5")
    assert Limits.from_env() == Limits(memories=50, adapters=3, bytes=1_500_000)
    monkeypatch.setenv("LAB_MAX_MEMORIES", "lots")
    with pytest.raises(LabError, match="LAB_MAX_MEMORIES must be a number"):
        Limits.from_env()


def test_the_memory_limit_refuses_add_add_many_and_import_whole(embedder, monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_MAX_MEMORIES", "2")
    session = LabSession.open("full-memory")
    session.memory.add("Our office dog is called Biscuit.")
    export = tmp_path / "two.json"
    session.memory.add("The canteen opens at 8.")
    session.memory.export(export)
    before = _state(session)
    for attempt in (lambda: session.memory.add("One more note."),
                    lambda: session.memory.add_many([{"text": "A."}, {"text": "B."}]),
                    lambda: session.memory.import_(export)):
        with pytest.raises(LimitReached) as error:
            attempt()
        assert "LAB_MAX_MEMORIES" in _one_line(error) and "Memory page" in error.value.app_message
        assert _state(session) == before
    session.close()


def test_the_memory_limit_in_the_cli_is_one_line_on_stderr(embedder, monkeypatch, capsys):
    from lab.cli import main

    monkeypatch.setenv("LAB_MAX_MEMORIES", "0")
    assert main(["remember", "The refund window at Acme Corp is 45 days.", "--json"]) != 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "limit" in captured.err
    monkeypatch.delenv("LAB_MAX_MEMORIES")
    assert main(["memory", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"memories": []}


def test_the_adapter_limit_refuses_before_training_and_at_registration(engine, embedder, monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_MAX_ADAPTERS", "1")
    session = LabSession.open("full-adapters")
    (tmp_path / "a.gguf").write_bytes(b"GGUF" + bytes(64))
    session.adapters.register("first", tmp_path / "a.gguf", {"source": "memory"})
    session.adapters.activate("first")
    session.memory.add("A fact.", question="Q?", answer="A fact.")
    before = _state(session)
    from lab.consolidation import consolidate
    from lab.training_cache import TrainingCache

    with pytest.raises(LimitReached) as error:  # refused at once: no minutes of training first
        consolidate(session, name="second", config=TrainingConfig(steps=2, replay=False))
    assert "LAB_MAX_ADAPTERS=1" in _one_line(error) and "Learning page" in error.value.app_message
    (tmp_path / "b.gguf").write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(LimitReached):
        session.adapters.register("second", tmp_path / "b.gguf", {})
    assert _state(session) == before and (tmp_path / "b.gguf").exists()  # the file was not taken either
    assert not TrainingCache().directory.exists() or not any(TrainingCache().directory.iterdir())
    # Replacing an adapter adds none, so it is allowed at the limit.
    session.adapters.register("first", tmp_path / "b.gguf", {"source": "memory", "again": True})
    assert session.adapters.get("first").meta["again"] is True
    session.close()


def test_the_disk_limit_refuses_big_writes(embedder, monkeypatch, tmp_path):
    session = LabSession.open("full-disk")
    session.memory.add("Our office dog is called Biscuit.")
    used = folder_bytes(session.workspace.root)
    monkeypatch.setenv("LAB_MAX_WORKSPACE_MB", str((used + 1000) / 1e6))  # room for 1 kB more
    limited = LabSession.open("full-disk")
    before = _state(limited)
    with pytest.raises(LimitReached) as error:
        limited.memory.add("A note that would need about 4 kB.")
    assert "LAB_MAX_WORKSPACE_MB" in _one_line(error)
    (tmp_path / "big.gguf").write_bytes(b"GGUF" + bytes(20_000))
    with pytest.raises(LimitReached):
        limited.adapters.register("big", tmp_path / "big.gguf", {})
    assert _state(limited) == before
    session.close()
    limited.close()


def test_make_permanent_needs_room_for_the_merged_model(engine, embedder, monkeypatch, tmp_path):
    from lab.merge import make_permanent

    session = LabSession.open("no-room-to-merge")
    (tmp_path / "a.gguf").write_bytes(b"GGUF" + bytes(64))
    session.adapters.register("tiny", tmp_path / "a.gguf", {})
    monkeypatch.setenv("LAB_MAX_WORKSPACE_MB", "50")  # a merged 135M model is about 140 MB
    limited = LabSession.open("no-room-to-merge")
    with pytest.raises(LimitReached) as error:
        make_permanent(limited, "tiny")
    _one_line(error)
    assert not (limited.adapters.get("tiny").path.parent / "merged.gguf").exists()
