"""Class locks: a teacher's class link that holds teacher mode and the teacher's settings.

A teacher in teacher mode makes a class link (`?class=TOKEN`). The lock behind it is a small
file, `$LAB_HOME/.classes/TOKEN.json`: the teacher's workspace (what each student gets a copy
of), the settings, and a hash of a random unlock key that only the teacher is shown. Every
workspace a class link opens keeps its own record of that lock (`.class_lock.json` in its
folder), with the settings and the hash, so it holds on every reload and edited address, and
a class file damaged or deleted later cannot set anyone free. Only the unlock key lifts it, and only for
the workspace it is given to. A student's memories and Workshop progress stay theirs: the
lock fixes how the lab is set up, not what is done in it.

    lock, unlock_key = make_class(teacher_workspace, LinkSettings(scenario="pirate", k=2))
    lock.settings.teacher -> True            (a class link always holds teacher mode)
    load_class(lock.token).source -> teacher_workspace.name
    unlock_matches(lock.unlock_hash, unlock_key) -> True
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from lab.adapters import write_json_atomic
from lab.errors import LabError, NotFound
from lab.links import LinkSettings, link_params, parse_link
from lab.workspace import Workspace, home, read_meta, update_meta

# A dot keeps the folder out of the workspace list and out of reach of any workspace name.
CLASSES_DIR = ".classes"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class ClassLock:
    """One class link's lock: whose lab it copies, the settings it holds, the unlock key's hash."""

    token: str
    source: str
    settings: LinkSettings
    unlock_hash: str
    created_at: str = ""

    def to_json(self) -> dict:
        return {"token": self.token, "source": self.source, "settings": link_params(self.settings),
                "unlock_hash": self.unlock_hash, "created_at": self.created_at}

    @classmethod
    def from_json(cls, data) -> "ClassLock":
        """Raises ValueError on anything malformed (the callers turn it into one line)."""
        if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
            raise ValueError("not a class lock")
        token, source, unlock_hash = (data.get(k) for k in ("token", "source", "unlock_hash"))
        if not (isinstance(token, str) and _TOKEN.fullmatch(token) and isinstance(source, str)
                and isinstance(unlock_hash, str) and len(unlock_hash) == 64):
            raise ValueError("a field is missing or malformed")
        settings, problem = parse_link({k: str(v) for k, v in data["settings"].items()})
        if problem:
            raise ValueError(problem)
        return cls(token, source, replace(settings, teacher=True), unlock_hash, str(data.get("created_at", "")))


def _hash(unlock_key: str) -> str:
    # The key is 128 random bits, so a plain hash is enough: there is nothing to guess at.
    return hashlib.sha256(unlock_key.encode("utf-8")).hexdigest()


def unlock_matches(unlock_hash: str, unlock_key: str | None) -> bool:
    """Whether `unlock_key` is the key whose hash is `unlock_hash` (in constant time)."""
    if not isinstance(unlock_key, str) or not unlock_key:
        return False
    return hmac.compare_digest(_hash(unlock_key.strip()), unlock_hash)


def validate_token(token) -> str:
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise LabError(f"this class link's code {str(token)[:40]!r} is not one the lab makes")
    return token


def _path(token: str, root: Path | None) -> Path:
    return (root or home()) / CLASSES_DIR / f"{validate_token(token)}.json"


def make_class(source: Workspace, settings: LinkSettings, root: Path | None = None) -> tuple[ClassLock, str]:
    """Record a new class lock over `source` with `settings` (teacher mode on); returns the lock
    and its unlock key. The key itself is stored nowhere here: only its hash."""
    unlock_key = secrets.token_urlsafe(16)
    lock = ClassLock(token=secrets.token_urlsafe(9), source=source.name,
                     settings=replace(settings, teacher=True), unlock_hash=_hash(unlock_key),
                     created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    write_json_atomic(_path(lock.token, root), lock.to_json())
    return lock, unlock_key


def load_class(token: str, root: Path | None = None) -> ClassLock:
    """The lock behind a class link; a one-line LabError if it is unknown or damaged."""
    path = _path(token, root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"no class link with the code {token!r} was made on this server") from None
    except (OSError, ValueError) as error:
        raise LabError(f"the class link {token!r} cannot be read ({type(error).__name__})") from None
    try:
        lock = ClassLock.from_json(data)
    except ValueError as error:
        raise LabError(f"the class link {token!r} is damaged ({str(error)[:80]})") from None
    if lock.token != token:
        raise LabError(f"the class link {token!r} is damaged (it names another code)")
    return lock


# ---- the lock on a student's workspace ----------------------------------------------------------


LOCK_FILE = ".class_lock.json"  # in the workspace folder: while it is there, the workspace is held


def lock_workspace(workspace: Workspace, lock: ClassLock) -> None:
    """Hold `workspace` to `lock`: the workspace keeps its own record of the settings and the
    unlock hash, in a file of its own (so a damaged metadata file cannot lose it)."""
    write_json_atomic(workspace.root / LOCK_FILE, lock.to_json())


def workspace_lock(workspace: Workspace) -> ClassLock | None:
    """The lock holding `workspace`, or None. A damaged record keeps it locked, at the lab's
    default settings in teacher mode, until someone on the server removes the file: failing
    open would hand a class the knobs back."""
    path = workspace.root / LOCK_FILE
    if not path.exists():
        return None
    try:
        return ClassLock.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return ClassLock(token="damaged-lock", source="", settings=LinkSettings(teacher=True), unlock_hash="0" * 64)


def unlock_workspace(workspace: Workspace, unlock_key: str | None) -> bool:
    """Lift the lock on `workspace` if `unlock_key` is its teacher's key; True if it did."""
    lock = workspace_lock(workspace)
    if lock is None or not unlock_matches(lock.unlock_hash, unlock_key):
        return False
    (workspace.root / LOCK_FILE).unlink(missing_ok=True)
    update_meta(workspace, unlocked=lock.token)
    return True


def remember_class_made(workspace: Workspace, lock: ClassLock, unlock_key: str) -> None:
    """Keep the class links a teacher made, with their unlock keys, in the teacher's own
    workspace: only its owner sees them (a copy never takes them along), and a reload keeps them."""
    made = [c for c in read_meta(workspace).get("classes_made", []) if isinstance(c, dict)]
    made.append({"token": lock.token, "unlock_key": unlock_key, "created_at": lock.created_at})
    update_meta(workspace, classes_made=made[-20:])


def classes_made(workspace: Workspace) -> list[dict]:
    """[{"token", "unlock_key", "created_at"}], oldest first."""
    made = read_meta(workspace).get("classes_made", [])
    return [c for c in made if isinstance(c, dict) and {"token", "unlock_key"} <= set(c)] if isinstance(made, list) else []
