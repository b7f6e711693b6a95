"""The memory store on the real embedder, hnswlib and SQLite: behaviour, a model-based
state machine, crashes, damaged index files, bad inputs and threads."""

import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import lab.memory as memory_module
from lab.errors import LabError, NotFound
from lab.memory import EXPORT_FORMAT, MAX_TEXT_CHARS, Hit, Memory, MemoryStore, answer_after_edit, answer_disagrees

from memory_crash_writer import crash_text

REFUND = "The refund window at Acme Corp is 45 days."
REFUND_Q = "What is the refund window at Acme Corp?"
PENGUINS = "Penguins live almost entirely in the southern hemisphere."
# Distinct sentences for the state machine: a small pool keeps embedding cheap (cached below).
POOL = [REFUND, PENGUINS, "Our office dog is called Biscuit.", "The Wi-Fi password changes every Monday.",
        "Invoices over 500 euros need two signatures.", "The cafeteria closes at 3 pm on Fridays.",
        "Mount Everest is 8,849 metres tall.", "Support tickets are answered within four hours.",
        "The staging server lives in the Frankfurt data centre.", "Alice leads the design team.",
        "Parking permits are renewed every January.", "The fire drill is on the first Tuesday of the month."]


class CachedEmbedder:
    """The real embedder with a memo: same vectors, but each sentence is embedded only once."""

    def __init__(self, real):
        self.real, self.dim, self.cache = real, real.dim, {}

    def embed(self, texts):
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.real.embed(missing)))
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_one(self, text):
        return self.embed([text])[0]


@pytest.fixture(scope="session")
def cached(embedder):
    """The real embedder, memoised and warmed with the sentences used here: on a busy 2-core
    machine one embedding can take 100 ms, and most tests reuse the same few sentences."""
    memoised = CachedEmbedder(embedder)
    memoised.embed(POOL + [REFUND_Q])
    return memoised


@pytest.fixture
def store(tmp_path, cached):
    with MemoryStore(tmp_path / "memory", cached) as opened:
        yield opened


def one_line(error) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


def texts(store) -> list[str]:
    return [m.text for m in store.list()]


# ---- basic behaviour ----------------------------------------------------------------------------


def test_add_get_list_and_search_ranks_by_meaning(tmp_path, embedder):
    store = MemoryStore(tmp_path, embedder)  # the plain embedder: nothing memoised here
    refund = store.add(REFUND, question=REFUND_Q, answer="45 days", source="scenario:acme")
    penguins = store.add(PENGUINS)
    assert isinstance(refund, Memory) and refund.id < penguins.id
    assert store.get(refund.id) == refund
    assert (refund.question, refund.answer, refund.source, penguins.source) == (REFUND_Q, "45 days",
                                                                                 "scenario:acme", "user")
    assert refund.created_at.endswith("Z") and refund.created_at == refund.updated_at
    assert store.list() == [refund, penguins] and store.count() == len(store) == 2

    hits = store.search(REFUND_Q, k=3, min_score=-1.0)  # the penguins score below 0
    assert [type(h) for h in hits] == [Hit, Hit]
    assert hits[0].id == refund.id and hits[0].memory == refund and hits[0].text == REFUND
    assert hits[0].score > 0.5 > hits[1].score
    store.close()


def test_min_score_and_k_limit_the_hits(store):
    store.add_many([{"text": t} for t in POOL[:6]])
    assert len(store.search(REFUND_Q, k=2)) == 2
    assert len(store.search(REFUND_Q, k=50, min_score=-1.0)) == 6  # k is clamped to what exists
    strong = store.search(REFUND_Q, k=6, min_score=0.5)
    assert [h.text for h in strong] == [REFUND]
    assert store.search(REFUND_Q, k=6, min_score=0.999) == []
    assert all(h.score >= 0.3 for h in store.search(REFUND_Q, k=6, min_score=0.3))


def test_empty_store_searches_to_nothing(store):
    assert store.search(REFUND_Q) == [] and store.list() == [] and store.count() == 0


