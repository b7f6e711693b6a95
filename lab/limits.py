"""Workspace limits: how much one workspace may hold, so one student cannot fill the server.

Three limits, each generous for a class and each overridable by an environment variable:

    LAB_MAX_MEMORIES      memories per workspace          (default 2,000)
    LAB_MAX_ADAPTERS      adapters per workspace          (default 20)
    LAB_MAX_WORKSPACE_MB  megabytes on disk per workspace (default 500)

A LabSession reads them when it opens and hands them to its workspace's MemoryStore and
AdapterRegistry (a bare store, as in the benchmarks, has none). They are checked before the
change, so a refused attempt changes nothing: remembering or importing memories,
registering a trained adapter (before training starts, too), and the writes that add much
(an adapter's files, a merged model). Each refusal is one line, in the app's words too.

    check_memory_room(Limits(2000, 20, 500_000_000), count=1999, adding=5)
    # LimitReached: this workspace holds 1,999 memories and its limit is 2,000 (LAB_MAX_MEMORIES)...
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.plural import plural

MEMORIES_ENV, ADAPTERS_ENV, BYTES_ENV = "LAB_MAX_MEMORIES", "LAB_MAX_ADAPTERS", "LAB_MAX_WORKSPACE_MB"
DEFAULT_MEMORIES, DEFAULT_ADAPTERS, DEFAULT_MB = 2000, 20, 500
# What one memory costs on disk, about: its SQLite row with the 384-float embedding and a
# history row, plus its place in the hnswlib index file.
BYTES_PER_MEMORY = 4096


class LimitReached(LabError):
    """A workspace limit would be passed; nothing was changed."""


def _number(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise LabError(f"{variable} must be a number, not {raw[:20]!r}") from None
    if not value >= 0:
        raise LabError(f"{variable} must be 0 or more, not {raw[:20]!r}")
    return value


@dataclass(frozen=True)
class Limits:
    memories: int
    adapters: int
    bytes: int

    @classmethod
    def from_env(cls) -> "Limits":
        """Read afresh each time: a teacher can change a limit without restarting anything."""
        return cls(memories=int(_number(MEMORIES_ENV, DEFAULT_MEMORIES)),
                   adapters=int(_number(ADAPTERS_ENV, DEFAULT_ADAPTERS)),
                   bytes=int(_number(BYTES_ENV, DEFAULT_MB) * 1_000_000))


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under `folder` (what `workspaces list` reports)."""
    folder = Path(folder)
    if not folder.exists():
        return 0
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:  # removed while we looked
            pass
    return total


def check_memory_room(limits: Limits, count: int, adding: int) -> None:
    if count + adding > limits.memories:
        raise LimitReached(
            f"this workspace holds {plural(count, 'memory')} and its limit is {limits.memories:,} "
            f"({MEMORIES_ENV}); adding {adding:,} would pass it: delete some first "
            "(python -m lab memory delete ID) or raise the limit",
            in_app=f"This workspace holds {plural(count, 'memory')} and may hold {limits.memories:,}: adding "
                   f"{adding:,} would pass the limit. Delete some on the Memory page first.")


def check_adapter_room(limits: Limits, count: int) -> None:
    """For one more adapter (replacing an existing name adds none: don't call it then)."""
    if count + 1 > limits.adapters:
        raise LimitReached(
            f"this workspace holds {plural(count, 'adapter')}, its limit ({ADAPTERS_ENV}={limits.adapters}); "
            "delete one first (python -m lab adapters delete NAME) or train under an existing name",
            in_app=f"This workspace holds {plural(count, 'adapter')}, as many as it may. Delete one in the Adapters "
                   "list on the Learning page first, or train under an existing adapter's name.")


def check_disk_room(limits: Limits, workspace_root: Path, adding: int) -> None:
    """Before a write of about `adding` bytes into the workspace."""
    used = folder_bytes(workspace_root)
    if used + adding > limits.bytes:
        raise LimitReached(
            f"this workspace uses {used / 1e6:.1f} MB of its {limits.bytes / 1e6:.0f} MB ({BYTES_ENV}) and "
            f"this would add about {adding / 1e6:.1f} MB: delete adapters or merged models first "
            "(python -m lab adapters delete NAME) or raise the limit",
            in_app=f"This workspace uses {used / 1e6:.1f} MB of the {limits.bytes / 1e6:.0f} MB it may use, and "
                   f"this would add about {adding / 1e6:.1f} MB. Delete an adapter on the Learning page first.")
