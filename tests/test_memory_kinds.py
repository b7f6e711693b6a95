"""The memory store's two kinds, pinned and retrieved, through every way a memory can travel
(undo, snapshots, export and import, the wipe, a store from before pinning existed), and its
usage signals. Real embedder, hnswlib and SQLite."""

import json
import sqlite3
import time

import pytest

import lab.memory as memory_module
from lab.errors import LabError
from lab.memory import MemoryStore, Usage

RULE = "Always answer like a pirate: begin with Arr! and end with matey."
REFUND = "The refund window at Acme Corp is 45 days."


@pytest.fixture
def store(tmp_path, embedder):
    with MemoryStore(tmp_path / "memory", embedder) as opened:
        yield opened


def kinds(store) -> dict[str, bool]:
    return {m.text: m.pinned for m in store.list()}


def test_a_memory_is_retrieved_unless_pinned_and_pinning_is_undoable(store):
    rule = store.add(RULE, pinned=True)
    refund = store.add(REFUND)
    assert rule.pinned and rule.kind == "pinned" and not refund.pinned and refund.kind == "retrieved"
    assert [m.id for m in store.pinned()] == [rule.id]
    assert store.set_pinned(refund.id, True).pinned
    assert store.set_pinned(refund.id, True).pinned  # pinning what is pinned: no change, nothing to undo
    assert store.undo() == f"undid pin of memory {refund.id}"
    assert kinds(store) == {RULE: True, REFUND: False}
    store.set_pinned(rule.id, False)
    assert store.pinned() == []
    store.undo()
    assert kinds(store) == {RULE: True, REFUND: False}


def test_the_wipe_clears_both_kinds_and_undo_brings_both_back(store):
    store.add(RULE, pinned=True)
    store.add(REFUND)
    assert store.wipe() == 2 and store.list() == [] and store.pinned() == []
    store.undo()
    assert kinds(store) == {RULE: True, REFUND: False}


def test_snapshots_keep_the_kind(store):
    store.add(RULE, pinned=True)
    store.add(REFUND)
    store.snapshot("lesson")
    store.wipe()
    store.add("Something else entirely.", pinned=True)
    store.restore("lesson")
    assert kinds(store) == {RULE: True, REFUND: False}


def test_export_and_import_keep_the_kind(store, tmp_path, embedder):
    store.add(RULE, pinned=True)
    store.add(REFUND)
    path = tmp_path / "export.json"
    store.export(path)
    assert [m["pinned"] for m in json.loads(path.read_text())["memories"]] == [True, False]
    with MemoryStore(tmp_path / "other", embedder) as other:
        other.import_(path)
        assert kinds(other) == {RULE: True, REFUND: False}


def test_an_export_from_before_pinning_imports_as_retrieved(tmp_path, embedder):
    old = {"format": memory_module.EXPORT_FORMAT, "version": 1,
           "memories": [{"text": REFUND, "question": None, "answer": None, "source": "user"}]}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    with MemoryStore(tmp_path / "memory", embedder) as store:
        store.import_(path)
        assert kinds(store) == {REFUND: False}


def test_a_bad_pinned_value_in_an_export_is_one_line_and_imports_nothing(store, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": memory_module.EXPORT_FORMAT, "version": 1,
                                "memories": [{"text": REFUND}, {"text": RULE, "pinned": "yes"}]}))
    with pytest.raises(LabError, match=r"memories\[1\]\.pinned must be true or false"):
        store.import_(path)
    assert store.list() == []


def test_a_store_from_before_pinning_opens_with_every_memory_retrieved(tmp_path, embedder):
    folder = tmp_path / "memory"
    with MemoryStore(folder, embedder) as store:
        store.add(REFUND)
        store.snapshot("old")
    # Rebuild the tables as schema version 1 had them: no pinned column anywhere.
    db = sqlite3.connect(folder / memory_module.DB_FILE)
    for table in ("memories", "archive", "snapshot_memories"):
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})") if row[1] != "pinned"]
        db.execute(f"CREATE TABLE {table}_v1 AS SELECT {', '.join(columns)} FROM {table}")
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE {table}_v1 RENAME TO {table}")
    db.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with MemoryStore(folder, embedder) as store:
        assert kinds(store) == {REFUND: False}
        store.add(RULE, pinned=True)
        store.restore("old")
        assert kinds(store) == {REFUND: False}
        store.undo()
        assert kinds(store) == {REFUND: False, RULE: True}


def test_pinned_hits_are_scored_against_the_question(store, embedder):
    store.add(RULE, pinned=True)
    store.add(REFUND, pinned=True)
    hits = store.pinned_hits(embedder.embed_one("How long is the refund window at Acme Corp?"))
    assert [h.text for h in hits] == [RULE, REFUND] and all(h.pinned for h in hits)
    assert hits[1].score > 0.7 > 0.3 > hits[0].score


# ---- usage signals ------------------------------------------------------------------------------

def test_usage_counts_what_was_sent_tested_and_decisive(store):
    refund, rule = store.add(REFUND), store.add(RULE, pinned=True)
    assert store.usage() == {}
    store.record_use(sent=[refund.id, rule.id])
    store.record_use(sent=[refund.id], tested=[refund.id, rule.id], decisive=[refund.id])
    usage = store.usage()
    assert usage[refund.id].retrievals == 2 and usage[refund.id].tested == 1 and usage[refund.id].decisive == 1
    assert usage[rule.id] == Usage(1, usage[rule.id].last_retrieved_at, 1, 0)
    assert usage[refund.id].last_retrieved_at >= usage[rule.id].last_retrieved_at


def test_usage_is_written_soon_without_asking_and_survives_a_reopen(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(memory_module, "USAGE_FLUSH_S", 0.1)
    folder = tmp_path / "memory"
    with MemoryStore(folder, embedder) as store:
        refund = store.add(REFUND)
        store.record_use(sent=[refund.id])
        time.sleep(1.0)  # the timer writes it; nothing here asked for it
        other = sqlite3.connect(folder / memory_module.DB_FILE)
        assert other.execute("SELECT retrievals FROM usage WHERE id = ?", [refund.id]).fetchone() == (1,)
        other.close()
        store.record_use(sent=[refund.id])  # still pending when the store closes: close writes it
    with MemoryStore(folder, embedder) as store:
        assert store.usage()[refund.id].retrievals == 2


def test_usage_is_not_undone_and_a_deleted_memory_has_none(store):
    refund = store.add(REFUND)
    store.record_use(sent=[refund.id])
    store.delete(refund.id)
    assert store.usage() == {}
    store.undo()  # the same id comes back, with the signals it had earned
    assert store.usage()[refund.id].retrievals == 1