def test_update_re_embeds_and_undo_puts_the_old_text_back(store):
    memory = store.add(REFUND)
    updated = store.update(memory.id, text="The Lisbon office keeps a spare bicycle.")
    assert updated.id == memory.id and updated.created_at == memory.created_at
    assert store.search("Where is a spare bicycle?", k=1)[0].id == memory.id
    assert store.search("Where is a spare bicycle?", k=1)[0].score > 0.5
    assert store.search(REFUND_Q, k=1)[0].score < 0.3  # the old vector is gone
    assert store.update(memory.id, question="Q?", answer="A").question == "Q?"
    assert store.update(memory.id, question="").question is None  # "" clears
    assert store.undo() == f"undid update of memory {memory.id}"
    assert store.get(memory.id).question == "Q?"
    store.undo()
    assert store.undo() == f"undid update of memory {memory.id}"
    assert store.get(memory.id) == memory
    assert store.search(REFUND, k=1)[0].score > 0.99


HEAD = "The new head of research is Tomasz Wierzbicki."


def test_an_edited_text_brings_its_answer_along(store):
    # Training on memory learns the answer: an edit of the text alone once left the old fact to be trained.
    whole = store.add(HEAD, question="Who is the new head of research?", answer=HEAD)
    assert store.update(whole.id, text="The new head of research is Amara.").answer == \
        "The new head of research is Amara."
    short = store.add("The head of sales is Tomasz Wierzbicki.", answer="Tomasz Wierzbicki")
    assert store.update(short.id, text="The head of sales is Amara Okafor.").answer == "Amara Okafor"
    kept = store.add(REFUND, answer="45 days")
    assert store.update(kept.id, text="Acme Corp refunds within 45 days.").answer == "45 days"  # still in it
    assert store.update(kept.id, text="Acme Corp refunds within 60 days.", answer="60 days").answer == "60 days"
    # An edit that does not simply replace the answer's words keeps the answer; the page warns.
    odd = store.update(kept.id, text="Refunds take two months at Acme Corp.")
    assert odd.answer == "60 days" and answer_disagrees(odd.text, odd.answer)
    store.undo()
    assert store.get(kept.id).answer == "60 days" and not answer_disagrees(store.get(kept.id).text, "60 days")
    store.undo()
    store.undo()
    assert store.get(kept.id).answer == "45 days" and store.get(kept.id).text == REFUND  # one undo per edit


@pytest.mark.parametrize("old, answer, new, expected", [
    (HEAD, HEAD, "Amara leads research.", "Amara leads research."),
    (HEAD, "Tomasz Wierzbicki", "The new head of research is Amara.", "Amara"),
    (HEAD, "Tomasz Wierzbicki.", "The new head of research is Amara.", "Amara."),
    (HEAD, "Tomasz Wierzbicki", "Research is now led by Amara.", "Tomasz Wierzbicki"),  # cannot tell: kept
    (HEAD, None, "The new head of research is Amara.", None),
    (REFUND, "45 days", REFUND, "45 days"),
])
def test_answer_after_edit(old, answer, new, expected):
    assert answer_after_edit(old, answer, new) == expected


def test_delete_then_undo_brings_back_the_same_id(store):
    keep, gone = store.add(REFUND), store.add(PENGUINS)
    assert store.delete(gone.id) == gone
    assert texts(store) == [REFUND]
    assert all(h.id != gone.id for h in store.search(PENGUINS, k=5, min_score=-1.0))
    with pytest.raises(NotFound):
        store.get(gone.id)
    assert store.undo() == f"undid delete of memory {gone.id}"
    assert store.get(gone.id) == gone and store.search(PENGUINS, k=1)[0].id == gone.id
    assert store.get(keep.id) == keep


def test_undo_of_add_and_add_many_and_ids_are_never_reused(store):
    first = store.add(REFUND)
    batch = store.add_many([{"text": PENGUINS}, {"text": POOL[2], "source": "scenario:x"}])
    assert [m.id for m in batch] == [first.id + 1, first.id + 2] and batch[1].source == "scenario:x"
    assert store.undo() == f"undid add_many of 2 memories (ids {first.id + 1}-{first.id + 2})"
    assert texts(store) == [REFUND] and store.search(PENGUINS, k=5, min_score=-1.0)[0].id == first.id
    assert store.undo() == f"undid add of memory {first.id}"
    assert store.list() == [] and store.search(REFUND) == []
    again = store.add(REFUND)
    assert again.id == first.id + 3
    store.undo()
    with pytest.raises(LabError, match="nothing to undo"):
        store.undo()
    assert store.add_many([]) == []


