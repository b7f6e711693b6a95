"""Training jobs: consolidation run off the caller's thread, with progress and cancel.

The app must stay responsive while an adapter trains (minutes, not milliseconds), and
other students keep asking questions meanwhile. A TrainingJob runs consolidate() on a
worker thread and keeps what a page needs to draw: every progress report, the result
or the one-line error.

    job = TrainingJob(session, name="v1", scenario=None, config=TrainingConfig(steps=40)).start()
    job.progress[-1].loss; job.cancel(); job.state  # "running" | "done" | "failed" | "cancelled"
"""

from __future__ import annotations

import threading
import time

from lab.errors import LabError
from lab.learning import Progress, TrainingCancelled, TrainingConfig, TrainingResult


class TrainingJob:
    def __init__(self, session, *, name: str, scenario=None, config: TrainingConfig | None = None):
        self.session = session
        self.name = name
        self.scenario = scenario
        self.config = config or TrainingConfig()
        self.progress: list[Progress] = []
        self.result: TrainingResult | None = None
        self.error: str | None = None
        self.state = "pending"
        self.started_at: float | None = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"train-{name}", daemon=True)

    def start(self) -> "TrainingJob":
        self.state = "running"
        self.started_at = time.time()
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> "TrainingJob":
        self._thread.join(timeout)
        return self

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def _run(self) -> None:
        from lab.consolidation import consolidate

        try:
            self.result = consolidate(self.session, name=self.name, scenario=self.scenario, config=self.config,
                                      on_progress=self.progress.append, cancel=self._cancel)
            self.state = "done"
        except TrainingCancelled as error:
            self.error, self.state = str(error), "cancelled"
        except LabError as error:
            self.error, self.state = error.app_message, "failed"
        except Exception as error:  # a bug must still end the job visibly, as one line
            self.error, self.state = f"unexpected {type(error).__name__}: {error}", "failed"
