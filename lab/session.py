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
from lab.memory import Memory, MemoryStore, validate_text
from lab.pinned import check_budget, pinned_tokens
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

    # ---- pinned memory: its budget needs the model's tokenizer, so it is checked here --------

    def remember(self, text: str, question: str | None = None, answer: str | None = None, source: str = "user",
                 *, pinned: bool = False, unique: bool = False) -> Memory:
        """Store a memory; a pinned one only within the pinned budget (lab/pinned.py)."""
        if pinned:
            check_budget(self.engine, self.memory, adding=validate_text(text))
        return self.memory.add(text, question=question, answer=answer, source=source, unique=unique, pinned=pinned)

    def pin(self, memory_id: int, pinned: bool = True) -> Memory:
        """Pin a stored memory (within the budget) or unpin it."""
        if pinned:
            check_budget(self.engine, self.memory, pinning=memory_id)
        return self.memory.set_pinned(memory_id, pinned)

    def pinned_tokens(self) -> int:
        """The prompt tokens the pinned memories add to every memory-arm answer now."""
        return pinned_tokens(self.engine, [m.text for m in self.memory.pinned()])

    def close(self) -> None:
        if "memory" in self.__dict__:
            self.memory.close()