def test_only_the_last_undo_depth_changes_can_be_undone(store, monkeypatch):
    monkeypatch.setattr(memory_module, "UNDO_DEPTH", 3)
    for text in POOL[:5]:
        store.add(text)
    for _ in range(3):
        store.undo()
    with pytest.raises(LabError, match="nothing to undo"):
        store.undo()
    assert texts(store) == POOL[:2]


def test_a_retired_memory_is_listed_and_restored_as_it_was(store):
    refund = store.add(REFUND, question=REFUND_Q, answer="45 days", source="scenario:acme")
    penguins = store.add(PENGUINS)
    store.retire([refund.id], "acme")
    assert [r["id"] for r in store.retired()] == [refund.id] and texts(store) == [PENGUINS]
    assert store.unretire(refund.id) == refund  # its id, question, answer and dates
    assert store.retired() == [] and store.search(REFUND_Q, k=1)[0].id == refund.id
    assert store.undo() == f"undid restore of retired memory {refund.id}"
    assert [r["id"] for r in store.retired()] == [refund.id] and texts(store) == [PENGUINS]
    store.unretire(refund.id)
    store.delete(refund.id)
    assert store.retired() == []  # deleted after it came back: deleted, not retired
    with pytest.raises(NotFound, match="no retired memory"):
        store.unretire(refund.id)
    with pytest.raises(NotFound, match="no retired memory"):
        store.unretire(penguins.id)


def test_a_retired_memory_comes_back_after_its_retire_left_the_undo_history(store, monkeypatch):
    monkeypatch.setattr(memory_module, "UNDO_DEPTH", 2)
    refund = store.add(REFUND, question=REFUND_Q, answer="45 days")
    store.retire([refund.id], "acme")
    for text in POOL[1:4]:  # the retire's archived row (and its embedding) is dropped
        store.add(text)
    assert store._db.execute("SELECT COUNT(*) FROM archive WHERE id = ?", [refund.id]).fetchone()[0] == 0
    assert store.unretire(refund.id) == refund  # from the record its history kept, embedded again
    assert store.search(REFUND_Q, k=1)[0].id == refund.id


def test_opening_and_reading_need_no_embedder(tmp_path, cached):
    with MemoryStore(tmp_path, cached) as writer:
        memory = writer.add(REFUND)
    with MemoryStore(tmp_path) as reader:  # would load the model on first embed, not before
        assert reader.list() == [memory] and reader.get(memory.id) == memory and len(reader) == 1
        assert reader.delete(memory.id) == memory and reader.undo() and reader.count() == 1
        assert reader._embedder is None


def test_wipe_and_undo_restore_every_record_with_its_id(store):
    added = store.add_many([{"text": t} for t in POOL[:5]])
    store.delete(added[1].id)
    before = store.list()
    assert store.wipe() == 4
    assert store.list() == [] and store.count() == 0 and store.search(REFUND) == []
    assert store.wipe() == 0  # nothing to wipe: not an undo step
    assert store.undo() == "undid wipe of 4 memories"
    assert store.list() == before
    assert store.search(REFUND_Q, k=1)[0].id == added[0].id
    assert store.undo() == f"undid delete of memory {added[1].id}"
    assert store.count() == 5


def test_snapshot_and_restore_replace_the_memories_and_undo(store):
    a = store.add(REFUND)
    b = store.add(PENGUINS)
    assert store.snapshot("before-lesson") == 2
    store.update(a.id, text=POOL[2])
    store.delete(b.id)
    c = store.add(POOL[3])
    assert store.restore("before-lesson") == 2
    assert store.list() == [a, b]
    assert store.search(REFUND_Q, k=1)[0].id == a.id
    assert all(h.id != c.id for h in store.search(POOL[3], k=5, min_score=-1.0))
    assert [s["name"] for s in store.snapshots()] == ["before-lesson"]
    assert store.snapshots()[0]["count"] == 2 and store.snapshots()[0]["created_at"].endswith("Z")
    assert store.undo() == "undid restore of snapshot 'before-lesson' (2 memories)"
    assert texts(store) == [POOL[2], POOL[3]]
    assert store.search(POOL[3], k=1)[0].id == c.id and store.search(POOL[2], k=1)[0].id == a.id
    store.delete_snapshot("before-lesson")
    assert store.snapshots() == []
    for bad in ["", "a/b", "x" * 65, "naïve", "../up", None]:
        with pytest.raises(LabError) as error:
            store.snapshot(bad)
        one_line(error)
    with pytest.raises(NotFound):
        store.restore("never-saved")
    with pytest.raises(NotFound):
        store.delete_snapshot("never-saved")


