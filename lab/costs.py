"""What remembering costs, measured: one real remember, timed, in a scratch store.

The Learning page compares the two ways of fixing an answer. Training is timed by the
training itself; remembering must be timed too, and honestly: a sentence the class's
embedding cache already holds costs nothing to embed, which once made the page say
"0.0 ms". So each measurement remembers a sentence nobody wrote before (its number is
new), which is embedded by the model, added to the hnswlib index and saved to SQLite and
the index file, as MemoryStore.add does for a student, in a store of its own under
$LAB_HOME/.shared/ that is removed afterwards: the student's memory and undo history are
never touched.

    timing = time_remember()     # {"ms": 14.2, "at": 1712345678.9}
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import time

_counter = itertools.count()
_last: dict | None = None
_lock = threading.Lock()
FRESH_FOR_S = 60.0  # a page run within this of the last measurement shows it again


def _new_sentence() -> str:
    """A correction no cache can hold: a number never used before in this process, with the clock."""
    n = next(_counter)
    return (f"Correction {os.getpid()}-{time.time_ns()}-{n}: the refund window at Acme Corp is "
            f"{30 + n % 60} days.")


def time_remember(embedder=None) -> dict:
    """Remember one new sentence in a scratch store and time it: {"ms": total, "at": when}."""
    from lab.memory import MemoryStore
    from lab.training_cache import shared_dir

    folder = shared_dir()
    folder.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".remember-timing-", dir=folder)  # a dot name: never a workspace
    try:
        store = MemoryStore(scratch, embedder=embedder)
        try:
            store.embedder.load()  # a first load is start-up, not what remembering costs
            text = _new_sentence()
            started = time.perf_counter()
            store.add(text, question="How long is the refund window at Acme Corp?", answer=text)
            ms = (time.perf_counter() - started) * 1000
        finally:
            store.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"ms": ms, "at": time.time()}


def recent_remember_timing(embedder=None) -> dict:
    """time_remember(), measured again once the last one is over FRESH_FOR_S old: a page that
    reruns every second should not write a scratch store every second."""
    global _last
    with _lock:
        if _last is None or time.time() - _last["at"] > FRESH_FOR_S:
            _last = time_remember(embedder)
        return dict(_last)
