"""The training queue: every training on this server runs one at a time.

A training keeps both cores of the class server busy for half a minute or more; two at
once would each take twice as long and starve everyone's questions. So a training first
takes a ticket (its place in the line, which a page can show with an expected start),
waits for its turn, and can be cancelled while it waits. One queue serves the whole
process (every browser session of the app), and a file lock under $LAB_HOME keeps a
second process on the same LAB_HOME (the CLI beside the app) from training at the same
time.

    ticket = QUEUE.join("acme", steps=40)
    with QUEUE.turn(ticket, cancel):      # waits; raises TrainingCancelled if cancelled first
        train(...)
    QUEUE.position(ticket)                # 1 = next in line, 0 = training now, None = gone
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lab import training_pace
from lab.learning import TrainingCancelled

try:
    import fcntl
except ImportError:  # Windows: the in-process queue still holds, across processes nothing does
    fcntl = None

LOCK_FILE = "training.lock"
POLL_S = 0.2  # how often a waiting ticket looks at its cancel flag and the other process's lock


@dataclass(eq=False)
class Ticket:
    """One training's place in the line."""

    label: str
    steps: int
    joined_at: float = field(default_factory=time.time)
    # A training takes its place in line when it is asked for, then prepares its data (the
    # base model's replay or distillation answers, a minute or more) and only then asks for
    # its turn: `prepare_s` is what that should take, `ready_at` when it asked.
    prepare_s: float = 0.0
    ready_at: float | None = None
    started_at: float | None = None  # when its turn came
    step: int = 0  # the running training's last reported step
    eta_s: float | None = None  # and its own estimate of what is left
    first_step_at: float | None = None  # when its first and last steps were reported (its pace)
    last_step_at: float | None = None
    waiting_elsewhere: bool = False  # first in this process's line, but another process is training

    @property
    def started(self) -> bool:
        return self.started_at is not None

    @property
    def preparing(self) -> bool:
        """Still preparing its training data: it has not asked for its turn yet."""
        return self.ready_at is None and self.started_at is None

    def prepare_left_s(self, now: float | None = None) -> float:
        """What its preparation should still take (0 once it asked for its turn)."""
        if not self.preparing:
            return 0.0
        return max(0.0, self.prepare_s - ((time.time() if now is None else now) - self.joined_at))

    def report(self, progress) -> None:
        """Called with each training Progress, so the tickets behind know when their turn comes."""
        self.step, self.eta_s = progress.step, progress.eta_s
        self.last_step_at = time.time()
        if self.first_step_at is None:
            self.first_step_at = self.last_step_at


def shared_lock_path() -> Path:
    """$LAB_HOME/.shared/training.lock: beside the shared adapters, never a workspace (a dot name)."""
    from lab.training_cache import shared_dir

    return shared_dir() / LOCK_FILE