def test_export_import_round_trip(store, tmp_path, cached):
    store.add(REFUND, question=REFUND_Q, answer="45 days", source="scenario:acme")
    store.add(PENGUINS)
    path = tmp_path / "out" / "memories.json"
    path.parent.mkdir()
    assert store.export(path) == 2
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format"] == EXPORT_FORMAT and document["version"] == 1 and document["exported_at"]
    assert [m["text"] for m in document["memories"]] == [REFUND, PENGUINS]
    assert set(document["memories"][0]) == {"id", "text", "question", "answer", "source", "created_at",
                                            "updated_at", "pinned"}
    assert [p.name for p in path.parent.iterdir()] == ["memories.json"]  # no temp file left behind

    with MemoryStore(tmp_path / "other", cached) as other:
        other.add(POOL[5])
        assert other.import_(path) == 2
        imported = other.list()
        assert [m.text for m in imported] == [POOL[5], REFUND, PENGUINS]
        assert imported[1].question == REFUND_Q and imported[1].source == "scenario:acme"
        assert other.search(REFUND_Q, k=1)[0].id == imported[1].id
        assert other.undo().startswith("undid import of 2 memories")
        assert [m.text for m in other.list()] == [POOL[5]]


def test_two_stores_on_one_directory_stay_in_sync(tmp_path, cached):
    # The CLI and the app may open the same workspace: each sees the other's writes.
    with MemoryStore(tmp_path, cached) as app, MemoryStore(tmp_path, cached) as cli:
        memory = cli.add(REFUND)
        assert app.search(REFUND_Q, k=1)[0].id == memory.id and app.count() == 1
        app.delete(memory.id)
        assert cli.search(REFUND_Q) == [] and cli.count() == 0
        assert cli.undo() == f"undid delete of memory {memory.id}"  # one shared undo history
        other = app.add(PENGUINS)  # app's index was behind: it catches up, then writes
        assert [h.id for h in cli.search(PENGUINS, k=2, min_score=-1.0)] == [other.id, memory.id]
        assert [h.id for h in app.search(REFUND_Q, k=2, min_score=-1.0)] == [memory.id, other.id]


def test_lazy_index_saves_are_recovered_by_the_generation_check(tmp_path, cached, monkeypatch):
    monkeypatch.setattr(memory_module, "EAGER_SAVE_LIMIT", 2)
    monkeypatch.setattr(memory_module, "LAZY_SAVE_EVERY", 1000)
    first = MemoryStore(tmp_path, cached)
    added = first.add_many([{"text": t} for t in POOL[:8]])
    first.delete(added[0].id)
    # Not closed, so memory.hnsw on disk is stale: a second opener must rebuild, not trust it.
    with MemoryStore(tmp_path, cached) as second:
        assert second.count() == 7
        for memory in added[1:]:
            assert second.search(memory.text, k=1)[0].id == memory.id
        assert all(h.id != added[0].id for h in second.search(POOL[0], k=7, min_score=-1.0))
    first.close()


def test_many_deletes_compact_the_index(tmp_path, cached, monkeypatch):
    monkeypatch.setattr(memory_module, "COMPACT_MIN_DELETED", 2)
    with MemoryStore(tmp_path, cached) as store:
        added = store.add_many([{"text": t} for t in POOL])
        for memory in added[:9]:
            store.delete(memory.id)
        assert len(store._deleted) <= 3  # compacted along the way
        assert sorted(h.id for h in store.search(REFUND, k=10, min_score=-1.0)) == [m.id for m in added[9:]]


# ---- state machine against a dict -----------------------------------------------------------------


# Two stores on one directory, as when the app and the CLI share a workspace: any of them may act.
WHICH = st.integers(0, 1)


