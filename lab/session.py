"""A lab session: one workspace's memory and adapters, wired to the shared engine.

The CLI opens one per command; the app opens one per browser session. The engine (the
model) is shared by every session in the process; everything else is the workspace's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from lab.adapters import AdapterRegistry
from lab.agent import Agent
from lab.engine import Engine, get_engine
from lab.limits import Limits
from lab.memory import MemoryStore
from lab.workspace import Workspace, mark_used


@dataclass
class LabSession:
    workspace: Workspace
    model_path: str | None = None

    @classmethod
    def open(cls, workspace: str | None = None, model_path: str | None = None) -> "LabSession":
        opened = Workspace.open(workspace)
        mark_used(opened)  # what `workspaces prune` goes by
        return cls(opened, model_path)

    @cached_property
    def limits(self) -> Limits:
        """What the workspace may hold (lab/limits.py), read from the environment when first needed."""
        return Limits.from_env()

    @cached_property
    def memory(self) -> MemoryStore:
        return MemoryStore(self.workspace.memory_dir, limits=self.limits)

    @cached_property
    def adapters(self) -> AdapterRegistry:
        return AdapterRegistry(self.workspace.adapters_dir, limits=self.limits)

    @cached_property
    def engine(self) -> Engine:
        return get_engine(self.model_path)

    @cached_property
    def agent(self) -> Agent:
        return Agent(self.engine, self.memory, self.adapters)

    def close(self) -> None:
        if "memory" in self.__dict__:
            self.memory.close()
