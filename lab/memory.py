"""The memory: facts and corrections kept *outside* the model and found again by meaning.

Each memory is a row in SQLite (`memory.db`, the source of truth) with its embedding
stored beside it, plus a vector in an hnswlib index (`memory.hnsw`) that makes search
fast. The index is only a cache. A generation number, bumped in the same transaction as
every write, says whether the index in this process or on disk still matches the
database; when it does not (a crash, another process wrote, a damaged file) the index is
rebuilt from the stored embeddings. It is never re-embedded and never left to drift.

Every change can be undone: rows that a change removes or overwrites are archived with
it, and `undo()` puts them back with their original ids.

    store = MemoryStore(Workspace.open().memory_dir)
    store.add("The refund window at Acme Corp is 45 days.")
    store.search("How long is the Acme refund window?", k=3)  # -> [Hit(id=1, score=0.8, ...)]
"""

from __future__ import annotations

import json
import numbers
import os
import re
import sqlite3
import threading
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import hnswlib
import numpy as np

from lab.embedder import DIM, Embedder, get_embedder
from lab.errors import LabError, NotFound
from lab.plural import plural

try:
    import fcntl  # serialises index saves between processes; missing on Windows
except ImportError:  # pragma: no cover
    fcntl = None

# ---- limits --------------------------------------------------------------------------
MAX_TEXT_CHARS = 2000
MAX_SOURCE_CHARS = 200
MAX_K = 1000
UNDO_DEPTH = 100  # changes that can be undone; older ones lose their archived rows
# ---- files -------------------------------------------------------------------------------
DB_FILE = "memory.db"
INDEX_FILE = "memory.hnsw"
INDEX_META_FILE = "memory.hnsw.json"
LOCK_FILE = "memory.hnsw.lock"
INDEX_FORMAT = "memory-vs-learning-lab/hnsw-index"
# ---- export / import ------------------------------------------------------------------------
EXPORT_FORMAT = "memory-vs-learning-lab/memories"
EXPORT_VERSION = 1
MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_IMPORT_MEMORIES = 100_000
# ---- hnswlib ---------------------------------------------------------------------------------
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
MIN_QUERY_EF = 128
EAGER_SAVE_LIMIT = 10_000  # up to this many vectors the index file is saved after every write
LAZY_SAVE_EVERY = 500  # above it, every this many writes (and on flush/close): a crash only costs a rebuild
COMPACT_MIN_DELETED = 1000  # rebuild once deleted vectors outnumber live ones and this
BUSY_TIMEOUT_S = 10.0  # how long to wait for another process's write to finish

# C0 control characters except tab (\x09) and newline (\x0a).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


# ---- pure helpers --------------------------------------------------------------------------