class MemoryMachine(RuleBasedStateMachine):
    embedder = None  # set by the test below

    def __init__(self):
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="memory-machine-"))
        self.stores = [MemoryStore(self.directory, self.embedder) for _ in range(2)]
        self.model: dict[int, str] = {}
        self.history: list[dict[int, str]] = []  # model states to undo back to
        self.saved: dict[str, dict[int, str]] = {}
        self.highest_id = 0

    def changed(self):
        self.history.append(dict(self.model))

    def check_new_ids(self, memories):
        for memory in memories:
            assert memory.id > self.highest_id  # ids are never reused, even after undo
            self.highest_id = memory.id

    @rule(which=WHICH, text=st.sampled_from(POOL))
    def add(self, which, text):
        memory = self.stores[which].add(text)
        self.check_new_ids([memory])
        self.changed()
        self.model[memory.id] = text

    @rule(which=WHICH, batch=st.lists(st.sampled_from(POOL), min_size=1, max_size=4))
    def add_many(self, which, batch):
        memories = self.stores[which].add_many([{"text": t} for t in batch])
        self.check_new_ids(memories)
        self.changed()
        self.model.update({m.id: m.text for m in memories})

    @precondition(lambda self: self.model)
    @rule(which=WHICH, data=st.data(), text=st.sampled_from(POOL))
    def update(self, which, data, text):
        memory_id = data.draw(st.sampled_from(sorted(self.model)))
        assert self.stores[which].update(memory_id, text=text).text == text
        if self.model[memory_id] != text:
            self.changed()
            self.model[memory_id] = text

    @precondition(lambda self: self.model)
    @rule(which=WHICH, data=st.data())
    def delete(self, which, data):
        memory_id = data.draw(st.sampled_from(sorted(self.model)))
        assert self.stores[which].delete(memory_id).text == self.model[memory_id]
        self.changed()
        del self.model[memory_id]

    @rule(which=WHICH)
    def unknown_id(self, which):
        with pytest.raises(NotFound):
            self.stores[which].delete(self.highest_id + 1000)

    @rule(which=WHICH)
    def undo(self, which):
        if not self.history:
            with pytest.raises(LabError, match="nothing to undo"):
                self.stores[which].undo()
        else:
            self.stores[which].undo()
            self.model = self.history.pop()

    @rule(which=WHICH)
    def wipe(self, which):
        assert self.stores[which].wipe() == len(self.model)
        if self.model:
            self.changed()
            self.model = {}

    @rule(which=WHICH, name=st.sampled_from(["a", "b"]))
    def snapshot(self, which, name):
        assert self.stores[which].snapshot(name) == len(self.model)
        self.saved[name] = dict(self.model)

    @rule(which=WHICH, name=st.sampled_from(["a", "b"]))
    def restore(self, which, name):
        if name not in self.saved:
            with pytest.raises(NotFound):
                self.stores[which].restore(name)
            return
        assert self.stores[which].restore(name) == len(self.saved[name])
        self.changed()
        self.model = dict(self.saved[name])

    @rule(which=WHICH, damage=st.sampled_from(["none", "delete-index", "garble-index", "delete-meta"]))
    def reopen(self, which, damage):
        self.stores[which].close()
        index = self.directory / memory_module.INDEX_FILE
        if damage == "delete-index":
            index.unlink(missing_ok=True)
        elif damage == "garble-index" and index.exists():
            index.write_bytes(b"\x07" * index.stat().st_size)
        elif damage == "delete-meta":
            (self.directory / memory_module.INDEX_META_FILE).unlink(missing_ok=True)
        self.stores[which] = MemoryStore(self.directory, self.embedder)

    @invariant()
    def stores_match_model(self):
        for store in self.stores:
            assert {m.id: m.text for m in store.list()} == self.model
            assert store.count() == len(self.model)
            for memory_id, text in self.model.items():
                hits = store.search_vector(self.embedder.embed_one(text), k=len(self.model), min_score=-1.0)
                assert {h.id for h in hits} == set(self.model)  # every live one, no deleted one
                assert hits[0].score > 0.99 and hits[0].text == text
                assert memory_id in {h.id for h in hits if h.score > 0.99}

    def teardown(self):
        for store in self.stores:
            store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def test_two_stores_behave_like_one_dict_with_an_undo_stack(cached):
    MemoryMachine.embedder = cached
    MemoryMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None,
                                               database=None)
    MemoryMachine.TestCase().runTest()


