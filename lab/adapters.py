"""The adapter registry of a workspace: named LoRA adapters and which one is active.

Each adapter is a folder `adapters/NAME/` holding `adapter.gguf` (what llama.cpp loads)
and `meta.json` (how it was made). `adapters/active.json` names the active one. The
registry lives beside the memory, not inside it: wiping the memory leaves it alone,
which is the whole point of the wipe test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError, NotFound

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
TRAIN_HINT = "train one with: python -m lab train --from-memory --name NAME"


def validate_adapter_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise LabError(f"invalid adapter name {str(name)[:70]!r}: use 1-64 letters, digits, '.', '-' or '_'")
    return name


@dataclass
class AdapterInfo:
    """One registered adapter."""

    name: str
    path: Path
    active: bool = False
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"name": self.name, "path": str(self.path), "active": self.active,
                "size_bytes": self.path.stat().st_size if self.path.exists() else 0, "meta": self.meta}


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class AdapterRegistry:
    """Named adapters in one workspace folder."""

    def __init__(self, directory: Path, *, limits=None):
        self.directory = Path(directory)
        self.limits = limits  # lab.limits.Limits of the workspace around `directory`; None: unlimited
        self.directory.mkdir(parents=True, exist_ok=True)
        self._active_file = self.directory / "active.json"

    def path_for(self, name: str) -> Path:
        return self.directory / validate_adapter_name(name) / "adapter.gguf"

    def list(self) -> list[AdapterInfo]:
        active = self.active_name()
        found = []
        for folder in sorted(p for p in self.directory.iterdir() if p.is_dir() and _NAME.fullmatch(p.name)):
            gguf = folder / "adapter.gguf"
            if gguf.exists():
                found.append(AdapterInfo(folder.name, gguf, folder.name == active, self._meta(folder)))
        return found

    def trained_on(self, source: str) -> AdapterInfo | None:
        """The newest adapter trained on `source` ("memory", "scenario:acme"), or None."""
        matching = [a for a in self.list() if a.meta.get("source") == source]
        return max(matching, key=lambda a: a.path.stat().st_mtime) if matching else None

    def free_name(self, base: str) -> str:
        """`base`, or `base-2`, `base-3`…: a name no adapter has, so nothing is overwritten unasked."""
        taken = {a.name for a in self.list()}
        return next(n for n in [base] + [f"{base}-{i}" for i in range(2, 1000)] if n not in taken)

    def get(self, name: str) -> AdapterInfo:
        path = self.path_for(name)
        if not path.exists():
            known = ", ".join(a.name for a in self.list()) or "none"
            raise NotFound(f"no adapter named {name!r} (known: {known}); {TRAIN_HINT}")
        return AdapterInfo(name, path, name == self.active_name(), self._meta(path.parent))

    def register(self, name: str, gguf_file: Path, meta: dict, *, incoming_bytes: int | None = None) -> AdapterInfo:
        """Move a finished, validated adapter file into the registry under `name`, within the
        workspace's limits (lab/limits.py): a new name needs room for one more adapter, and the
        files (`incoming_bytes`, else the GGUF's size) room on disk. Refused, nothing changes."""
        self.check_room(name, Path(gguf_file).stat().st_size if incoming_bytes is None else incoming_bytes)
        folder = self.path_for(name).parent
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / "meta.json", meta)
        os.replace(gguf_file, folder / "adapter.gguf")  # atomic: no partial file is ever visible
        return self.get(name)

    def check_room(self, name: str, incoming_bytes: int = 0) -> None:
        """Raise LimitReached if adding adapter `name` would pass a workspace limit."""
        from lab.limits import check_adapter_room, check_disk_room

        if self.limits is None:
            return
        if not self.path_for(name).exists():  # replacing an adapter adds none
            check_adapter_room(self.limits, len(self.list()))
        check_disk_room(self.limits, self.directory.parent, incoming_bytes)  # the registry sits in its workspace

    def active_name(self) -> str | None:
        try:
            name = json.loads(self._active_file.read_text(encoding="utf-8")).get("active")
        except (OSError, ValueError, AttributeError):
            return None
        if name and (self.directory / name / "adapter.gguf").exists():
            return name
        return None

    def active(self) -> AdapterInfo | None:
        name = self.active_name()
        return self.get(name) if name else None

    def activate(self, name: str) -> AdapterInfo:
        info = self.get(name)
        write_json_atomic(self._active_file, {"active": name})
        info.active = True
        return info

    def deactivate(self) -> str | None:
        previous = self.active_name()
        write_json_atomic(self._active_file, {"active": None})
        return previous

    def delete(self, name: str) -> None:
        info = self.get(name)
        if info.active:
            self.deactivate()
        shutil.rmtree(info.path.parent)

    @staticmethod
    def _meta(folder: Path) -> dict:
        try:
            return json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