class TrainingQueue:
    """First come, first served; one training at a time."""

    def __init__(self):
        self._changed = threading.Condition()
        self._line: list[Ticket] = []  # waiting, in order
        self._running: Ticket | None = None

    def join(self, label: str, steps: int) -> Ticket:
        ticket = Ticket(label, steps)
        with self._changed:
            self._line.append(ticket)
            self._changed.notify_all()
        return ticket

    def leave(self, ticket: Ticket) -> None:
        """Take a ticket out of the line (cancelled, or its adapter was already trained). Idempotent."""
        with self._changed:
            if ticket in self._line:
                self._line.remove(ticket)
                self._changed.notify_all()

    @contextmanager
    def turn(self, ticket: Ticket, cancel: threading.Event | None = None):
        """Wait until `ticket` is first and nothing is training (here or in another process
        on this LAB_HOME), run the block, then hand the turn to the next ticket."""
        if ticket.ready_at is None:
            ticket.ready_at = time.time()  # its data is ready: from now on it only waits
        self._wait_first(ticket, cancel)
        lock = None
        try:
            lock = self._lock_other_processes(ticket, cancel)
            ticket.started_at = time.time()
            yield ticket
        finally:
            if lock is not None:
                lock.close()  # closing the file releases the lock
            self._finish(ticket)

    @property
    def training_now(self) -> bool:
        """Whether a training of this process is running (the engine leaves it its cores)."""
        return self._running is not None

    def position(self, ticket: Ticket) -> int | None:
        """1 for the next in line, 2 after it...; 0 while it trains; None once it has left."""
        with self._changed:
            if ticket is self._running:
                return 0
            return self._line.index(ticket) + 1 if ticket in self._line else None

    def expected_start(self, ticket: Ticket, now: float | None = None) -> float | None:
        """When its turn should come (a time.time() value): what the running training says it
        has left, plus a measured estimate for each ticket ahead (what it has left to prepare,
        then its training), and no sooner than its own preparation ends. None if it has left
        the line, or if it waits for a training in another process (whose length this process
        cannot know)."""
        now = time.time() if now is None else now
        with self._changed:
            if ticket is self._running or ticket not in self._line:
                return ticket.started_at if ticket is self._running else None
            if ticket.waiting_elsewhere:
                return None
            ahead = self._line[:self._line.index(ticket)]
            wait = sum(t.prepare_left_s(now) + self.estimate_s(t.steps) for t in ahead)
            if self._running is not None:
                running = self._running
                wait += (running.eta_s if running.eta_s is not None
                         else max(0.0, self.estimate_s(running.steps) - (now - (running.started_at or now))))
            return now + max(wait, ticket.prepare_left_s(now))

    def estimate_s(self, steps: int) -> float:
        """How long a training of `steps` steps takes here, from its turn to its adapter:
        measured on this server (lab/training_pace.py)."""
        return training_pace.current().training_s(steps)

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._line)

    # ---- internals ----------------------------------------------------------------------------

    def _wait_first(self, ticket: Ticket, cancel: threading.Event | None) -> None:
        with self._changed:
            if ticket not in self._line:
                self._line.append(ticket)
            while self._line[0] is not ticket or self._running is not None:
                if cancel is not None and cancel.is_set():
                    self._line.remove(ticket)
                    self._changed.notify_all()
                    raise TrainingCancelled("the training was cancelled while it waited in the queue; "
                                            "nothing was trained or changed")
                self._changed.wait(POLL_S)
            self._line.pop(0)
            self._running = ticket

    def _lock_other_processes(self, ticket: Ticket, cancel: threading.Event | None):
        """The file lock another process on this LAB_HOME holds while it trains, polled so a
        cancel still works while waiting for it."""
        if fcntl is None:
            return None
        path = shared_lock_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+b")
        try:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    ticket.waiting_elsewhere = False
                    handle.seek(0)
                    handle.truncate()
                    handle.write(f"{os.getpid()} {ticket.label}\n".encode())
                    handle.flush()
                    return handle
                except BlockingIOError:
                    ticket.waiting_elsewhere = True
                if cancel is not None and cancel.is_set():
                    raise TrainingCancelled("the training was cancelled while it waited for another "
                                            "training on this server; nothing was trained or changed")
                time.sleep(POLL_S)
        except BaseException:
            handle.close()
            raise

    def _finish(self, ticket: Ticket) -> None:
        trained = False
        with self._changed:
            if self._running is ticket:
                self._running = None
                trained = ticket.started_at is not None and ticket.steps and ticket.step == ticket.steps
            self._changed.notify_all()
        if trained:  # to its end: its timings make the next estimates, here and after a restart
            _record_pace(ticket, time.time())


def _record_pace(ticket: Ticket, ended_at: float) -> None:
    """A training that ran to its end, timed from its ticket: the steps from the first to the
    last report (one step before the first is counted from the average), the rest loading
    the base model before them and exporting the adapter after them."""
    if ticket.first_step_at is None or ticket.last_step_at is None or ticket.started_at is None:
        return
    took = ended_at - ticket.started_at
    if ticket.steps > 1:
        per_step = (ticket.last_step_at - ticket.first_step_at) / (ticket.steps - 1)
    else:
        per_step = (ticket.first_step_at - ticket.started_at) / 2  # one step: no better split than half
    train_s = per_step * ticket.steps
    load_s = ticket.first_step_at - ticket.started_at - per_step
    training_pace.record_training(steps=ticket.steps, train_s=train_s, other_s=max(0.0, took - train_s),
                                  load_s=load_s if load_s > 0 else None)


QUEUE = TrainingQueue()  # the process's one queue: every session's trainings line up here
