"""Workspaces: one folder per student, class or experiment.

A workspace holds everything that is *yours* and nothing shared: the memory
(SQLite records and the hnswlib index beside them), the trained adapters and the
results of evaluations. The root is $LAB_HOME (default ./workspaces).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

DEFAULT_NAME = "default"
# Letters, digits, dot, dash and underscore; no leading dot, so no "..", no "/" and no hidden folders.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def home() -> Path:
    """The folder that holds every workspace."""
    return Path(os.environ.get("LAB_HOME") or "workspaces").expanduser().resolve()


def validate_name(name: str) -> str:
    """Return `name` if it is a safe workspace name, else raise a one-line LabError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name)[:70]
        raise LabError(f"invalid workspace name {shown}: use 1-64 letters, digits, '.', '-' or '_', "
                       "not starting with '.'")
    return name


@dataclass(frozen=True)
class Workspace:
    """The paths of one workspace. Creating the object creates the folders."""

    name: str
    root: Path

    @classmethod
    def open(cls, name: str | None = None, root: Path | None = None) -> "Workspace":
        name = validate_name(DEFAULT_NAME if name is None else name)
        base = (root or home()).resolve()
        path = (base / name).resolve()
        if path.parent != base:  # belt and braces: the regex already forbids escaping the root
            raise LabError(f"invalid workspace name {name!r}: it leaves {base}")
        workspace = cls(name=name, root=path)
        for folder in (workspace.root, workspace.memory_dir, workspace.adapters_dir, workspace.results_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return workspace

    @property
    def memory_dir(self) -> Path:
        return self.root / "memory"

    @property
    def adapters_dir(self) -> Path:
        return self.root / "adapters"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"


def exists(name: str, root: Path | None = None) -> bool:
    """Whether a workspace of that name has been made (looking never creates one)."""
    try:
        validate_name(name)
    except LabError:
        return False
    return ((root or home()) / name).is_dir()


# ---- the workspace's own metadata: where it was copied from, its pinned settings, its lock -----

META_FILE = "lab.json"


def read_meta(workspace: Workspace) -> dict:
    """The workspace's metadata, {} when it has none (or it is unreadable: nothing here is vital
    enough to stop a page; lab/class_lock.py fails closed on its own part)."""
    import json

    try:
        data = json.loads((workspace.root / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def update_meta(workspace: Workspace, **changes) -> dict:
    """Set (or, with None, remove) top-level fields of the metadata; written atomically."""
    from lab.adapters import write_json_atomic

    meta = read_meta(workspace)
    for name, value in changes.items():
        if value is None:
            meta.pop(name, None)
        else:
            meta[name] = value
    write_json_atomic(workspace.root / META_FILE, meta)
    return meta


def list_workspaces(root: Path | None = None) -> list[str]:
    """Names of the workspaces that exist under the root."""
    base = root or home()
    if not base.exists():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))


# ---- housekeeping: what each workspace holds, and pruning the forgotten ones -----------------

BROWSER_PREFIX = "browser-"  # the app's per-browser workspaces; every other name was chosen by someone
LAST_USED_FILE = ".last_used"  # touched whenever a session opens the workspace


def mark_used(workspace: Workspace) -> None:
    (workspace.root / LAST_USED_FILE).touch()


def last_used(path: Path) -> float:
    """When a session last opened the workspace folder (its own mtime if none ever did)."""
    marker = path / LAST_USED_FILE
    return (marker if marker.exists() else path).stat().st_mtime


def usage(name: str, root: Path | None = None) -> dict:
    """{"name", "memories", "adapters", "bytes", "last_used"} for one workspace, read from disk
    without loading the embedder or the model (SQLite is asked for its row count)."""
    import sqlite3
    from datetime import datetime, timezone

    path = (root or home()) / validate_name(name)
    memories = 0
    database = path / "memory" / "memory.db"
    if database.exists():
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
                memories = db.execute("SELECT COUNT(*) FROM memories").fetchone()[0]
        except sqlite3.Error:
            memories = None  # damaged or locked: say so rather than guess
    adapters_dir = path / "adapters"
    adapters = sum(1 for p in adapters_dir.glob("*/adapter.gguf")) if adapters_dir.exists() else 0
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    used = datetime.fromtimestamp(last_used(path), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"name": name, "memories": memories, "adapters": adapters, "bytes": size, "last_used": used}


def prune(older_than_days: float, root: Path | None = None, *, now: float | None = None) -> list[str]:
    """Delete the app's browser workspaces no session has opened for `older_than_days`.
    A named workspace (anything not made by the app for a browser) is never removed."""
    import shutil
    import time

    if not isinstance(older_than_days, (int, float)) or not older_than_days >= 0:
        raise LabError(f"--older-than must be a number of days >= 0, not {older_than_days!r}")
    base = root or home()
    cutoff = (time.time() if now is None else now) - older_than_days * 86400
    pruned = []
    for name in list_workspaces(base):
        if name.startswith(BROWSER_PREFIX) and last_used(base / name) < cutoff:
            shutil.rmtree(base / name)
            pruned.append(name)
    return pruned
