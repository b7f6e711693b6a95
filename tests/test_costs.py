"""What remembering costs, measured on the real embedder, SQLite and hnswlib."""

from lab import costs
from lab.training_cache import shared_dir


def test_each_measurement_remembers_a_new_sentence_in_a_scratch_store_and_removes_it(embedder):
    """The Learning page once timed embedding a fixed sentence the embedding cache held, and
    said "0.0 ms": every measurement must embed a text nobody stored before, index and save it."""
    from lab.session import LabSession

    session = LabSession.open("costs")
    session.memory.add("My own note.")
    first, second = costs.time_remember(embedder), costs.time_remember(embedder)
    # Embedding alone, by the model, takes milliseconds on any CPU; a cached vector takes microseconds.
    assert first["ms"] > 1.0 and second["ms"] > 1.0
    assert costs._new_sentence() != costs._new_sentence()
    assert [m.text for m in session.memory.list()] == ["My own note."]  # the student's memory untouched
    assert session.memory.undo().startswith("undid add")  # ...and its history: the last change is still its own
    assert not [p for p in shared_dir().iterdir() if p.name.startswith(".remember-timing-")]  # nothing left behind


def test_a_page_that_reruns_reuses_a_recent_measurement(embedder, monkeypatch):
    monkeypatch.setattr(costs, "_last", None)
    first = costs.recent_remember_timing(embedder)
    assert costs.recent_remember_timing(embedder) == first
    monkeypatch.setattr(costs, "FRESH_FOR_S", 0.0)
    assert costs.recent_remember_timing(embedder)["at"] > first["at"]
