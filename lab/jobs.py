"""Training jobs: consolidation run off the caller's thread, with progress and cancel.

The app must stay responsive while an adapter trains (minutes, not milliseconds), and
other students keep asking questions meanwhile. A TrainingJob runs consolidate() on a
worker thread and keeps what a page needs to draw: what it is doing (`stage`), its place in
the server's training queue while it waits, every progress report, the result or the
one-line error.

    job = TrainingJob(session, name="v1", scenario=None, config=TrainingConfig(steps=40)).start()
    job.state        # "queued" | "running" | "done" | "failed" | "cancelled"
    job.stage        # "preparing" | "queued" | "loading" | "training" | "saving" | ... (describe(job) says it)
    job.position     # while queued: 1 = next in line
    job.expected_start; job.progress[-1].loss; job.cancel()  # cancel works queued or running

A job outlives the browser session that started it: a reload opens a new session of the
same workspace, and the training goes on. So every started job is also kept on BOARD, by
workspace and slot, where the new session finds it (BOARD.find) and shows it, progress and
Cancel included, instead of an adapter turning active later with nobody told.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from lab.consolidation import DEFAULT_METHOD
from lab.errors import LabError
from lab.learning import Progress, TrainingCancelled, TrainingConfig, TrainingResult
from lab.training_queue import QUEUE, Ticket

FINISHED = ("done", "failed", "cancelled")


# ---- what a training prepares before its turn ------------------------------------------------


@dataclass(frozen=True)
class Preparation:
    """The answers the base model gives before a training can ask for its turn: replay
    answers, and for distillation the teacher's replies. `new` of them are not in the class's
    reply cache yet and must be generated; the rest come back in a moment."""

    answers: int
    new: int
    what: str  # "the replay questions", ...

    @property
    def cached(self) -> int:
        return self.answers - self.new


def preparation(session, *, method: str, config: TrainingConfig, scenario=None, memories=None) -> Preparation:
    """What consolidate() will ask the base model before training, counted the way it asks:
    `memories` None means the whole memory. Distillation's replies depend on what retrieval
    sends, so they all count as new; the replay questions are looked up in the reply cache.

    An estimate, not a promise: lab/consolidation.py decides what it asks."""
    from lab import prompting
    from lab.consolidation import REPLAY_QUESTIONS, REWORDINGS, rule_questions

    distilled, rule = 0, False
    if method == "distill":
        if scenario is not None:
            asked, rule = len(scenario.items), bool(scenario.rule)
        else:
            chosen = session.memory.list() if memories is None else list(memories)
            asked, rule = sum(bool(m.question) for m in chosen), any(m.pinned for m in chosen)
        distilled = len(REWORDINGS) * asked + (len(rule_questions()) if rule else 0)
    replayed = (REPLAY_QUESTIONS[0::2] if rule else REPLAY_QUESTIONS) if config.replay else ()
    cached = sum(session.engine.in_reply_cache([prompting.question_messages(q) for q, _ in replayed])) \
        if replayed else 0
    parts = ([f"{distilled} distillation questions (each with its notes)"] if distilled else []) + \
            ([f"{len(replayed)} replay questions"] if replayed else [])
    return Preparation(answers=distilled + len(replayed), new=distilled + len(replayed) - cached,
                       what=" and ".join(parts) or "nothing")


def base_converted(engine) -> bool:
    """Whether the base model's PyTorch copy exists (lab/learning.load_base makes it once per
    base file): until then a training first converts the GGUF, which takes a while."""
    from lab.learning import base_cache_dir
    from lab.models import resolve_model_path

    try:
        return (base_cache_dir(resolve_model_path(engine.path)) / "model.safetensors").exists()
    except (OSError, LabError):
        return False


# ---- the job ---------------------------------------------------------------------------------


class TrainingJob:
    def __init__(self, session, *, name: str, scenario=None, config: TrainingConfig | None = None,
                 method: str = DEFAULT_METHOD, slot: str | None = None):
        self.session = session
        self.name = name
        self.scenario = scenario
        self.config = config or TrainingConfig()
        self.method = method
        self.slot = slot or f"{type(self).__name__}:{name}"  # where BOARD keeps it for its workspace
        self.progress: list[Progress] = []
        self.result: TrainingResult | None = None
        self.error: str | None = None
        self.started_at: float | None = None
        self.ticket: Ticket | None = None
        self.prepared: Preparation | None = None
        self.base_converted = True
        self.finished_at: float | None = None
        self.reported = False  # the page that started it has shown how it ended (BOARD.find stops offering it)
        self.announced = False  # a sidebar has said how it ended (BOARD.unseen stops listing it)
        self._queue = QUEUE  # the server's one line (consolidate waits in it)
        self._outcome: str | None = None  # one of FINISHED once the worker has ended
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"train-{name}", daemon=True)

    @property
    def workspace(self) -> str:
        return self.session.workspace.name

    def _memories(self):
        return None  # the whole memory (a ConsolidationJob trains on chosen ones)

    def start(self) -> "TrainingJob":
        # What it prepares, and so when it should be ready, is counted before it joins the line:
        # the tickets behind it wait for that too.
        try:
            self.prepared = preparation(self.session, method=self.method, config=self.config,
                                        scenario=self.scenario, memories=self._memories())
        except (LabError, OSError):
            self.prepared = None  # only an estimate: the training says what is wrong, if anything
        self.base_converted = base_converted(self.session.engine)
        # The place in line is taken now, on the caller's thread, so the page that started
        # the job can show it at once.
        self.ticket = self._queue.join(self.name, self.config.steps)
        if self.prepared is not None:
            from lab import training_pace

            self.ticket.prepare_s = training_pace.current().preparing_s(self.prepared.new)
        self.started_at = time.time()
        BOARD.keep(self)
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
    def stage(self) -> str:
        return stage_of(self)

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
            self.finished_at = time.time()
            self._record_preparation()

    def _record_preparation(self) -> None:
        """How long the base model's answers took, for the next estimates (lab/training_pace.py):
        until it asked for its turn, or until it ended where an identical training was reused."""
        from lab import training_pace

        prepared, ticket = self.prepared, self.ticket
        if prepared is None or not prepared.new or ticket is None or self._outcome == "failed":
            return
        if ticket.ready_at is None and self._outcome != "done":
            return  # cancelled while preparing: it never finished
        ended = ticket.ready_at if ticket.ready_at is not None else self.finished_at
        training_pace.record_preparation(answers=prepared.new, seconds=ended - ticket.joined_at)


class ConsolidationJob(TrainingJob):
    """Consolidate chosen memories in the background: train, verify without notes, and retire
    what verified (lab/consolidation.consolidate_memories). `report` holds its result."""

    def __init__(self, session, *, name: str, memories, method: str = DEFAULT_METHOD, retire: bool = False,
                 config: TrainingConfig | None = None, slot: str | None = None):
        super().__init__(session, name=name, config=config, method=method, slot=slot)
        self.memories, self.retire = list(memories), retire
        self.report: dict | None = None

    def _memories(self):
        return self.memories

    def _work(self) -> None:
        from lab.consolidation import consolidate_memories

        self.report = consolidate_memories(self.session, self.memories, name=self.name, method=self.method,
                                           retire=self.retire, config=self.config, on_progress=self.progress.append,
                                           cancel=self._cancel, ticket=self.ticket)


# ---- what a job is doing, in words ----------------------------------------------------------------


def stage_of(job) -> str:
    """What an unfinished training is doing, for anything shaped like a TrainingJob (state,
    ticket, position, progress): "preparing" its data, "queued" for its turn, "registering" an
    identical training's adapter, "loading" the base model, "training", "saving" the adapter;
    or how it ended."""
    state, ticket = job.state, getattr(job, "ticket", None)
    if state in FINISHED or ticket is None:
        return state
    if state == "queued":
        if getattr(job, "waiting_elsewhere", False):
            return "queued"  # its turn here came; another process on this LAB_HOME is training
        if job.position is None:
            return "registering"  # out of the line: an identical training done before is reused
        return "preparing" if ticket.preparing else "queued"
    last = job.progress[-1] if job.progress else None
    if last is None:
        return "loading"
    return "saving" if last.step >= last.steps else "training"


def _about(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def describe(job, now: float | None = None) -> str:
    """One line on what an unfinished training is doing and how long that should take, from
    this server's measured pace (lab/training_pace.py). Queued and training lines are the
    page's (they hold a place in line or a progress bar); this says the rest."""
    from lab import training_pace

    now = time.time() if now is None else now
    stage, ticket = stage_of(job), job.ticket
    pace = training_pace.current()
    if stage == "preparing":
        prepared: Preparation | None = getattr(job, "prepared", None)
        if prepared is None or not prepared.answers:
            return "Preparing the training data…"
        if not prepared.new:
            return (f"Preparing the training data: the base model's answers to the {prepared.what} are all in "
                    "the class's reply cache, so this takes a moment.")
        rate = (f"{pace.seconds_per_answer:.1f} s an answer, measured on this server" if pace.answers_measured
                else f"a first guess of {pace.seconds_per_answer:.1f} s an answer (nothing measured here yet)")
        cached = f"; {prepared.cached} more come from the class's reply cache" if prepared.cached else ""
        head = (f"Preparing the training data: the base model answers the {prepared.what} first "
                f"({prepared.new} new answers{cached}).")
        expected, spent = ticket.prepare_s, now - ticket.joined_at
        if spent <= expected:
            return f"{head} About {_about(expected - spent)} left, at {rate}."
        return (f"{head} Taking longer than the {_about(expected)} expected at {rate}: the shared model may be "
                "busy answering questions too.")
    if stage == "registering":
        return "An identical training was done on this server before: getting its adapter ready…"
    if stage == "loading":
        if not getattr(job, "base_converted", True):
            return ("Converting the base model for training: the first time on this server only (the converted "
                    "copy is kept), then the steps start…")
        left = max(0.0, pace.loading_s - (now - (ticket.started_at or now)))
        return f"Loading the base model for training: about {_about(left)} before the first step (measured here)…"
    if stage == "saving":
        return "Saving the adapter: exporting it to GGUF and checking that llama.cpp loads it…"
    return ""


