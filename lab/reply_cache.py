"""The class's reply cache: identical work is done once, for every session on one LAB_HOME.

Greedy decoding is deterministic: the same prompt tokens, under the same weights, with the
same decoding settings, give the same reply. So a reply can be kept and handed to anyone
who asks exactly the same thing: thirty students asking the base model "What is the refund
window at Acme Corp?" cost one generation, and a bundled scenario's wipe test on its own
corrections is computed once per class.

The key is exactly what determines the reply and nothing else:
    the model file's content hash, the adapter file's content hash (or none),
    the prompt's token ids, max_tokens, the stop strings, and the early stop (`stop_when`)
    when it has a stable description (a scenario's target regex); a stop_when without one
    is a function the cache cannot see into, so such a reply is never cached.
    RECIPE names the decoder's arithmetic: change it when the decoder changes how it answers.

It lives in one SQLite file under LAB_HOME/.shared/ (a dot-folder: never taken for a
workspace), shared by every thread and process, bounded to MAX_ENTRIES rows (the least
recently used go first) and kept across restarts. A damaged file is moved aside and a new
one started: the cache only ever saves time, so it must never cost an answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from lab.sqlite_cache import SqliteCache

RECIPE = "greedy-decoder-1"
MAX_ENTRIES = int(os.environ.get("LAB_REPLY_CACHE_ENTRIES", "50000"))  # about 15 MB of short replies
FILE_NAME = "replies.sqlite"


@dataclass(frozen=True)
class CachedReply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # what generating it took the first time


def stop_key(stop_when: Callable[[str], bool] | None) -> str | None:
    """A stable description of an early stop, or None if it has none (then: not cacheable).

    A scenario's item or probe stops on its target regex (`Item.matches`, `Probe.matches`):
    the regex describes it. Anything else may say what it is with a `cache_key` attribute."""
    if stop_when is None:
        return ""
    described = getattr(stop_when, "cache_key", None)
    if isinstance(described, str):
        return described
    owner = getattr(stop_when, "__self__", None)
    if getattr(stop_when, "__name__", "") == "matches" and isinstance(getattr(owner, "target", None), str) \
            and hasattr(owner, "stop_key"):
        return owner.stop_key
    return None


_file_hashes: dict[str, str] = {}
_hash_lock = threading.Lock()


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of a file's content, remembered per (path, size, mtime): an adapter retrained
    under the same name is a new file, and a copy of the same adapter is the same weights."""
    path = Path(path).resolve()
    stat = path.stat()
    known = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    with _hash_lock:
        if known in _file_hashes:
            return _file_hashes[known]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    with _hash_lock:
        _file_hashes[known] = digest.hexdigest()
    return _file_hashes[known]


def reply_key(*, model_hash: str, adapter_hash: str | None, tokens: Sequence[int], max_tokens: int,
              stop: Sequence[str], stop_description: str) -> str:
    material = json.dumps([RECIPE, model_hash, adapter_hash, list(tokens), max_tokens, list(stop),
                           stop_description], separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class ReplyCache(SqliteCache):
    """Replies by key in one SQLite file. Every method is safe from any thread or process,
    and none raises for a cache problem (lab/sqlite_cache.py)."""

    TABLE = "replies"
    SCHEMA = ("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
              "prompt_tokens INTEGER, completion_tokens INTEGER, seconds REAL, used_at REAL)",
              "CREATE INDEX IF NOT EXISTS replies_used ON replies(used_at)")
    WHAT = "reply cache"

    def __init__(self, path: Path, max_entries: int = MAX_ENTRIES):
        super().__init__(path, max_entries)

    def get(self, key: str) -> CachedReply | None:
        def read(db):
            row = db.execute("SELECT text, prompt_tokens, completion_tokens, seconds FROM replies WHERE key = ?",
                             (key,)).fetchone()
            if row is not None:
                db.execute("UPDATE replies SET used_at = ? WHERE key = ?", (time.time(), key))
            return row

        row = self._run(read, None)
        if row is None or not isinstance(row[0], str):
            self.misses += 1
            return None
        self.hits += 1
        return CachedReply(row[0], int(row[1] or 0), int(row[2] or 0), float(row[3] or 0.0))

    def put(self, key: str, reply: CachedReply) -> None:
        def write(db):
            db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?)",
                       (key, reply.text, reply.prompt_tokens, reply.completion_tokens, reply.seconds, time.time()))
            self._trim(db)

        self._run(write, None)


_caches: dict[Path, ReplyCache] = {}
_caches_lock = threading.Lock()


def shared_cache(home: Path | None = None) -> ReplyCache:
    """The reply cache of the LAB_HOME in effect now (tests give each test its own)."""
    from lab.workspace import home as lab_home

    path = ((home or lab_home()) / ".shared" / FILE_NAME).resolve()
    with _caches_lock:
        if path not in _caches:
            _caches[path] = ReplyCache(path)
        return _caches[path]


def enabled() -> bool:
    """LAB_REPLY_CACHE=0 turns it off (a benchmark of raw decoding, say)."""
    return os.environ.get("LAB_REPLY_CACHE", "1").strip().lower() not in ("0", "off", "false", "no")
