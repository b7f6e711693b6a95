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


def list_workspaces(root: Path | None = None) -> list[str]:
    """Names of the workspaces that exist under the root."""
    base = root or home()
    if not base.exists():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))