# ---- jobs by workspace: what a reload finds ------------------------------------------------------


class Board:
    """Every started job of this process, by workspace and slot (one per slot: a new one
    replaces the last). A browser reload is a new Streamlit session: st.session_state is gone,
    the job is not. The page asks here for its slot and finds the job still running, or
    finished with nobody told yet."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, TrainingJob]] = {}

    def keep(self, job: TrainingJob) -> TrainingJob:
        with self._lock:
            self._jobs.setdefault(job.workspace, {})[job.slot] = job
        return job

    def find(self, workspace: str, slot: str) -> TrainingJob | None:
        """The workspace's job in `slot` if it is running, or ended without a page showing how."""
        with self._lock:
            job = self._jobs.get(workspace, {}).get(slot)
        return job if job is not None and not (job.finished and job.reported) else None

    def unseen(self, workspace: str) -> list[TrainingJob]:
        """The workspace's running jobs and those ended with nobody told, oldest first."""
        with self._lock:
            jobs = list(self._jobs.get(workspace, {}).values())
        return sorted((j for j in jobs if not (j.finished and (j.reported or j.announced))),
                      key=lambda j: j.started_at or 0)

    def forget(self, workspace: str) -> None:
        with self._lock:
            self._jobs.pop(workspace, None)


BOARD = Board()  # the process's one board: every session of every workspace