def validate_text(value, field: str = "text", optional: bool = False,
                  max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """Return `value` cleaned (CRLF -> LF, stripped), or raise a one-line LabError naming `field`.

    validate_text("  Refunds take 45 days.\\r\\n") -> "Refunds take 45 days."
    validate_text(None, "question", optional=True) -> None
    validate_text("a\\x00b") -> LabError("text contains control characters (e.g. NUL); remove them")
    """
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise LabError(f"{field} must be a non-empty string, not {type(value).__name__}")
    value = value.replace("\r\n", "\n")
    # Checked before strip(): Python counts \x1c-\x1f as whitespace and would hide them.
    if _CONTROL.search(value):
        raise LabError(f"{field} contains control characters (e.g. NUL); remove them")
    value = value.strip()
    if not value:
        raise LabError(f"{field} must be a non-empty string (it is empty or only whitespace)")
    if len(value) > max_chars:
        raise LabError(f"{field} is too long: {len(value)} characters; the maximum is {max_chars}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise LabError(f"{field} contains invalid Unicode (a lone surrogate); remove it") from None
    return value


def answer_after_edit(old_text: str, answer: str | None, new_text: str) -> str | None:
    """The answer a memory should keep when its text changes from `old_text` to `new_text`
    and nobody typed a new answer: training on memory learns the answer, so an edit that
    left the old one behind would train the old fact.

    The answer was the whole text: the new text. The answer is still in the new text: kept.
    The edit replaced just the answer's words: the words that replaced them. Otherwise the
    answer is kept as it was, and `answer_disagrees` says so.

    answer_after_edit("Dana leads it.", "Dana leads it.", "Amara leads it.") -> "Amara leads it."
    answer_after_edit("The head is Tomasz Wierzbicki.", "Tomasz Wierzbicki", "The head is Amara.") -> "Amara"
    answer_after_edit("It is 45 days.", "45 days", "Refunds: 45 days.") -> "45 days"
    """
    if answer is None or old_text == new_text:
        return answer
    if answer.strip() == old_text.strip():
        return new_text
    if not answer_disagrees(new_text, answer):
        return answer
    if old_text.count(answer) == 1:
        before, after = old_text.split(answer)
        if new_text.startswith(before) and new_text.endswith(after):
            replaced = new_text[len(before):len(new_text) - len(after)].strip()
            if replaced:
                return replaced
    return answer


def answer_disagrees(text: str, answer: str | None) -> bool:
    """Whether a memory's answer says something its text does not: the answer's words
    (case and end punctuation aside) are not in the text.

    answer_disagrees("The head is Amara.", "Tomasz Wierzbicki") -> True
    answer_disagrees("The refund window is 45 days.", "45 days.") -> False
    """
    if not answer or not answer.strip():
        return False
    words = answer.strip().rstrip(".!?").strip().lower()
    return bool(words) and words not in text.lower()


def validate_snapshot_name(name) -> str:
    """Return `name` if it is 1-64 characters of letters, digits, '_', '.' or '-'."""
    if not isinstance(name, str) or not _SNAPSHOT_NAME.match(name):
        raise LabError(f"invalid snapshot name {str(name)[:70]!r}: use 1-64 letters, digits, '_', '.' or '-'")
    return name


def read_export(path: Path) -> list[tuple[str, str | None, str | None, str, bool]]:
    """Read and fully validate an export file: a (text, question, answer, source, pinned) per memory
    (a file from before pinning existed holds retrieved memories only).

    Raises a LabError naming the file and the first problem, e.g.
    "cannot import x.json: memories[3].text must be a non-empty string (it is empty ...)".
    """
    path = Path(path)

    def fail(problem: str):
        raise LabError(f"cannot import {path}: {problem}")

    if not path.exists():
        raise NotFound(f"cannot import {path}: the file does not exist")
    if not path.is_file():
        fail("it is not a file")
    size = path.stat().st_size
    if size > MAX_IMPORT_BYTES:
        fail(f"the file is {size / 1e6:.1f} MB; the limit is {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
    try:
        raw = path.read_bytes()
        document = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        fail(f"it could not be read ({exc.strerror})")
    except UnicodeDecodeError as exc:
        fail(f"it is not valid UTF-8 (byte {exc.start})")
    except json.JSONDecodeError as exc:
        fail(f"it is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
    except RecursionError:
        fail("it is not valid JSON (nested too deeply)")
    if not isinstance(document, dict):
        fail("the top level must be a JSON object")
    if document.get("format") != EXPORT_FORMAT:
        fail(f"\"format\" must be {EXPORT_FORMAT!r}, not {str(document.get('format'))[:60]!r}")
    if document.get("version") != EXPORT_VERSION or isinstance(document.get("version"), bool):
        fail(f"\"version\" must be {EXPORT_VERSION}, not {str(document.get('version'))[:20]!r}")
    memories = document.get("memories")
    if not isinstance(memories, list):
        fail(f"\"memories\" must be a list, not {type(memories).__name__}")
    if len(memories) > MAX_IMPORT_MEMORIES:
        fail(f"it holds {len(memories)} memories; the limit is {MAX_IMPORT_MEMORIES}")
    records = []
    for i, item in enumerate(memories):
        if not isinstance(item, dict):
            fail(f"memories[{i}] must be an object, not {type(item).__name__}")
        if "text" not in item:
            fail(f"memories[{i}].text is missing")
        try:
            records.append(_clean_record(item, f"memories[{i}]", default_source="import"))
        except LabError as exc:
            fail(str(exc))
    return records


def _clean_record(item: dict, where: str, default_source: str) -> tuple[str, str | None, str | None, str, bool]:
    """Validate one {text, question, answer, source, pinned} dict; errors name fields as `where.text` etc."""
    prefix = f"{where}." if where else ""
    source, pinned = item.get("source"), item.get("pinned", False)
    if not isinstance(pinned, bool):
        raise LabError(f"{prefix}pinned must be true or false, not {str(pinned)[:20]!r}")
    return (validate_text(item.get("text"), f"{prefix}text"),
            validate_text(item.get("question"), f"{prefix}question", optional=True),
            validate_text(item.get("answer"), f"{prefix}answer", optional=True),
            default_source if source is None else validate_text(source, f"{prefix}source",
                                                                max_chars=MAX_SOURCE_CHARS),
            pinned)


def _check_id(memory_id) -> int:
    if isinstance(memory_id, bool) or not isinstance(memory_id, numbers.Integral):
        raise LabError(f"a memory id must be a whole number, not {str(memory_id)[:40]!r}")
    return int(memory_id)


def _now() -> str:
    """Current UTC time as ISO 8601, e.g. '2025-01-31T12:00:00.123Z'."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def _write_atomically(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a temp file beside `path` and rename it over: readers see the old or the new file."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


@contextmanager
def _file_lock(path: Path):
    """An exclusive lock between processes, held while the block runs."""
    with open(path, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


# ---- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """One stored memory. `source` says where it came from: "user", "scenario:acme", "import".
    A `pinned` memory goes into every prompt of the memory arms (the way agent products keep
    rules and preferences always in context); the others are retrieved when they score high."""

    id: int
    text: str
    question: str | None
    answer: str | None
    source: str
    created_at: str
    updated_at: str
    pinned: bool = False

    @property
    def kind(self) -> str:
        return "pinned" if self.pinned else "retrieved"


def _memory(row) -> Memory:
    """A Memory from a row of _FIELDS (SQLite keeps `pinned` as 0 or 1)."""
    return Memory(*row[:7], bool(row[7]))


@dataclass(frozen=True)
class Usage:
    """How a memory has served: sent into an answer (`retrievals`, pinned ones included), and
    left out by *Why?* to see whether the answer changes (`tested`, and `decisive`: it did).
    Signals, not history: they are not undone and take no part in snapshots."""

    retrievals: int = 0
    last_retrieved_at: str | None = None
    tested: int = 0
    decisive: int = 0


class DuplicateMemory(LabError):
    """The same text is already stored."""


@dataclass(frozen=True)
class Hit:
    """A search result: the memory and how close its meaning is (cosine similarity, 1.0 = same)."""

    id: int
    text: str
    score: float
    memory: Memory

    @property
    def pinned(self) -> bool:
        return self.memory.pinned


@dataclass(frozen=True)
class _Change:
    """A write in progress: its row in `changes` and the generation it moves the store to."""

    id: int
    previous_generation: int
    generation: int
    at: str


_FIELDS = "id, text, question, answer, source, created_at, updated_at, pinned"
_ROW = _FIELDS + ", embedding"
# A row `r` of `retired` that still counts: not back in the store, and not brought back since.
_STILL_RETIRED = ("r.id NOT IN (SELECT id FROM memories) AND NOT EXISTS "
                  "(SELECT 1 FROM unretired u WHERE u.id = r.id AND u.change_id > r.change_id)")


def _json_of(alias: str) -> str:
    """SQL for a record's JSON (no embedding), for the history table."""
    fields = ", ".join(f"'{f}', {alias}.{f}" for f in _FIELDS.split(", "))
    return f"json_object({fields})"


_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS memories (
        id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL, question TEXT, answer TEXT,
        source TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        pinned INTEGER NOT NULL DEFAULT 0, embedding BLOB NOT NULL)""",
    # generation, dim and schema version
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    # one row per write; undo walks back over the undoable ones
    """CREATE TABLE IF NOT EXISTS changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, summary TEXT NOT NULL,
        at TEXT NOT NULL, undoable INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS changes_undoable ON changes(id) WHERE undoable = 1",
    # one row per memory a change touched: before/after as JSON (NULL = did not exist)
    """CREATE TABLE IF NOT EXISTS history (
        id INTEGER PRIMARY KEY AUTOINCREMENT, change_id INTEGER NOT NULL, memory_id INTEGER NOT NULL,
        op TEXT NOT NULL, before TEXT, after TEXT, at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS history_by_change ON history(change_id)",
    # full rows (with embedding) that a change removed or overwrote, so undo can put them back
    """CREATE TABLE IF NOT EXISTS archive (
        change_id INTEGER NOT NULL, id INTEGER NOT NULL, text TEXT NOT NULL, question TEXT, answer TEXT,
        source TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        pinned INTEGER NOT NULL DEFAULT 0, embedding BLOB NOT NULL, PRIMARY KEY (change_id, id))""",
    """CREATE TABLE IF NOT EXISTS snapshots (
        name TEXT PRIMARY KEY, created_at TEXT NOT NULL, count INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS snapshot_memories (
        name TEXT NOT NULL, id INTEGER NOT NULL, text TEXT NOT NULL, question TEXT, answer TEXT,
        source TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        pinned INTEGER NOT NULL DEFAULT 0, embedding BLOB NOT NULL, PRIMARY KEY (name, id))""",
    # usage signals by memory id (ids are never reused, so a memory undone back keeps its own)
    """CREATE TABLE IF NOT EXISTS usage (
        id INTEGER PRIMARY KEY, retrievals INTEGER NOT NULL DEFAULT 0, last_retrieved_at TEXT,
        tested INTEGER NOT NULL DEFAULT 0, decisive INTEGER NOT NULL DEFAULT 0)""",
    # memories retired into an adapter (consolidated, verified): what the weights now answer for
    """CREATE TABLE IF NOT EXISTS retired (
        change_id INTEGER NOT NULL, id INTEGER NOT NULL, text TEXT NOT NULL, adapter TEXT NOT NULL,
        at TEXT NOT NULL, PRIMARY KEY (change_id, id))""",
    # retired memories brought back into the store (unretire): no longer listed as retired, even if
    # deleted later; undoing the restore deletes its row
    "CREATE TABLE IF NOT EXISTS unretired (change_id INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (change_id, id))",
]
# Version 2 added `pinned` to the row tables: a version 1 store gains the column on opening.
SCHEMA_VERSION = 2
_PINNED_TABLES = ("memories", "archive", "snapshot_memories")
USAGE_FLUSH_S = 2.0  # usage counts are written this long after the answer that made them


# ---- the store ------------------------------------------------------------------------------------


class MemoryStore:
    """The memories of one workspace: SQLite records, an hnswlib index, undo and snapshots.

    Safe to share between threads (one lock around every public method) and between
    processes opening the same directory (SQLite locking plus the generation check).
    """

    def __init__(self, directory: Path, embedder: Embedder | None = None, *, limits=None):
        self.directory = Path(directory)
        # lab.limits.Limits of the workspace this folder sits in; None (a bare store): unlimited.
        self.limits = limits
        self._embedder = embedder  # loaded on first use: opening and listing need no model
        self._dim = embedder.dim if embedder is not None else DIM
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        # The in-memory index and what it holds.
        self._index: hnswlib.Index | None = None
        self._index_generation: int | None = None
        self._labels: set[int] = set()  # every label in the index, live or marked deleted
        self._deleted: set[int] = set()  # labels marked deleted
        self._ef = 0
        self._data_version: int | None = None
        self._unsaved_writes = 0
        # Usage counts waiting to be written (record_use): id -> [retrievals, last at, tested, decisive].
        self._usage_lock = threading.Lock()
        self._pending_usage: dict[int, list] = {}
        self._usage_timer: threading.Timer | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LabError(f"cannot create the memory folder {self.directory}: {exc.strerror}") from exc
        self._db = self._connect()
        try:
            with self._lock:
                self._refresh_index()
        except BaseException:
            self._db.close()
            self._db = None
            raise

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder()
        return self._embedder

    def __len__(self) -> int:
        return self.count()

    def __enter__(self) -> "MemoryStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryStore({str(self.directory)!r})"

    # ---- reading ----------------------------------------------------------------------------

    def get(self, memory_id: int) -> Memory:
        """The memory with this id, or NotFound."""
        memory_id = _check_id(memory_id)
        with self._lock:
            self._sync()
            return self._fetch(memory_id)

    def list(self) -> list[Memory]:
        """Every memory, oldest id first."""
        with self._lock:
            self._sync()
            rows = self._db.execute(f"SELECT {_FIELDS} FROM memories ORDER BY id").fetchall()
        return [_memory(row) for row in rows]

    def count(self) -> int:
        """How many memories there are (from the index, which the sync keeps equal to the DB)."""
        with self._lock:
            self._sync()
            return len(self._labels) - len(self._deleted)

    def search(self, query: str, k: int = 3, min_score: float = 0.0) -> list[Hit]:
        """The k memories closest in meaning to `query`, best first, each scoring >= min_score."""
        query = validate_text(query, "query")
        k, min_score = _check_search_args(k, min_score)
        vector = self.embedder.embed_one(query)  # outside the lock: other threads keep searching
        return self.search_vector(vector, k, min_score)

    def search_vector(self, vector, k: int = 3, min_score: float = 0.0) -> list[Hit]:
        """Like search() with an already embedded query: a (dim,) vector."""
        k, min_score = _check_search_args(k, min_score)
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape != (self._dim,) or not np.all(np.isfinite(vector)) or not np.any(vector):
            raise LabError(f"a query vector must be {self._dim} finite numbers, not all zero")
        with self._lock:
            self._sync()
            k = min(k, len(self._labels) - len(self._deleted))  # hnswlib raises if k > live items
            if k == 0:
                return []
            labels, distances = self._knn(vector, k)
            scored = [(int(label), float(1.0 - distance)) for label, distance in zip(labels, distances)]
            scored = [(label, score) for label, score in scored if score >= min_score]
            if not scored:
                return []
            marks = ",".join("?" * len(scored))
            rows = self._db.execute(f"SELECT {_FIELDS} FROM memories WHERE id IN ({marks})",
                                    [label for label, _ in scored]).fetchall()
        memories = {row[0]: _memory(row) for row in rows}
        hits = [Hit(label, memories[label].text, score, memories[label])
                for label, score in scored if label in memories]
        return sorted(hits, key=lambda hit: -hit.score)

    def vectors(self, ids: list[int]) -> np.ndarray:
        """The stored embeddings of these memories, in the order given: (len(ids), dim) float32.

        The very vectors search compares queries with, read back rather than re-embedded
        (the map of the Memory page draws them). An unknown id is NotFound.
        """
        if not isinstance(ids, (list, tuple)):
            raise LabError(f"vectors needs a list of memory ids, not {type(ids).__name__}")
        ids = [_check_id(memory_id) for memory_id in ids]
        with self._lock:
            self._sync()
            rows = dict(self._db.execute("SELECT id, embedding FROM memories WHERE id IN "
                                         "(SELECT value FROM json_each(?))", [json.dumps(ids)]).fetchall())
        missing = [memory_id for memory_id in ids if memory_id not in rows]
        if missing:
            raise NotFound(f"no memory with id {missing[0]}; list the memories to see their ids")
        # A copy: frombuffer gives a read-only view of the SQLite blobs.
        return self._vectors([(memory_id, rows[memory_id]) for memory_id in ids]).copy()

    # ---- writing --------------------------------------------------------------------------------

    def add(self, text: str, question: str | None = None, answer: str | None = None,
            source: str = "user", *, unique: bool = False, pinned: bool = False) -> Memory:
        """Store one memory and return it with its new id. With `unique`, a text already
        stored word for word is refused with one line (a button pressed twice stores once).
        A `pinned` memory goes into every memory-arm prompt (lab/pinned.py checks its budget)."""
        record = _clean_record({"text": text, "question": question, "answer": answer, "source": source,
                                "pinned": pinned}, where="", default_source="user")
        if unique and (same := self.find_text(record[0])) is not None:
            raise DuplicateMemory(f"already remembered as [{same.id}]: {same.text[:80]}")
        return self._add_records([record], op="add")[0]

    def find_text(self, text: str) -> Memory | None:
        """The oldest memory whose text is exactly `text` (surrounding spaces aside), or None."""
        with self._lock:
            self._sync()
            row = self._db.execute(f"SELECT {_FIELDS} FROM memories WHERE text = ? ORDER BY id LIMIT 1",
                                   [text.strip()]).fetchone()
        return _memory(row) if row else None

    def add_many(self, items: list[dict]) -> list[Memory]:
        """Store many memories in one embedding batch and one transaction (one undo step)."""
        if not isinstance(items, (list, tuple)):
            raise LabError(f"add_many needs a list of dicts, not {type(items).__name__}")
        records = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise LabError(f"items[{i}] must be a dict, not {type(item).__name__}")
            unknown = set(item) - {"text", "question", "answer", "source", "pinned"}
            if unknown:
                raise LabError(f"items[{i}] has unknown keys {sorted(unknown)}; "
                               "use text, question, answer, source and pinned")
            records.append(_clean_record(item, f"items[{i}]", default_source="user"))
        return self._add_records(records, op="add_many")

    def update(self, memory_id: int, text: str | None = None, question: str | None = None,
               answer: str | None = None) -> Memory:
        """Change a memory's fields (None = leave as is, "" = clear question/answer); re-embeds new text.
        New text with no answer given brings the answer along (answer_after_edit): an edit from
        "...is Tomasz Wierzbicki." to "...is Amara." must not leave Tomasz to be trained on."""
        memory_id = _check_id(memory_id)
        text = None if text is None else validate_text(text)
        new_question = None if question in (None, "") else validate_text(question, "question")
        new_answer = None if answer in (None, "") else validate_text(answer, "answer")
        current = self.get(memory_id)  # fail fast on an unknown id, before spending an embedding
        vector = None
        if text is not None and text != current.text:
            vector = self.embedder.embed_one(text)
        with self._lock:
            self._sync()
            with self._transaction() as db:
                before = self._fetch(memory_id)  # again, inside the transaction: it may have changed
                new_text = text if text is not None else before.text
                after = (new_text,
                         before.question if question is None else new_question,
                         answer_after_edit(before.text, before.answer, new_text) if answer is None else new_answer)
                if after == (before.text, before.question, before.answer):
                    return before  # nothing changes, nothing to undo
                if after[0] != before.text and vector is None:  # changed by someone else meanwhile
                    vector = self.embedder.embed_one(after[0])
                change = self._begin_change("update")
                self._archive(change, "WHERE id = ?", [memory_id])
                db.execute("UPDATE memories SET text = ?, question = ?, answer = ?, updated_at = ?, "
                           "embedding = COALESCE(?, embedding) WHERE id = ?",
                           [*after, change.at, None if vector is None else vector.tobytes(), memory_id])
                db.execute(f"INSERT INTO history (change_id, memory_id, op, before, after, at) "
                           f"SELECT ?, m.id, 'update', {_json_of('a')}, {_json_of('m')}, ? "
                           f"FROM memories m JOIN archive a ON a.change_id = ? AND a.id = m.id WHERE m.id = ?",
                           [change.id, change.at, change.id, memory_id])
                self._finish_change(change, f"update of memory {memory_id}")
            if vector is None:
                self._after_commit(change)
            else:
                self._after_commit(change, ids=[memory_id], vectors=vector[None, :])
            return self._fetch(memory_id)

    def set_pinned(self, memory_id: int, pinned: bool) -> Memory:
        """Pin a memory (into every memory-arm prompt) or unpin it (retrieved by score again).
        Undoable, like any change; pinning what is pinned changes nothing."""
        memory_id = _check_id(memory_id)
        if not isinstance(pinned, bool):
            raise LabError(f"pinned must be true or false, not {str(pinned)[:20]!r}")
        with self._lock:
            self._sync()
            with self._transaction() as db:
                if self._fetch(memory_id).pinned == pinned:
                    return self._fetch(memory_id)
                op = "pin" if pinned else "unpin"
                change = self._begin_change(op)
                self._archive(change, "WHERE id = ?", [memory_id])
                db.execute("UPDATE memories SET pinned = ?, updated_at = ? WHERE id = ?",
                           [int(pinned), change.at, memory_id])
                db.execute(f"INSERT INTO history (change_id, memory_id, op, before, after, at) "
                           f"SELECT ?, m.id, ?, {_json_of('a')}, {_json_of('m')}, ? "
                           f"FROM memories m JOIN archive a ON a.change_id = ? AND a.id = m.id WHERE m.id = ?",
                           [change.id, op, change.at, change.id, memory_id])
                self._finish_change(change, f"{op} of memory {memory_id}")
            self._after_commit(change)
            return self._fetch(memory_id)

    def pinned(self) -> list[Memory]:
        """The pinned memories, oldest id first."""
        with self._lock:
            self._sync()
            rows = self._db.execute(f"SELECT {_FIELDS} FROM memories WHERE pinned = 1 ORDER BY id").fetchall()
        return [_memory(row) for row in rows]

    def pinned_hits(self, vector) -> list[Hit]:
        """Every pinned memory as a Hit, scored against an embedded query (they are sent
        whatever their score; the score shows how related the question happens to be)."""
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        with self._lock:
            self._sync()
            rows = self._db.execute(f"SELECT {_ROW} FROM memories WHERE pinned = 1 ORDER BY id").fetchall()
        if not rows:
            return []
        scores = self._vectors([(row[0], row[-1]) for row in rows]) @ vector
        return [Hit(row[0], row[1], float(score), _memory(row[:-1])) for row, score in zip(rows, scores)]

    # ---- usage signals --------------------------------------------------------------------------

    def record_use(self, sent=(), tested=(), decisive=()) -> None:
        """Count memories `sent` into an answer, `tested` by leaving them out, and `decisive`
        (leaving them out changed the answer). Kept in memory and written a moment later, in
        one transaction, off the asking thread: a durable write per answer would cost an ask
        milliseconds."""
        now = _now()
        with self._usage_lock:
            for ids, column in ((sent, 0), (tested, 2), (decisive, 3)):
                for memory_id in ids:
                    counts = self._pending_usage.setdefault(int(memory_id), [0, None, 0, 0])
                    counts[column] += 1
                    if column == 0:
                        counts[1] = now
            if self._pending_usage and self._usage_timer is None:
                self._usage_timer = threading.Timer(USAGE_FLUSH_S, self._flush_usage)
                self._usage_timer.daemon = True
                self._usage_timer.start()

    def usage(self) -> dict[int, Usage]:
        """Usage signals by memory id, for the memories that have any (the rest: Usage())."""
        self._flush_usage()
        with self._lock:
            self._sync()
            rows = self._db.execute("SELECT u.id, u.retrievals, u.last_retrieved_at, u.tested, u.decisive "
                                    "FROM usage u JOIN memories m ON m.id = u.id").fetchall()
        return {row[0]: Usage(*row[1:]) for row in rows}

    def _flush_usage(self) -> None:
        with self._usage_lock:
            pending, self._pending_usage = self._pending_usage, {}
            if self._usage_timer is not None:
                self._usage_timer.cancel()
                self._usage_timer = None
        if not pending:
            return
        rows = [(memory_id, *counts) for memory_id, counts in pending.items()]
        with self._lock:
            if self._db is None:
                return
            try:
                with self._transaction() as db:
                    db.executemany(
                        "INSERT INTO usage (id, retrievals, last_retrieved_at, tested, decisive) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT(id) DO UPDATE SET retrievals = retrievals + excluded.retrievals, "
                        "last_retrieved_at = COALESCE(excluded.last_retrieved_at, last_retrieved_at), "
                        "tested = tested + excluded.tested, decisive = decisive + excluded.decisive", rows)
            except LabError:
                pass  # busy for 10 s: signals are worth less than the answer that made them

    def retire(self, ids: list[int], adapter: str) -> list[Memory]:
        """Move memories out of the store because `adapter` now answers for them
        (lab/consolidation.py verified it). One change: undo brings them all back."""
        ids = sorted({_check_id(memory_id) for memory_id in ids})
        if not ids:
            return []
        with self._lock:
            self._sync()
            with self._transaction() as db:
                memories = [self._fetch(memory_id) for memory_id in ids]
                change = self._begin_change("retire")
                where = f"WHERE id IN ({','.join('?' * len(ids))})"
                self._archive(change, where, ids)
                self._record_history(change, "retire", where.replace("id IN", "m.id IN"), ids, before=True)
                db.executemany("INSERT INTO retired (change_id, id, text, adapter, at) VALUES (?, ?, ?, ?, ?)",
                               [(change.id, m.id, m.text, adapter, change.at) for m in memories])
                db.execute(f"DELETE FROM memories {where}", ids)
                self._finish_change(change, f"retire of {plural(len(ids), 'memory')} "
                                            f"into adapter {adapter}")
            self._after_commit(change, removed=ids)
            return memories

    def retired(self) -> list[dict]:
        """Memories retired into adapters and not brought back: [{"id", "text", "adapter", "at"}]."""
        with self._lock:
            self._sync()
            rows = self._db.execute(f"SELECT id, text, adapter, at FROM retired r WHERE {_STILL_RETIRED} "
                                    "ORDER BY at, id").fetchall()
        return [{"id": i, "text": text, "adapter": adapter, "at": at} for i, text, adapter, at in rows]

    def unretire(self, memory_id: int) -> Memory:
        """Bring a retired memory back into the store, as it was when it retired (its id,
        question, answer and kind): the memory arms retrieve it again. The adapter keeps what
        it learned. Undo retires it again."""
        memory_id = _check_id(memory_id)
        with self._lock:
            self._sync()
            row = self._db.execute(f"SELECT change_id FROM retired r WHERE id = ? AND {_STILL_RETIRED} "
                                   "ORDER BY change_id DESC LIMIT 1", [memory_id]).fetchone()
            if row is None:
                raise NotFound(f"no retired memory with id {memory_id}; the archive lists the retired ones")
            retired_by = row[0]
            # The full row while the retire is still undoable; after that, the record its history
            # kept (everything but the embedding, which is made again from the same text).
            archived = self._db.execute(f"SELECT {_ROW} FROM archive WHERE change_id = ? AND id = ?",
                                        [retired_by, memory_id]).fetchone()
            if archived is None:
                kept = self._db.execute("SELECT before FROM history WHERE change_id = ? AND memory_id = ?",
                                        [retired_by, memory_id]).fetchone()
                record = json.loads(kept[0])
        self._check_room(1)
        if archived is None:
            vector = self.embedder.embed_one(record["text"])
            archived = (*[record[name] for name in _FIELDS.split(", ")], vector.tobytes())
        with self._lock:
            self._sync()
            with self._transaction() as db:
                if db.execute("SELECT 1 FROM memories WHERE id = ?", [memory_id]).fetchone():
                    raise LabError(f"memory {memory_id} is already back in the memory")
                change = self._begin_change("unretire")
                db.execute(f"INSERT INTO memories ({_ROW}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", archived)
                self._record_history(change, "unretire", "WHERE m.id = ?", [memory_id], before=False)
                db.execute("INSERT INTO unretired (change_id, id) VALUES (?, ?)", [change.id, memory_id])
                self._finish_change(change, f"restore of retired memory {memory_id}")
            self._after_commit(change, ids=[memory_id], vectors=self._vectors([(memory_id, archived[-1])]))
            return self._fetch(memory_id)

    def delete(self, memory_id: int) -> Memory:
        """Remove a memory; returns it as it was."""
        memory_id = _check_id(memory_id)
        with self._lock:
            self._sync()
            with self._transaction() as db:
                memory = self._fetch(memory_id)
                change = self._begin_change("delete")
                self._archive(change, "WHERE id = ?", [memory_id])
                self._record_history(change, "delete", "WHERE id = ?", [memory_id], before=True)
                db.execute("DELETE FROM memories WHERE id = ?", [memory_id])
                self._finish_change(change, f"delete of memory {memory_id}")
            self._after_commit(change, removed=[memory_id])
            return memory

    def wipe(self) -> int:
        """Remove every memory (undoable); returns how many were removed."""
        with self._lock:
            self._sync()
            with self._transaction() as db:
                removed = db.execute("SELECT COUNT(*) FROM memories").fetchone()[0]
                if removed == 0:
                    return 0
                change = self._begin_change("wipe")
                self._archive(change, "", [])
                self._record_history(change, "wipe", "", [], before=True)
                db.execute("DELETE FROM memories")
                self._finish_change(change, f"wipe of {plural(removed, 'memory')}")
            self._after_commit(change, reset=True)
            return removed

    def undo(self) -> str:
        """Revert the last change that is not yet undone; returns what was undone, in one line."""
        with self._lock:
            self._sync()
            with self._transaction() as db:
                last = db.execute("SELECT id, summary FROM changes WHERE undoable = 1 "
                                  "ORDER BY id DESC LIMIT 1").fetchone()
                if last is None:
                    raise LabError("nothing to undo")
                target, summary = last
                change = self._begin_change("undo", undoable=False)
                # Rows the change created go; rows it removed or overwrote come back from the archive.
                created = [row[0] for row in db.execute(
                    "SELECT memory_id FROM history WHERE change_id = ? AND before IS NULL", [target])]
                db.execute("DELETE FROM memories WHERE id IN "
                           "(SELECT memory_id FROM history WHERE change_id = ? AND before IS NULL)", [target])
                restored = db.execute("SELECT id, embedding FROM archive WHERE change_id = ?", [target]).fetchall()
                db.execute(f"INSERT OR REPLACE INTO memories ({_ROW}) "
                           f"SELECT {_ROW} FROM archive WHERE change_id = ?", [target])
                db.execute("INSERT INTO history (change_id, memory_id, op, before, after, at) "
                           "SELECT ?, memory_id, 'undo', after, before, ? FROM history WHERE change_id = ?",
                           [change.id, change.at, target])
                db.execute("DELETE FROM archive WHERE change_id = ?", [target])
                db.execute("DELETE FROM retired WHERE change_id = ?", [target])  # back in the store
                db.execute("DELETE FROM unretired WHERE change_id = ?", [target])  # retired again
                db.execute("UPDATE changes SET undoable = 0 WHERE id = ?", [target])
                self._finish_change(change, f"undo of {summary}")
            ids = [row[0] for row in restored]
            self._after_commit(change, removed=created, ids=ids, vectors=self._vectors(restored))
            return f"undid {summary}"

    # ---- snapshots ------------------------------------------------------------------------------

    def snapshot(self, name: str) -> int:
        """Save a copy of every memory under `name` (replacing a snapshot of that name)."""
        name = validate_snapshot_name(name)
        with self._lock:
            self._sync()
            with self._transaction() as db:
                db.execute("DELETE FROM snapshot_memories WHERE name = ?", [name])
                db.execute(f"INSERT INTO snapshot_memories (name, {_ROW}) SELECT ?, {_ROW} FROM memories", [name])
                count = db.execute("SELECT COUNT(*) FROM snapshot_memories WHERE name = ?", [name]).fetchone()[0]
                db.execute("INSERT OR REPLACE INTO snapshots (name, created_at, count) VALUES (?, ?, ?)",
                           [name, _now(), count])
            return count

    def restore(self, name: str) -> int:
        """Replace the memories with snapshot `name`, original ids included (undoable)."""
        name = validate_snapshot_name(name)
        with self._lock:
            self._sync()
            with self._transaction() as db:
                if db.execute("SELECT 1 FROM snapshots WHERE name = ?", [name]).fetchone() is None:
                    raise NotFound(f"no snapshot named {name!r}; see the list of snapshots")
                change = self._begin_change("restore")
                self._archive(change, "", [])
                # One history row per id: replaced or removed (before set), or brought back (before NULL).
                db.execute(f"INSERT INTO history (change_id, memory_id, op, before, after, at) "
                           f"SELECT ?, m.id, 'restore', {_json_of('m')}, "
                           f"(SELECT {_json_of('s')} FROM snapshot_memories s "
                           f"WHERE s.name = ? AND s.id = m.id), ? "
                           f"FROM memories m", [change.id, name, change.at])
                db.execute(f"INSERT INTO history (change_id, memory_id, op, before, after, at) "
                           f"SELECT ?, s.id, 'restore', NULL, {_json_of('s')}, ? FROM snapshot_memories s "
                           f"WHERE s.name = ? AND s.id NOT IN (SELECT id FROM memories)",
                           [change.id, change.at, name])
                db.execute("DELETE FROM memories")
                db.execute(f"INSERT INTO memories ({_ROW}) SELECT {_ROW} FROM snapshot_memories WHERE name = ?",
                           [name])
                rows = db.execute("SELECT id, embedding FROM memories ORDER BY id").fetchall()
                self._finish_change(change, f"restore of snapshot {name!r} ({plural(len(rows), 'memory')})")
            self._after_commit(change, reset=True, ids=[row[0] for row in rows], vectors=self._vectors(rows))
            return len(rows)

    def snapshots(self) -> list[dict]:
        """The saved snapshots: [{"name", "count", "created_at"}], oldest first."""
        with self._lock:
            self._sync()
            rows = self._db.execute("SELECT name, count, created_at FROM snapshots "
                                    "ORDER BY created_at, name").fetchall()
        return [{"name": name, "count": count, "created_at": created_at} for name, count, created_at in rows]

    def delete_snapshot(self, name: str) -> None:
        name = validate_snapshot_name(name)
        with self._lock:
            self._sync()
            with self._transaction() as db:
                if db.execute("DELETE FROM snapshots WHERE name = ?", [name]).rowcount == 0:
                    raise NotFound(f"no snapshot named {name!r}; see the list of snapshots")
                db.execute("DELETE FROM snapshot_memories WHERE name = ?", [name])

    # ---- export / import --------------------------------------------------------------------------

    def export(self, path: Path) -> int:
        """Write every memory to a JSON file (atomically); returns how many."""
        path = Path(path)
        memories = self.list()
        document = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported_at": _now(),
                    "memories": [asdict(memory) for memory in memories]}
        try:
            _write_atomically(path, json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8"))
        except OSError as exc:
            raise LabError(f"cannot write {path}: {exc.strerror}") from exc
        return len(memories)

    def import_(self, path: Path, *, skip_duplicates: bool = False) -> int:
        """Add the memories of an export file (with new ids); all checked before anything changes.
        With `skip_duplicates`, a text already stored (or repeated in the file) is left out."""
        records = read_export(Path(path))
        if skip_duplicates:
            records = self._new_records(records)
        if not records:
            return 0
        return len(self._add_records(records, op="import", origin=Path(path).name))

    def duplicates_in(self, path: Path) -> int:
        """How many of an export file's memories are already stored word for word (or repeat in it)."""
        records = read_export(Path(path))
        return len(records) - len(self._new_records(records))

    def _new_records(self, records: list[tuple]) -> list[tuple]:
        with self._lock:
            self._sync()
            seen = {row[0] for row in self._db.execute("SELECT text FROM memories")}
        fresh = []
        for record in records:
            if record[0] not in seen:  # (text, question, answer, source)
                seen.add(record[0])
                fresh.append(record)
        return fresh

    # ---- lifetime -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Save the index file now if writes since the last save have not been saved."""
        with self._lock:
            if self._db is not None and self._unsaved_writes:
                self._save_index()

    def close(self) -> None:
        self._flush_usage()
        with self._lock:
            if self._db is None:
                return
            self.flush()
            self._db.close()
            self._db = None
            self._index = None
            self._index_generation = None

    # ---- internals: SQLite ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        path = self.directory / DB_FILE
        try:
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")  # a returned write survives power loss
            self._db = db
            with self._transaction():
                for statement in _SCHEMA:
                    db.execute(statement)
                for table in _PINNED_TABLES:  # a version 1 store: every memory it holds is retrieved
                    if "pinned" not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version' AND value < ?",
                           [SCHEMA_VERSION, SCHEMA_VERSION])
                db.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                               [("generation", 0), ("dim", self._dim), ("schema_version", SCHEMA_VERSION)])
            stored_dim = db.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise LabError(f"the memory database {path} is damaged or unreadable ({exc}); move it aside "
                           "to start afresh, or import an export into a new workspace") from exc
        if stored_dim != self._dim:
            db.close()
            raise LabError(f"the memories in {path} were embedded with {stored_dim}-dimensional vectors, "
                           f"this embedder makes {self._dim}; use the embedder they were made with")
        return db

    @contextmanager
    def _transaction(self):
        """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so it never deadlocks midway."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise LabError(f"the memory database is busy or unwritable ({exc}); try again") from exc
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise LabError(f"the memory database refused the change ({exc}); nothing was stored") from exc
            raise

    @contextmanager
    def _read_transaction(self):
        """A consistent view across several SELECTs (WAL readers see one committed state)."""
        self._db.execute("BEGIN")
        try:
            yield self._db
        finally:
            self._db.execute("COMMIT")

    def _read_generation(self) -> int:
        return self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]

    def _fetch(self, memory_id: int) -> Memory:
        row = self._db.execute(f"SELECT {_FIELDS} FROM memories WHERE id = ?", [memory_id]).fetchone()
        if row is None:
            raise NotFound(f"no memory with id {memory_id}; list the memories to see their ids")
        return _memory(row)

    def _begin_change(self, op: str, undoable: bool = True) -> _Change:
        previous = self._read_generation()
        at = _now()
        # A change's id is the generation it creates: _replay_changes relies on it.
        self._db.execute("INSERT INTO changes (id, op, summary, at, undoable) VALUES (?, ?, '', ?, ?)",
                         [previous + 1, op, at, int(undoable)])
        return _Change(id=previous + 1, previous_generation=previous, generation=previous + 1, at=at)

    def _finish_change(self, change: _Change, summary: str) -> None:
        db = self._db
        db.execute("UPDATE changes SET summary = ? WHERE id = ?", [summary, change.id])
        db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", [change.generation])
        # Keep the archive bounded: only the last UNDO_DEPTH changes can be undone.
        oldest_kept = db.execute("SELECT id FROM changes WHERE undoable = 1 ORDER BY id DESC "
                                 "LIMIT 1 OFFSET ?", [UNDO_DEPTH - 1]).fetchone()
        if oldest_kept is not None:
            db.execute("UPDATE changes SET undoable = 0 WHERE undoable = 1 AND id < ?", [oldest_kept[0]])
            db.execute("DELETE FROM archive WHERE change_id < ?", [oldest_kept[0]])

    def _archive(self, change: _Change, where: str, params: list) -> None:
        self._db.execute(f"INSERT INTO archive (change_id, {_ROW}) SELECT ?, {_ROW} FROM memories {where}",
                         [change.id, *params])

    def _record_history(self, change: _Change, op: str, where: str, params: list, before: bool) -> None:
        """History rows for the memories matching `where`, as they are now (before or after the change)."""
        before_json, after_json = (_json_of("m"), "NULL") if before else ("NULL", _json_of("m"))
        self._db.execute(f"INSERT INTO history (change_id, memory_id, op, before, after, at) "
                         f"SELECT ?, m.id, ?, {before_json}, {after_json}, ? FROM memories m {where}",
                         [change.id, op, change.at, *params])

    def _add_records(self, records: list[tuple], op: str, origin: str = "") -> list[Memory]:
        if not records:
            return []
        self._check_room(len(records))
        vectors = self.embedder.embed([record[0] for record in records])  # (n, dim), outside the lock
        with self._lock:
            self._sync()
            with self._transaction() as db:
                change = self._begin_change(op)
                # Ids given explicitly so one executemany can insert them all; never below any id used before.
                first = 1 + db.execute(
                    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'memories'), 0), "
                    "COALESCE((SELECT MAX(id) FROM memories), 0))").fetchone()[0]
                ids = list(range(first, first + len(records)))
                db.executemany(f"INSERT INTO memories ({_ROW}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               [(memory_id, *record[:4], change.at, change.at, int(record[4]), vector.tobytes())
                                for memory_id, record, vector in zip(ids, records, vectors)])
                self._record_history(change, op, "WHERE m.id BETWEEN ? AND ?", [ids[0], ids[-1]], before=False)
                where = f" from {origin}" if origin else ""
                summary = (f"{op} of memory {first}{where}" if len(ids) == 1
                           else f"{op} of {len(ids)} memories (ids {ids[0]}-{ids[-1]}){where}")
                self._finish_change(change, summary)
            self._after_commit(change, ids=ids, vectors=vectors)
        return [Memory(memory_id, *record[:4], change.at, change.at, record[4]) for memory_id, record in zip(ids, records)]

    def _check_room(self, adding: int) -> None:
        """The workspace limits (lab/limits.py), before anything is embedded or written: a refused
        add, add_many or import changes nothing. The memory folder sits in its workspace."""
        from lab.limits import BYTES_PER_MEMORY, check_disk_room, check_memory_room

        if self.limits is not None:
            check_memory_room(self.limits, self.count(), adding)
            check_disk_room(self.limits, self.directory.parent, adding * BYTES_PER_MEMORY)

    def _vectors(self, rows: list[tuple]) -> np.ndarray:
        """(n, dim) float32 from (id, embedding blob) rows; a damaged blob is a one-line error."""
        width = self._dim * 4
        for memory_id, blob in rows:
            if len(blob) != width:
                raise LabError(f"memory {memory_id} has a damaged embedding ({len(blob)} bytes, expected "
                               f"{width}); export the memories and import them into a new workspace")
        if not rows:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), self._dim)

    # ---- internals: the index ------------------------------------------------------------------------

    def _sync(self) -> None:
        """Make the index match the database; a single cheap PRAGMA when nothing changed."""
        if self._db is None:
            raise LabError("this memory store is closed; open it again")
        # data_version changes only when *another* connection commits; our own writes update the index directly.
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version and self._index is not None:
            return
        if self._index is None or self._read_generation() != self._index_generation:
            self._refresh_index()
        self._data_version = version  # only once in sync: a failed refresh is retried next time

    def _refresh_index(self) -> None:
        """Bring the index to the database's generation, cheapest way first: replay the changes
        made since (by another process), else load memory.hnsw, else rebuild from the stored embeddings."""
        with self._read_transaction() as db:
            generation = self._read_generation()
            replayed = self._replay_changes(generation)
            if not replayed:
                ids = {row[0] for row in db.execute("SELECT id FROM memories")}
                if self._load_index_file(generation, ids):
                    return
                self._build_index(generation, len(ids))
        if replayed:
            self._index_changed()
        else:
            self._save_index()  # rebuilt: spare the next opener the same work

    def _replay_changes(self, generation: int) -> bool:
        """Apply, from the history table, the changes committed since our index's generation.

        Exact by construction: every change writes a history row for each memory it touches, so
        re-reading those memories' current rows brings the index to the database's state. Returns
        False (and the caller loads or rebuilds) whenever that reasoning might not hold.
        """
        start = self._index_generation
        if self._index is None or start is None or start >= generation:
            return False
        db = self._db
        # Change ids are the generations they created (see _begin_change).
        if db.execute("SELECT MAX(id) FROM changes").fetchone()[0] != generation:
            return False
        touched = [row[0] for row in db.execute(
            "SELECT DISTINCT memory_id FROM history WHERE change_id > ?", [start])]
        rows = db.execute("SELECT id, embedding FROM memories WHERE id IN (SELECT value FROM json_each(?)) "
                          "ORDER BY id", [json.dumps(touched)]).fetchall()
        present = {row[0] for row in rows}
        try:
            self._apply_to_index([i for i in touched if i not in present], [row[0] for row in rows],
                                 self._vectors(rows), reset=False)
        except Exception:  # half-applied: only a rebuild is trustworthy now
            self._index, self._index_generation = None, None
            return False
        if len(self._labels) - len(self._deleted) != db.execute("SELECT COUNT(*) FROM memories").fetchone()[0]:
            self._index, self._index_generation = None, None
            return False
        self._index_generation = generation
        return True

    def _load_index_file(self, generation: int, ids: set[int]) -> bool:
        """Load memory.hnsw if its meta file vouches for exactly this generation and these ids."""
        index_path, meta_path = self.directory / INDEX_FILE, self.directory / INDEX_META_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if (meta.get("format") != INDEX_FORMAT or meta.get("generation") != generation
                    or meta.get("dim") != self._dim or index_path.stat().st_size != meta.get("size")
                    or _crc32(index_path) != meta.get("crc32")):
                return False  # stale or damaged: the checksum keeps hnswlib from reading garbage
            index = hnswlib.Index(space="cosine", dim=self._dim)
            index.load_index(str(index_path), max_elements=max(int(meta["max_elements"]), 1024))
            labels, deleted = set(index.get_ids_list()), set(meta["deleted"])
            if not deleted <= labels or labels - deleted != ids:
                return False
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            return False
        self._set_index(index, generation, labels, deleted)
        self._unsaved_writes = 0
        return True

    def _build_index(self, generation: int, count: int) -> None:
        """A fresh index from the embeddings stored in SQLite (call inside a read transaction)."""
        index = self._new_index(count)
        cursor = self._db.execute("SELECT id, embedding FROM memories ORDER BY id")
        labels: set[int] = set()
        while rows := cursor.fetchmany(20_000):
            ids = [row[0] for row in rows]
            index.add_items(self._vectors(rows), ids)
            labels.update(ids)
        self._set_index(index, generation, labels, set())
        self._unsaved_writes = 1  # worth saving: the file on disk is stale

    def _new_index(self, capacity: int) -> hnswlib.Index:
        index = hnswlib.Index(space="cosine", dim=self._dim)
        index.init_index(max_elements=max(1024, int(capacity * 1.25)), M=HNSW_M,
                         ef_construction=HNSW_EF_CONSTRUCTION, random_seed=100)
        return index

    def _set_index(self, index: hnswlib.Index, generation: int, labels: set[int], deleted: set[int]) -> None:
        self._index, self._index_generation = index, generation
        self._labels, self._deleted = labels, deleted
        self._ef = 0

    def _after_commit(self, change: _Change, removed=(), ids=(), vectors=None, reset: bool = False) -> None:
        """Bring the index to the generation just committed: apply the change, or catch up if we were behind."""
        if change.previous_generation == self._index_generation and self._index is not None:
            try:
                self._apply_to_index(removed, ids, vectors, reset)
                self._index_generation = change.generation
            except Exception:  # the DB is committed and is the truth: rebuild the cache from it
                self._index, self._index_generation = None, None
            else:
                self._index_changed()
                return
        self._refresh_index()  # another process wrote first (its changes and ours replay), or the update failed

    def _index_changed(self) -> None:
        """After the index took a change: compact it if deleted vectors dominate, and save it when due."""
        live = len(self._labels) - len(self._deleted)
        if len(self._deleted) > max(COMPACT_MIN_DELETED, live):
            with self._read_transaction():
                self._build_index(self._read_generation(), live)
        self._unsaved_writes += 1
        if live <= EAGER_SAVE_LIMIT or self._unsaved_writes >= LAZY_SAVE_EVERY:
            self._save_index()

    def _apply_to_index(self, removed, ids, vectors, reset: bool) -> None:
        if reset:
            self._set_index(self._new_index(len(ids)), self._index_generation, set(), set())
        index = self._index
        for label in removed:
            if label in self._labels and label not in self._deleted:
                index.mark_deleted(label)
                self._deleted.add(label)
        fresh = [i for i, label in enumerate(ids) if label not in self._labels]
        for i, label in enumerate(ids):
            if label not in self._labels:
                continue
            # Back again (undo, restore) or changed (update): revive the label, replace its vector if it differs.
            if label in self._deleted:
                index.unmark_deleted(label)
                self._deleted.discard(label)
            stored = np.asarray(index.get_items([label]), dtype=np.float32)[0]
            wanted = vectors[i] / np.linalg.norm(vectors[i])
            if not np.allclose(stored, wanted, atol=1e-5):
                index.add_items(vectors[i:i + 1], [label], num_threads=1)
        if fresh:
            needed = index.element_count + len(fresh)
            if needed > index.max_elements:
                index.resize_index(max(needed, int(index.max_elements * 1.5)))
            fresh_ids = [ids[i] for i in fresh]
            index.add_items(vectors[fresh], fresh_ids, num_threads=1 if len(fresh) < 64 else -1)
            self._labels.update(fresh_ids)

    def _knn(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """hnswlib's k nearest: (labels, cosine distances). Widens the search if deleted items crowd it."""
        ef = max(MIN_QUERY_EF, 2 * k)
        for attempt in range(4):
            if ef != self._ef:
                self._index.set_ef(ef)
                self._ef = ef
            try:
                labels, distances = self._index.knn_query(vector, k=k, num_threads=1)
                return labels[0], distances[0]
            except RuntimeError:  # "cannot return the results in a contiguous 2D array"
                if attempt == 1:  # still short after widening: compact away the deleted vectors
                    with self._read_transaction():
                        self._build_index(self._read_generation(), len(self._labels) - len(self._deleted))
                ef = max(ef * 4, self._index.element_count)
        raise LabError("the memory index could not answer this search; reopen the workspace to rebuild it")

    def _save_index(self) -> None:
        """Write memory.hnsw and its meta file atomically; a failure only means a rebuild next time."""
        index_path, meta_path = self.directory / INDEX_FILE, self.directory / INDEX_META_FILE
        if self._index is None:
            return
        temp = index_path.with_name(f".{INDEX_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with _file_lock(self.directory / LOCK_FILE):
                if self._read_generation() != self._index_generation:
                    return  # another process has written since: our copy is stale, let it save its own
                self._index.save_index(str(temp))
                meta = {"format": INDEX_FORMAT, "generation": self._index_generation, "dim": self._dim,
                        "count": len(self._labels) - len(self._deleted), "max_elements": self._index.max_elements,
                        "deleted": sorted(self._deleted), "size": temp.stat().st_size, "crc32": _crc32(temp)}
                os.replace(temp, index_path)
                _write_atomically(meta_path, json.dumps(meta).encode("utf-8"), durable=False)
            self._unsaved_writes = 0
        except (OSError, RuntimeError):
            pass  # the index is a cache of the DB: the generation check rebuilds it on the next open
        finally:
            temp.unlink(missing_ok=True)


def _check_search_args(k, min_score) -> tuple[int, float]:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= MAX_K:
        raise LabError(f"k must be a whole number from 1 to {MAX_K}, not {str(k)[:20]!r}")
    if isinstance(min_score, bool) or not isinstance(min_score, numbers.Real) or not -1.0 <= min_score <= 1.0:
        raise LabError(f"min_score must be a number from -1 to 1, not {str(min_score)[:20]!r}")
    return int(k), float(min_score)
