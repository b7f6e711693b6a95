"""The update test: a fact changes. Which arm answers the new value, and how fast?

A database update is instant; retraining is slow. This test shows it on a scenario of
kind `updates` (lab/scenario.py), whose items each hold an old and a new value:

    1. remember the old facts, and train an adapter on them (reused if trained before)
    2. before         ask every arm
    3. the facts change: each memory is edited in place (re-embedded), timed as update_ms
    4. after_update   ask every arm: memory says the new value, the adapter the old one
    5. retrain an adapter on the new facts, timed as retrain_s
    6. after_retrain  ask every arm again

    report = update_test(session, load_scenario("changing-facts"))
    report["after_update"]["memory"]["current"]   # share of replies giving the new value
    report["after_update"]["learned"]["stale"]    # share still giving the old one

Per arm and phase, `current` and `stale` are over the changed facts' questions (each
item's question and its paraphrases): the share of replies holding the new value, and
the share holding the old one. The usual metrics (lab/evaluate.py) sit beside them,
measured against the facts as they stand in that phase: the old ones before the update,
the new ones after it. The workspace memory is lent to the test and given back as it
was; it is not held while an adapter trains.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lab.agent import ARMS, DEFAULT_K, DEFAULT_MIN_SCORE
from lab.errors import LabError
from lab.evaluate import EVAL_MAX_TOKENS, evaluate_arms, memory_given_back
from lab.learning import TrainingCancelled, TrainingConfig, TrainingResult
from lab.scenario import UPDATES, Item, Scenario
from lab.training_queue import QUEUE, Ticket

PHASES = ("before", "after_update", "after_retrain")
PHASE_TITLES = {"before": "before the update", "after_update": "after the update",
                "after_retrain": "after retraining"}
# Both trainings use the same settings: 10 items at batch 8, so 30 steps is 24 passes over
# the facts. Measured on changing-facts' old facts (README), learned-arm reliability: 0.6 at
# 15 steps, 0.8 at 20, 1.0 at 30 and at 40; 30 steps took 44 s on the busy 2-core machine.
UPDATE_STEPS = 30
STAGES = ("train_old", "before", "update", "after_update", "retrain", "after_retrain")
STAGE_TEXT = {  # what each stage is doing, for the page and the terminal
    "pending": "starting…", "train_old": "training an adapter on the old facts (reused if this server trained it before)",
    "before": "asking every arm, with the old facts in memory and in the adapter",
    "update": "the facts change: editing each memory in place",
    "after_update": "asking every arm again: memory edited, the adapter as it was",
    "retrain": "retraining the adapter on the new facts (timed)",
    "after_retrain": "asking every arm with the retrained adapter"}


def default_config() -> TrainingConfig:
    # No replay: the lesson is staleness, and replay's share of these few steps would leave the
    # old facts half learnt before they change.
    return TrainingConfig(steps=UPDATE_STEPS, replay=False)


def adapter_names(scenario: Scenario) -> tuple[str, str]:
    """The workspace names of the two adapters the test registers (replaced on every run):
    adapter_names(changing_facts) -> ("changing-facts-old", "changing-facts-new")"""
    return f"{scenario.name}-old", f"{scenario.name}-new"


# ---- current and stale ----------------------------------------------------------------------


def changed_questions(scenario: Scenario, truth: Scenario) -> list[tuple[str, Item, Item]]:
    """(question, item, truth's item) for every question about a changed fact: each item's own,
    then its paraphrases; `truth` is the scenario as it stands in the phase (before_update or
    after_update), whose items the evaluation asked with."""
    return [(q, item, told) for item, told in zip(scenario.items, truth.items)
            for q in (item.question, *item.paraphrases)]


def current_and_stale(session, scenario: Scenario, truth: Scenario, arm: str, *, adapter_file: Path | None,
                      reply_cache: dict, on_wait: Callable | None = None, k: int | None = None,
                      min_score: float | None = None) -> dict:
    """{"current", "stale"}: of the replies to the changed facts' questions, the share giving
    the new value and the share giving the old one (a reply may give both, or neither).

    These are the very replies evaluate_arms read for reliability and generalization: the
    same prompts, stopped the same way (once the phase's true value shows), so with its
    `reply_cache` they cost nothing more. A reply that gives the old value before the new one
    counts for both."""
    pairs = changed_questions(scenario, truth)
    options = dict(k=k or DEFAULT_K, min_score=DEFAULT_MIN_SCORE if min_score is None else min_score,
                   adapter_file=adapter_file, reply_cache=reply_cache, max_tokens=EVAL_MAX_TOKENS)
    answers = session.agent.answer_many([q for q, _, _ in pairs], arm, stop_when=[told.matches for _, _, told in pairs],
                                        **options, **(dict(on_wait=on_wait) if on_wait else {}))
    current = sum(item.update.matches(a.answer) for (_, item, _), a in zip(pairs, answers))
    stale = sum(item.matches(a.answer) for (_, item, _), a in zip(pairs, answers))
    return {"current": current / len(pairs), "stale": stale / len(pairs)}


# ---- the test ------------------------------------------------------------------------------------


def update_scenarios() -> list[str]:
    """The bundled scenarios whose facts change (kind `updates`)."""
    from lab.scenario import bundled_names, load_scenario

    return [name for name in bundled_names() if load_scenario(name).kind == UPDATES]


def check_updates(scenario: Scenario) -> None:
    if scenario.kind != UPDATES or not all(i.update for i in scenario.items):
        raise LabError(f"the update test needs a scenario of kind {UPDATES!r}, whose items each have an old and a "
                       f"new value; {scenario.name!r} is of kind {scenario.kind!r} (try: changing-facts)",
                       in_app=f"The update test needs a scenario whose facts change; {scenario.name} has no "
                              "updates. Choose changing-facts.")


def update_test(session, scenario: Scenario, arms=ARMS, *, config: TrainingConfig | None = None,
                on_progress: Callable[[str, str, dict | None], None] | None = None,
                on_stage: Callable[[str], None] | None = None,
                on_training: Callable[[Ticket, object], None] | None = None,
                on_wait: Callable | None = None, cancel: threading.Event | None = None,
                details: dict | None = None) -> dict:
    """Run the update test (the module docstring has the steps) and return
    {"scenario", "before", "after_update", "update_ms", "retrain_s", "after_retrain"}, each
    phase {ARM: {"current", "stale", reliability..., prompt_tokens, latency_ms}}.

    `on_stage(stage)` is told each of STAGES as it begins; `on_progress(phase, arm, metrics)`
    each arm as it starts (metrics None) and is measured; `on_training(ticket, progress)` a
    training's place in the queue (progress None) and each of its steps. `cancel` stops it
    between arms, or the training where it is. `details`, when given, receives what the
    report leaves out: the adapters' names, whether each training was reused, the wall time.
    `retrain_s` is the retraining's own time: when an identical training was done before on
    this server it is reused in about a second, and retrain_s is what that training took."""
    check_updates(scenario)
    config = (config or default_config()).validate()
    old, new = scenario.before_update(), scenario.after_update()
    arms = [arm for arm in ARMS if arm in arms]
    learns = bool({"learned", "both"} & set(arms))
    old_name, new_name = adapter_names(scenario)
    extra = details if details is not None else {}
    started = time.perf_counter()
    cache: dict = {}

    def stage(name: str) -> None:
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled("the update test was cancelled; your memory is as it was")
        if on_stage:
            on_stage(name)

    def measure(phase: str, truth: Scenario, adapter: Path | None) -> dict:
        report = {}
        for arm in arms:
            if cancel is not None and cancel.is_set():
                raise TrainingCancelled("the update test was cancelled; your memory is as it was")
            if on_progress:
                on_progress(phase, arm, None)
            metrics = evaluate_arms(session, truth, [arm], adapter_file=adapter, reply_cache=cache,
                                    on_wait=on_wait)[arm]
            report[arm] = {**current_and_stale(session, scenario, truth, arm, adapter_file=adapter,
                                               reply_cache=cache, on_wait=on_wait), **metrics}
            if on_progress:
                on_progress(phase, arm, report[arm])
        return report

    # 1. The old facts go into the weights (minutes, or a second when reused) before the memory
    # is lent: the user's own memory is never away while an adapter trains.
    stage("train_old")
    trained_old = _train(session, old_name, old, config, on_training, cancel) if learns else None
    old_adapter = trained_old.path if trained_old else None
    with memory_given_back(session):
        memories = _remember(session, old)
        stage("before")
        before = measure("before", old, old_adapter)
        # 2. The facts change. Memory is edited in place: each record's text, question and answer
        # rewritten and its text embedded again.
        stage("update")
        clock = time.perf_counter()
        for memory, item in zip(memories, new.items):
            session.memory.update(memory.id, text=item.correction_text, question=item.question, answer=item.answer)
        update_ms = (time.perf_counter() - clock) * 1000
        stage("after_update")
        after_update = measure("after_update", new, old_adapter)
    # 3. Retraining, with the user's memory back in place while it runs.
    stage("retrain")
    trained_new = _train(session, new_name, new, config, on_training, cancel) if learns else None
    with memory_given_back(session):
        _remember(session, new)  # the same records the edit left (texts, questions, answers)
        stage("after_retrain")
        after_retrain = measure("after_retrain", new, trained_new.path if trained_new else None)
    extra.update({
        "adapters": {"old": old_name, "new": new_name} if learns else None,
        "reused": {"old": trained_old.reused, "new": trained_new.reused} if learns else None,
        "retrain_wall_s": round(trained_new.seconds, 2) if learns else None,
        "steps": config.steps, "seconds": round(time.perf_counter() - started, 2)})
    return {"scenario": scenario.name, "before": before, "after_update": after_update,
            "update_ms": round(update_ms, 1),
            "retrain_s": round(trained_new.training_seconds, 1) if learns else None,
            "after_retrain": after_retrain}


def _remember(session, facts: Scenario):
    """An empty memory holding each item's note, in item order (the records, for editing)."""
    session.memory.wipe()
    return session.memory.add_many([{"text": i.correction_text, "question": i.question, "answer": i.answer,
                                     "source": f"scenario:{facts.name}"} for i in facts.items])


def _train(session, name: str, facts: Scenario, config: TrainingConfig, on_training, cancel) -> TrainingResult:
    """An adapter on `facts`, registered under `name` and not activated: through the server's
    training queue, or the same training reused from the class's cache (lab/training_cache.py)."""
    from lab.consolidation import consolidate

    ticket = QUEUE.join(name, config.steps)
    if on_training:
        on_training(ticket, None)
    return consolidate(session, name=name, scenario=facts, config=config, activate=False, ticket=ticket,
                       cancel=cancel, on_progress=(lambda p: on_training(ticket, p)) if on_training else None)


# ---- reading the report --------------------------------------------------------------------


def headline(report: dict) -> str:
    """One sentence: what the memory and the learned arm said after the update, and the two times."""
    after = report["after_update"]
    parts = []
    if "memory" in after:
        parts.append(f"memory gives the new value in {after['memory']['current']:.0%} of its replies")
    if "learned" in after:
        parts.append(f"the adapter still gives the old one in {after['learned']['stale']:.0%}")
    times = f"editing memory took {report['update_ms']:.0f} ms"
    if report["retrain_s"] is not None:
        times += f", retraining {report['retrain_s']:.0f} s"
    return "After the update " + "; ".join(parts) + f" ({times})."


def adapters_left_text(names, active: str | None, *, command_line: bool = False) -> str:
    """What the test leaves in the workspace's adapter list, and what to do with it.

    >>> adapters_left_text(["f-old", "f-new"], None)[:60]
    'The test left 2 adapters in your list: **f-old** (the old fa'
    """
    shown = [f"**{n}**" if not command_line else n for n in names]
    described = ", ".join(f"{s} ({'the old facts' if n.endswith('-old') else 'retrained on the new facts'})"
                          for s, n in zip(shown, names))
    still = f"your active adapter is still {active}" if active else "no adapter is active"
    if command_line:
        return (f"left {len(names)} adapters in this workspace: {described}; replaced on every run, never "
                f"activated ({still}). Ask one: python -m lab ask QUESTION --arm learned --adapter NAME; remove one: "
                f"python -m lab adapters delete NAME")
    return (f"The test left {len(names)} adapter{'s' if len(names) != 1 else ''} in your list: {described}. They "
            f"are replaced on every run and were never activated: {still}. Activate the old one on the "
            "**Learning** page and the Playground's learned arm gives the stale fact; or delete them here.")


def table(report: dict, details: dict | None = None) -> str:
    """A readable table for the terminal: per arm, current / stale and reliability in each phase."""
    def cell(v):
        return "   -" if v is None else f"{v:4.2f}"

    phases = [p for p in PHASES if report.get(p)]
    head = f"{'arm':8} " + " ".join(f"{PHASE_TITLES[p]:>25}" for p in phases)
    sub = f"{'':8} " + " ".join(f"{'current stale reliab.':>25}" for _ in phases)
    lines = [head, sub]
    for arm in report["before"]:
        lines.append(f"{arm:8} " + " ".join(
            f"{cell(m['current']):>11} {cell(m['stale']):>5} {cell(m['reliability']):>7}"
            for m in (report[p][arm] for p in phases)))
    lines.append(f"locality (unrelated questions kept): " + ", ".join(
        f"{arm} {cell(report['after_update'][arm]['locality']).strip()}" for arm in report["after_update"]))
    lines.append(f"memory edited in place in {report['update_ms']:.1f} ms")
    if report["retrain_s"] is not None:
        reused = (details or {}).get("reused") or {}
        lines.append(f"retraining took {report['retrain_s']:.1f} s" + (
            " (the same training had been done on this server before, so it was reused in "
            f"{details['retrain_wall_s']:.2f} s; {report['retrain_s']:.1f} s is what it took then)"
            if reused.get("new") else ""))
    lines.append(headline(report))
    if (details or {}).get("adapters"):
        lines.append(adapters_left_text(list(details["adapters"].values()), details.get("active"), command_line=True))
    return "\n".join(lines)


# ---- the test off the page's thread ---------------------------------------------------------------


class _TrainingView:
    """The running (or queued) training of an UpdateTestJob, shaped like a lab.jobs.TrainingJob
    for ui.training_progress: state, position, expected start, progress, cancel."""

    def __init__(self, job: "UpdateTestJob", ticket: Ticket):
        self._job, self.ticket, self.progress = job, ticket, []

    @property
    def state(self) -> str:
        if self._job.finished or self._job.training is not self:
            return "done"
        return "running" if self.ticket.started else "queued"

    @property
    def finished(self) -> bool:
        return self.state == "done"

    @property
    def position(self) -> int | None:
        return QUEUE.position(self.ticket) if self.state == "queued" else None

    @property
    def expected_start(self) -> float | None:
        return QUEUE.expected_start(self.ticket) if self.state == "queued" else None

    @property
    def waiting_elsewhere(self) -> bool:
        return bool(self.ticket.waiting_elsewhere and self.state == "queued")

    def cancel(self) -> None:
        self._job.cancel()


class UpdateTestJob:
    """update_test() on a worker thread, keeping what a page draws while it runs:

        job = UpdateTestJob(session, scenario).start()
        job.stage        # one of STAGES, or "done" / "failed" / "cancelled"
        job.partial      # {phase: {arm: metrics}} measured so far; job.running_arm = (phase, arm)
        job.training     # the training now queued or running (ui.training_progress draws it), or None
        job.report, job.details, job.error
    """

    def __init__(self, session, scenario: Scenario, arms=ARMS, *, config: TrainingConfig | None = None):
        check_updates(scenario)  # a wrong scenario is refused on the caller's thread, as one line
        self.session, self.scenario, self.arms, self.config = session, scenario, list(arms), config
        self.stage: str = "pending"
        self.partial: dict[str, dict] = {phase: {} for phase in PHASES}
        self.running_arm: tuple[str, str] | None = None
        self.training: _TrainingView | None = None
        self.waiting: str | None = None  # where its questions stand behind other sessions' requests
        self.report: dict | None = None
        self.details: dict = {}
        self.error: str | None = None
        self.started_at: float | None = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"update-test-{scenario.name}", daemon=True)

    def start(self) -> "UpdateTestJob":
        self.started_at = time.time()
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> "UpdateTestJob":
        self._thread.join(timeout)
        return self

    @property
    def finished(self) -> bool:
        return self.stage in ("done", "failed", "cancelled")

    def _on_stage(self, stage: str) -> None:
        self.stage, self.training, self.running_arm = stage, None, None

    def _on_progress(self, phase: str, arm: str, metrics: dict | None) -> None:
        self.waiting = None
        if metrics is None:
            self.running_arm = (phase, arm)
        else:
            self.partial[phase][arm] = metrics

    def _on_training(self, ticket: Ticket, progress) -> None:
        if self.training is None or self.training.ticket is not ticket:
            self.training = _TrainingView(self, ticket)
        if progress is not None:
            self.training.progress.append(progress)

    def _run(self) -> None:
        try:
            self.report = update_test(self.session, self.scenario, self.arms, config=self.config,
                                      on_progress=self._on_progress, on_stage=self._on_stage,
                                      on_training=self._on_training, cancel=self._cancel, details=self.details,
                                      on_wait=lambda place: setattr(self, "waiting", place.describe()))
            self.stage = "done"
        except TrainingCancelled as error:
            self.error, self.stage = str(error), "cancelled"
        except LabError as error:
            self.error, self.stage = error.app_message, "failed"
        except Exception as error:  # a bug must still end the job visibly, as one line
            self.error, self.stage = f"unexpected {type(error).__name__}: {error}", "failed"
        finally:
            self.training = None