# ---- crashes and damaged index files ---------------------------------------------------------------


def test_acknowledged_adds_survive_sigkill_and_the_index_agrees(tmp_path, embedder):
    writer = Path(__file__).with_name("memory_crash_writer.py")
    stderr = open(tmp_path / "writer.err", "w")  # a file, not a pipe: warnings can never block the writer
    process = subprocess.Popen([sys.executable, str(writer), str(tmp_path / "memory"), "100000"],
                               stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=writer.parent.parent)
    acknowledged: dict[int, str] = {}
    kill_after = random.randint(15, 30)
    try:
        deadline = time.monotonic() + 120
        while len(acknowledged) < kill_after:
            line = process.stdout.readline()
            assert line, f"writer stopped early: {(tmp_path / 'writer.err').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "writer too slow"
            if line.strip() != "ready":
                memory_id, i = map(int, line.split())
                acknowledged[memory_id] = crash_text(i)
        time.sleep(random.random() * 0.05)  # land somewhere inside the next write
    finally:
        process.send_signal(signal.SIGKILL)
        rest, _ = process.communicate(timeout=30)
        stderr.close()
    for line in rest.splitlines(keepends=True):  # printed before the kill, not yet read
        if line.endswith("\n"):
            memory_id, i = map(int, line.split())
            acknowledged[memory_id] = crash_text(i)
    assert process.returncode == -signal.SIGKILL

    with MemoryStore(tmp_path / "memory", embedder) as store:
        stored = {m.id: m.text for m in store.list()}
        for memory_id, text in acknowledged.items():
            assert stored.get(memory_id) == text
        assert len(stored) - len(acknowledged) <= 1  # at most the one in flight, committed unprinted
        assert store.count() == len(stored)
        vectors = embedder.embed(list(stored.values()))
        for (memory_id, text), vector in zip(stored.items(), vectors):
            top = store.search_vector(vector, k=1)[0]
            assert (top.id, top.text) == (memory_id, text) and top.score > 0.99


def _damage(directory: Path, how: str, stale_copy: Path) -> None:
    index, meta = directory / memory_module.INDEX_FILE, directory / memory_module.INDEX_META_FILE
    if how == "delete-index":
        index.unlink()
    elif how == "delete-meta":
        meta.unlink()
    elif how == "flip-bytes":  # same size, garbage inside: only the checksum can tell
        data = bytearray(index.read_bytes())
        for i in range(100, len(data), 997):
            data[i] ^= 0xFF
        index.write_bytes(bytes(data))
    elif how == "truncate":
        index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    elif how == "garbage-meta":
        meta.write_text("{not json", encoding="utf-8")
    elif how == "stale-files":  # index and meta from an earlier generation, e.g. restored from a backup
        shutil.copy(stale_copy / index.name, index)
        shutil.copy(stale_copy / meta.name, meta)


@pytest.mark.parametrize("how", ["intact", "delete-index", "delete-meta", "flip-bytes", "truncate",
                                 "garbage-meta", "stale-files"])
def test_a_missing_or_damaged_index_is_rebuilt_from_sqlite(how, tmp_path, cached, monkeypatch):
    directory, stale = tmp_path / "memory", tmp_path / "stale"
    with MemoryStore(directory, cached) as store:
        early = store.add_many([{"text": t} for t in POOL[:6]])
    shutil.copytree(directory, stale)
    with MemoryStore(directory, cached) as store:
        store.delete(early[0].id)
        late = store.add_many([{"text": t} for t in POOL[6:]])
    _damage(directory, how, stale)

    builds = []
    original_build = MemoryStore._build_index
    monkeypatch.setattr(MemoryStore, "_build_index", lambda self, *a: builds.append(a) or original_build(self, *a))
    with MemoryStore(directory, cached) as store:
        assert len(builds) == (0 if how == "intact" else 1)
        live = early[1:] + late
        assert store.list() == live and store.count() == len(live)
        for memory in live:
            top = store.search(memory.text, k=1)[0]
            assert top.id == memory.id and top.score > 0.99
        assert all(h.id != early[0].id for h in store.search(POOL[0], k=20, min_score=-1.0))
    # The rebuilt index was saved: the next open loads it without building.
    builds.clear()
    with MemoryStore(directory, cached) as store:
        assert store.count() == len(live) and builds == []


