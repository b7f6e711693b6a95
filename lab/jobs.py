"""Training jobs: consolidation run off the caller's thread, with progress and cancel.

The app must stay responsive while an adapter trains (minutes, not milliseconds), and
other students keep asking questions meanwhile. A TrainingJob runs consolidate() on a
worker thread and keeps what a page needs to draw: its place in the server's training
queue while it waits, every progress report, the result or the one-line error.

    job = TrainingJob(session, name="v1", scenario=None, config=TrainingConfig(steps=40)).start()
    job.state        # "queued" | "running" | "done" | "failed" | "cancelled"
    job.position     # while queued: 1 = next in line
    job.expected_start; job.progress[-1].loss; job.cancel()  # cancel works queued or running
"""

from __future__ import annotations

import threading
import time

from lab.consolidation import DEFAULT_METHOD
from lab.errors import LabError
from lab.learning import Progress, TrainingCancelled, TrainingConfig, TrainingResult
from lab.training_queue import QUEUE, Ticket

FINISHED = ("done", "failed", "cancelled")


class TrainingJob:
    def __init__(self, session, *, name: str, scenario=None, config: TrainingConfig | None = None,
                 method: str = DEFAULT_METHOD):
        self.session = session
        self.name = name
        self.scenario = scenario
        self.config = config or TrainingConfig()
        self.method = method
        self.progress: list[Progress] = []
        self.result: TrainingResult | None = None
        self.error: str | None = None
        self.started_at: float | None = None
        self.ticket: Ticket | None = None
        self._queue = QUEUE  # the server's one line (consolidate waits in it)
        self._outcome: str | None = None  # one of FINISHED once the worker has ended
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"train-{name}", daemon=True)

    def start(self) -> "TrainingJob":
        # The place in line is taken now, on the caller's thread, so the page that started
        # the job can show it at once.
        self.ticket = self._queue.join(self.name, self.config.steps)
        self.started_at = time.time()
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> "TrainingJob":
        self._thread.join(timeout)
        return self

    @property
    def state(self) -> str:
        if self._outcome is not None:
            return self._outcome
        if self.ticket is None:
            return "pending"
        return "running" if self.ticket.started else "queued"

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def position(self) -> int | None:
        """While queued, its place in line (1 = next); else None."""
        return self._queue.position(self.ticket) if self.state == "queued" else None

    @property
    def expected_start(self) -> float | None:
        """While queued, when its turn should come (time.time()); None if unknown or not queued."""
        return self._queue.expected_start(self.ticket) if self.state == "queued" else None

    @property
    def waiting_elsewhere(self) -> bool:
        """Queued behind a training in another process (the CLI on the same LAB_HOME)."""
        return bool(self.ticket and self.ticket.waiting_elsewhere and self.state == "queued")

    def _work(self) -> None:
        from lab.consolidation import consolidate

        self.result = consolidate(self.session, name=self.name, scenario=self.scenario, config=self.config,
                                  on_progress=self.progress.append, cancel=self._cancel, ticket=self.ticket,
                                  method=self.method)

    def _run(self) -> None:
        try:
            self._work()
            self._outcome = "done"
        except TrainingCancelled as error:
            self.error, self._outcome = str(error), "cancelled"
        except LabError as error:
            self.error, self._outcome = error.app_message, "failed"
        except Exception as error:  # a bug must still end the job visibly, as one line
            self.error, self._outcome = f"unexpected {type(error).__name__}: {error}", "failed"
        finally:
            self._queue.leave(self.ticket)  # never left blocking the line, whatever happened


class ConsolidationJob(TrainingJob):
    """Consolidate chosen memories in the background: train, verify without notes, and retire
    what verified (lab/consolidation.consolidate_memories). `report` holds its result."""

    def __init__(self, session, *, name: str, memories, method: str = DEFAULT_METHOD, retire: bool = False,
                 config: TrainingConfig | None = None):
        super().__init__(session, name=name, config=config, method=method)
        self.memories, self.retire = list(memories), retire
        self.report: dict | None = None

    def _work(self) -> None:
        from lab.consolidation import consolidate_memories

        self.report = consolidate_memories(self.session, self.memories, name=self.name, method=self.method,
                                           retire=self.retire, config=self.config, on_progress=self.progress.append,
                                           cancel=self._cancel, ticket=self.ticket)
