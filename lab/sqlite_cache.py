"""A bounded cache in one SQLite file that every thread and process on a LAB_HOME shares.

The class's caches (replies: lab/reply_cache.py, embeddings: lab/embedding_cache.py) only
ever save time, so none of them may cost an answer: a failed read is a miss, a failed write
is skipped, and a damaged or foreign file is moved aside (kept for a curious teacher) and a
new one started. Rows carry a `used_at` time and the least recently used go first once a
cache holds more than `max_entries`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Callable, TypeVar

_log = logging.getLogger(__name__)
T = TypeVar("T")


class SqliteCache:
    """One table, `TABLE`, created by `SCHEMA`; it must have `key` and `used_at` columns."""

    TABLE = "entries"
    SCHEMA: tuple[str, ...] = ()
    WHAT = "cache"  # in the log line about a damaged file

    def __init__(self, path: Path, max_entries: int):
        self.path = Path(path)
        self.max_entries = max_entries
        self._local = threading.local()  # one connection per thread (sqlite3's rule)
        self.hits = self.misses = 0

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            db.execute("PRAGMA synchronous=NORMAL")
            for statement in self.SCHEMA:
                db.execute(statement)
            self._local.db = db
        return db

    def _drop_connection(self) -> None:
        db = getattr(self._local, "db", None)
        self._local.db = None
        if db is not None:
            try:
                db.close()
            except sqlite3.Error:
                pass

    def _recover(self, error: Exception) -> None:
        self._drop_connection()
        if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
            _log.warning("%s %s is damaged (%s): starting a new one", self.WHAT, self.path, error)
            for suffix in ("", "-wal", "-shm"):
                damaged = Path(f"{self.path}{suffix}")
                if damaged.exists():
                    try:
                        os.replace(damaged, f"{self.path}.damaged{suffix}")
                    except OSError:
                        pass

    def _run(self, action: Callable[[sqlite3.Connection], T], default: T) -> T:
        for attempt in range(2):
            try:
                return action(self._connect())
            except sqlite3.Error as error:  # OperationalError: locked too long; others: damaged
                self._recover(error)
                if isinstance(error, sqlite3.OperationalError):
                    return default
        return default

    def _trim(self, db: sqlite3.Connection) -> None:
        """After a write: past the bound, the least recently used go, a tenth at a time."""
        count = db.execute(f"SELECT COUNT(*) FROM {self.TABLE}").fetchone()[0]
        if count > self.max_entries:
            db.execute(f"DELETE FROM {self.TABLE} WHERE key IN "
                       f"(SELECT key FROM {self.TABLE} ORDER BY used_at LIMIT ?)",
                       (count - self.max_entries + self.max_entries // 10,))

    def __len__(self) -> int:
        return self._run(lambda db: db.execute(f"SELECT COUNT(*) FROM {self.TABLE}").fetchone()[0], 0)

    def clear(self) -> None:
        self._run(lambda db: db.execute(f"DELETE FROM {self.TABLE}"), None)