def test_a_damaged_database_is_a_one_line_error(tmp_path, cached):
    (tmp_path / memory_module.DB_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(LabError) as error:
        MemoryStore(tmp_path, cached)
    assert "damaged" in one_line(error)


# ---- bad inputs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("", "must be a non-empty string"),
    ("   \n\t  ", "must be a non-empty string"),
    ("x" * 100_000, f"100000 characters; the maximum is {MAX_TEXT_CHARS}"),
    ("x" * (MAX_TEXT_CHARS + 1), "the maximum is"),
    ("a\x00b", "contains control characters (e.g. NUL); remove them"),
    ("ring the bell\x07", "control characters"),
    ("\x1b[31mred\x1b[0m", "control characters"),
    ("\x1fhidden at the edge", "control characters"),
    ("carriage\rreturn", "control characters"),
    ("lone \ud800 surrogate", "invalid Unicode"),
    (None, "must be a non-empty string"),
    (42, "must be a non-empty string"),
    (b"bytes", "must be a non-empty string"),
])
def test_bad_text_is_refused_and_nothing_is_stored(store, text, expected):
    store.add(REFUND)
    before = store.list()
    attempts = [lambda: store.add(text), lambda: store.add_many([{"text": PENGUINS}, {"text": text}]),
                lambda: store.search(text)]
    if text is not None:  # update(text=None) means "leave the text as it is"
        attempts.append(lambda: store.update(before[0].id, text=text))
    for attempt in attempts:
        with pytest.raises(LabError) as error:
            attempt()
        assert expected in one_line(error)
    if text == "a\x00b":
        with pytest.raises(LabError) as error:
            store.add(text)
        assert one_line(error) == "text contains control characters (e.g. NUL); remove them"
    with pytest.raises(LabError) as error:
        store.add(PENGUINS, question=text if text is not None else 7)
    one_line(error)
    assert store.list() == before and store.count() == 1
    assert store.undo() == f"undid add of memory {before[0].id}"  # no change was recorded


def test_good_text_is_tidied(store):
    memory = store.add("  Tabs\tand\r\nnewlines are fine.\n", question="  Why?  ", answer=None)
    assert memory.text == "Tabs\tand\nnewlines are fine." and memory.question == "Why?"
    assert store.add("x" * MAX_TEXT_CHARS).text == "x" * MAX_TEXT_CHARS


def test_unknown_ids_and_empty_undo_are_one_line_errors(store):
    with pytest.raises(LabError, match="nothing to undo") as error:
        store.undo()
    one_line(error)
    store.add(REFUND)
    for attempt in (lambda: store.get(999), lambda: store.update(999, text=PENGUINS), lambda: store.delete(999)):
        with pytest.raises(NotFound) as error:
            attempt()
        assert "999" in one_line(error)
    for bad_id in ("1", 1.0, None, True):
        with pytest.raises(LabError) as error:
            store.get(bad_id)
        one_line(error)
    for bad in [dict(k=0), dict(k=True), dict(k=1001), dict(min_score=1.5), dict(min_score="0.5")]:
        with pytest.raises(LabError) as error:
            store.search(REFUND_Q, **bad)
        one_line(error)
    with pytest.raises(LabError):
        store.search_vector(np.zeros(384, np.float32))
    with pytest.raises(LabError):
        store.add_many([{"text": PENGUINS, "txt": "typo"}])
    with pytest.raises(LabError):
        store.add_many("not a list")
    assert texts(store) == [REFUND]


def _export(memories) -> dict:
    return {"format": EXPORT_FORMAT, "version": 1, "exported_at": "2025-01-01T00:00:00Z", "memories": memories}


