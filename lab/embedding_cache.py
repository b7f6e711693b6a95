"""The class's embedding cache: a text is embedded once for every session on one LAB_HOME.

Thirty students remembering a bundled scenario's corrections, and evaluating on its
questions, embed the very same texts. The embedder is deterministic, so a vector can be
kept and handed to anyone embedding the same text under the same embedder. It also spares
a new process the embedder itself: loading sentence-transformers and torch takes seconds,
and a wipe test whose texts were all embedded before never needs them.

The key is exactly what determines the vectors: the embedder's content hash (every file in
its folder), how they were computed ("one": a text alone; "batch": a list embedded together,
whose padding can round a vector differently from the same text alone), and the texts.
The file lives beside the reply cache under LAB_HOME/.shared/ and shares its rules
(lab/sqlite_cache.py): bounded, least recently used first, kept across restarts, and a
damaged file is set aside, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from lab.sqlite_cache import SqliteCache

RECIPE = "sentence-transformers-normalised-float32-1"
MAX_ENTRIES = int(os.environ.get("LAB_EMBEDDING_CACHE_ENTRIES", "100000"))  # about 160 MB at most
FILE_NAME = "embeddings.sqlite"


def embedder_hash(folder: str | os.PathLike) -> str:
    """sha256 over every file of an embedder's folder, names included (about 0.15 s for
    MiniLM's 88 MB, once per process)."""
    from lab.reply_cache import file_hash

    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode("utf-8"))
        digest.update(file_hash(path).encode("ascii"))
    return digest.hexdigest()


def embedding_key(*, embedder: str, kind: str, texts: list[str]) -> str:
    material = json.dumps([RECIPE, embedder, kind, list(texts)], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class EmbeddingCache(SqliteCache):
    """(n, dim) float32 arrays by key."""

    TABLE = "embeddings"
    SCHEMA = ("CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, rows INTEGER NOT NULL, "
              "vectors BLOB NOT NULL, used_at REAL)",
              "CREATE INDEX IF NOT EXISTS embeddings_used ON embeddings(used_at)")
    WHAT = "embedding cache"

    def __init__(self, path: Path, max_entries: int = MAX_ENTRIES):
        super().__init__(path, max_entries)

    def get(self, key: str, dim: int) -> np.ndarray | None:
        def read(db):
            row = db.execute("SELECT rows, vectors FROM embeddings WHERE key = ?", (key,)).fetchone()
            if row is not None:
                db.execute("UPDATE embeddings SET used_at = ? WHERE key = ?", (time.time(), key))
            return row

        row = self._run(read, None)
        if row is None or not isinstance(row[1], bytes) or len(row[1]) != int(row[0]) * dim * 4:
            self.misses += 1
            return None
        self.hits += 1
        return np.frombuffer(row[1], dtype=np.float32).reshape(int(row[0]), dim).copy()

    def put(self, key: str, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)

        def write(db):
            db.execute("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
                       (key, int(vectors.shape[0]), vectors.tobytes(), time.time()))
            self._trim(db)

        self._run(write, None)


_caches: dict[Path, EmbeddingCache] = {}
_caches_lock = threading.Lock()


def shared_cache(home: Path | None = None) -> EmbeddingCache:
    """The embedding cache of the LAB_HOME in effect now (tests give each test its own)."""
    from lab.workspace import home as lab_home

    path = ((home or lab_home()) / ".shared" / FILE_NAME).resolve()
    with _caches_lock:
        if path not in _caches:
            _caches[path] = EmbeddingCache(path)
        return _caches[path]


def enabled() -> bool:
    """LAB_EMBEDDING_CACHE=0 turns it off (a benchmark timing the embedder itself)."""
    return os.environ.get("LAB_EMBEDDING_CACHE", "1").strip().lower() not in ("0", "off", "false", "no")