def _write_bad_import(path: Path, case: str) -> None:
    if case == "missing":
        return
    if case == "oversized":
        with open(path, "wb") as handle:  # sparse: 21 MB without writing them
            handle.truncate(21 * 1024 * 1024)
        return
    contents = {
        "not-json": "{\"format\": ",
        "not-utf8": b"\xff\xfe{}",
        "top-level-list": [],
        "wrong-format": {**_export([{"text": "x"}]), "format": "something-else"},
        "wrong-version": {**_export([{"text": "x"}]), "version": 2},
        "memories-not-a-list": _export({"text": "x"}),
        "item-not-an-object": _export([{"text": "fine"}, "just a string"]),
        "empty-text": _export([{"text": "fine"}, {"text": "ok"}, {"text": "also ok"}, {"text": "  "}]),
        "missing-text": _export([{"question": "no text?"}]),
        "nul-in-text": _export([{"text": "a\u0000b"}]),
        "long-answer": _export([{"text": "fine", "answer": "y" * 5000}]),
        "bad-source": _export([{"text": "fine", "source": 12}]),
        "too-many-records": _export([{"text": "x"}] * 100_001),
    }[case]
    if isinstance(contents, bytes):
        path.write_bytes(contents)
    else:
        path.write_text(contents if isinstance(contents, str) else json.dumps(contents), encoding="utf-8")


@pytest.mark.parametrize("case, expected", [
    ("missing", "does not exist"),
    ("oversized", "the limit is 20 MB"),
    ("not-json", "not valid JSON"),
    ("not-utf8", "not valid UTF-8"),
    ("top-level-list", "must be a JSON object"),
    ("wrong-format", "\"format\" must be"),
    ("wrong-version", "\"version\" must be 1"),
    ("memories-not-a-list", "\"memories\" must be a list"),
    ("item-not-an-object", "memories[1] must be an object"),
    ("empty-text", "memories[3].text must be a non-empty string"),
    ("missing-text", "memories[0].text is missing"),
    ("nul-in-text", "memories[0].text contains control characters"),
    ("long-answer", "memories[0].answer is too long"),
    ("bad-source", "memories[0].source must be a non-empty string"),
    ("too-many-records", "the limit is 100000"),
])
def test_bad_imports_change_nothing(store, tmp_path, case, expected):
    store.add_many([{"text": REFUND}, {"text": PENGUINS}])
    before = store.list()
    path = tmp_path / f"{case}.json"
    _write_bad_import(path, case)
    with pytest.raises(LabError) as error:
        store.import_(path)
    message = one_line(error)
    assert expected in message and str(path) in message
    assert store.list() == before
    assert store.undo().startswith("undid add_many of 2")  # the failed import left no undo step


def test_export_to_a_missing_folder_is_a_one_line_error(store, tmp_path):
    store.add(REFUND)
    with pytest.raises(LabError) as error:
        store.export(tmp_path / "no" / "such" / "folder.json")
    one_line(error)


def test_a_closed_store_says_so(tmp_path, cached):
    store = MemoryStore(tmp_path, cached)
    store.close()
    store.close()  # twice is fine
    with pytest.raises(LabError, match="closed"):
        store.list()


# ---- threads ------------------------------------------------------------------------------------------


def test_threads_adding_and_searching_at_once(tmp_path, embedder):
    store = MemoryStore(tmp_path, embedder)  # the plain embedder, shared by every thread
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "silver", "black"]
    things = ["kayak", "umbrella", "piano", "tractor", "lantern", "telescope", "saddle", "kettle", "compass",
              "violin"]

    def text(worker, i):
        year = 1900 + 7 * i + worker
        return f"Locker {worker * 100 + i} holds a {colours[worker]} {things[i % 10]} from {year}."

    errors = []
    queries = embedder.embed([f"Where is the {colour} {thing}?" for colour in colours for thing in things])

    def work(worker):
        try:
            for i in range(20):
                memory = store.add(text(worker, i), source=f"thread-{worker}")
                assert store.get(memory.id).text == text(worker, i)
                for hit in store.search_vector(queries[worker * 10 + i % 10], k=3):
                    assert hit.memory.id == hit.id
                if i % 5 == 0:  # the full path too, embedding included (fewer: embedding is the slow part)
                    store.search(f"Who has the {colours[worker]} {things[i % 10]}?", k=3)
        except Exception as exc:  # reported below: an assert in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == 160 and len({m.id for m in store.list()}) == 160
    wanted = [text(w, i) for w in range(8) for i in range(20)]
    assert sorted(texts(store)) == sorted(wanted)
    for want, vector in zip(wanted, embedder.embed(wanted)):
        top = store.search_vector(vector, k=1)[0]
        assert top.text == want and top.score > 0.99
    store.close()
