"""Measuring memory and learning, the way knowledge-editing research does (EasyEdit's
reliability, generalization, locality and portability), plus what this lab adds.

For each arm, over a scenario:
    reliability     the item questions (what was corrected)
    generalization  the items' paraphrases
    locality        of the unrelated questions the base arm gets right, the share the arm
                    still gets right (None when the base gets none right)
    reverse         the reverse questions (knowing A->B, asked B->A)
    adherence       the held-out probes (a behaviour: does the habit carry over?)
    prompt_tokens, latency_ms   means per question
    answer_logprob  mean teacher-forced log-probability per token of the item answers
                    (a continuous companion to reliability; optional, it costs time)
A metric with no questions is None, not 0.
"""

from __future__ import annotations

import statistics
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lab.agent import ARMS
from lab.scenario import Scenario, can_stop_early

METRICS = ("reliability", "generalization", "locality", "reverse", "adherence")
EVAL_MAX_TOKENS = 24  # replies are one sentence; the target shows up early


@dataclass
class _Asked:
    correct: bool
    prompt_tokens: int
    latency_ms: float


def _share(results: list[_Asked]) -> float | None:
    return sum(r.correct for r in results) / len(results) if results else None


def evaluate_arms(session, scenario: Scenario, arms=ARMS, *, adapter_file: Path | None = None,
                  k: int | None = None, min_score: float | None = None, logprob: bool = False,
                  reply_cache: dict | None = None,
                  on_arm: Callable[[str, dict | None], None] | None = None,
                  tally: dict | None = None, on_wait: Callable | None = None) -> dict[str, dict]:
    """Metrics for each arm on the scenario, with the workspace memory as it is now.
    `on_arm(arm, None)` is called as an arm starts and `on_arm(arm, metrics)` once it is
    measured, so a page can draw each arm's bars while the next one runs. `tally` counts the
    replies asked and those the class's reply cache gave ("asked", "from_cache")."""
    from lab.agent import DEFAULT_K, DEFAULT_MIN_SCORE

    agent = session.agent
    cache = reply_cache if reply_cache is not None else {}
    options = dict(k=k or DEFAULT_K, min_score=DEFAULT_MIN_SCORE if min_score is None else min_score,
                   adapter_file=adapter_file, reply_cache=cache, max_tokens=EVAL_MAX_TOKENS)
    queue_options = dict(on_wait=on_wait) if on_wait else {}  # told its place while others' requests go first

    def ask_all(pairs, arm: str) -> list[_Asked]:
        """(question, matcher) pairs answered together by one arm (batched decoding)."""
        if not pairs:
            return []
        # Stop each reply as soon as its target shows, where a later token cannot undo a match.
        answers = agent.answer_many([q for q, _ in pairs], arm, stop_when=[_early_stop(m) for _, m in pairs],
                                    **options, **queue_options)
        if tally is not None:
            tally["asked"] = tally.get("asked", 0) + len(answers)
            tally["from_cache"] = tally.get("from_cache", 0) + sum(a.cached for a in answers)
        return [_Asked(bool(m(a.answer)), a.prompt_tokens, a.latency_ms) for (_, m), a in zip(pairs, answers)]

    # Which locality questions the base model gets right: the others cannot be "kept".
    locality = [(p.question, p.matches) for p in scenario.locality]
    base_right = [p for p, asked in zip(locality, ask_all(locality, "base")) if asked.correct]
    report = {}
    for arm in arms:
        if on_arm:
            on_arm(arm, None)
        questions = {
            "reliability": [(i.question, i.matches) for i in scenario.items],
            "generalization": [(p, i.matches) for i in scenario.items for p in i.paraphrases],
            "locality": base_right,
            "reverse": [(r.question, r.matches) for i in scenario.items for r in i.reverse],
            "adherence": [(p.question, p.matches) for p in scenario.probes],
        }
        flat = ask_all([pair for pairs in questions.values() for pair in pairs], arm)
        groups, start = {}, 0
        for name, pairs in questions.items():
            groups[name], start = flat[start:start + len(pairs)], start + len(pairs)
        asked = [r for results in groups.values() for r in results]
        metrics = {name: _share(results) for name, results in groups.items()}
        metrics["prompt_tokens"] = statistics.fmean(r.prompt_tokens for r in asked) if asked else None
        metrics["latency_ms"] = statistics.fmean(r.latency_ms for r in asked) if asked else None
        if logprob:
            metrics["answer_logprob"] = _answer_logprob(session, scenario, arm, options)
        report[arm] = metrics
        if on_arm:
            on_arm(arm, metrics)
    return report


def _early_stop(matcher):
    """The matcher as a stop check, or None where the target is judged on the whole reply
    (anchored at its end: lab/scenario.py can_stop_early)."""
    owner = getattr(matcher, "__self__", None)
    return matcher if owner is None or can_stop_early(owner.target) else None


def _answer_logprob(session, scenario: Scenario, arm: str, options: dict) -> float:
    """Mean per-token teacher-forced log-probability of each item's answer under this arm."""
    values = []
    for item in scenario.items:
        answer = session.agent.answer(item.question, arm, **{**options, "max_tokens": 1})
        n_tokens = max(1, len(session.engine.tokenize(item.answer, special=False)))
        adapter = options["adapter_file"] if arm in ("learned", "both") else None
        if adapter is None and arm in ("learned", "both"):
            active = session.adapters.active()
            adapter = active.path if active else None
        values.append(session.engine.score(answer.messages, item.answer, adapter=adapter) / n_tokens)
    return statistics.fmean(values)


def remember_scenario(session, scenario: Scenario) -> int:
    """Start from an empty memory and remember every item's correction."""
    session.memory.wipe()
    session.memory.add_many([{"text": i.correction_text, "question": i.question, "answer": i.answer,
                              "source": f"scenario:{scenario.name}"} for i in scenario.items])
    return len(scenario.items)


@contextmanager
def memory_given_back(session):
    """Lend the workspace memory to an evaluation, which empties and refills it, and put the
    user's memories back afterwards (a snapshot, restored even when the evaluation fails)."""
    name = f"auto-before-eval-{uuid.uuid4().hex[:8]}"
    session.memory.snapshot(name)
    try:
        yield
    finally:
        session.memory.restore(name)
        session.memory.delete_snapshot(name)


def wipe_test(session, scenario: Scenario, arms=ARMS, *, adapter_file: Path | None = None,
              on_progress: Callable[[str, str, dict | None], None] | None = None,
              on_wait: Callable | None = None) -> dict:
    """Evaluate, wipe the memory, evaluate again; then give the user's memory back.
    Training is not part of it (or of `seconds`). `on_progress(phase, arm, metrics)`, with
    phase "before" or "after", reports each arm as it starts (metrics None) and ends."""
    start = time.perf_counter()

    def reporter(phase):
        return (lambda arm, metrics: on_progress(phase, arm, metrics)) if on_progress else None

    with memory_given_back(session):
        remember_scenario(session, scenario)
        cache: dict = {}
        tally: dict = {}
        before = evaluate_arms(session, scenario, arms, adapter_file=adapter_file, reply_cache=cache,
                               on_arm=reporter("before"), tally=tally, on_wait=on_wait)
        pinned = None
        if scenario.rule and "memory" in arms:
            # The pinned way (a behaviour's rule in every prompt) is memory too: the wipe takes it.
            session.remember(scenario.rule, source=f"scenario:{scenario.name}", pinned=True)
            pinned = {"rule": scenario.rule, "pinned_tokens": session.pinned_tokens(),
                      "before": evaluate_arms(session, scenario, ("memory",), reply_cache=cache, tally=tally,
                                              on_wait=on_wait)["memory"]}
        session.memory.wipe()
        after = evaluate_arms(session, scenario, arms, adapter_file=adapter_file, reply_cache=cache,
                              on_arm=reporter("after"), tally=tally, on_wait=on_wait)
    # "replies": how many answers the test read, and how many of them the class's reply cache
    # gave (someone ran the same test with the same weights before: the same replies, instantly).
    report = {"scenario": scenario.name, "before": before, "after": after,
              "survived": survivors(before, after), "seconds": round(time.perf_counter() - start, 2),
              "replies": {"asked": tally.get("asked", 0), "from_cache": tally.get("from_cache", 0)}}
    if pinned is not None:
        # "pinned": the memory arm with the scenario's rule pinned as well, before the wipe, and the
        # memory arm after it (the wipe clears pinned memories with the rest).
        pinned["after"] = after["memory"]
        report["pinned"] = pinned
    return report


def survivors(before: dict, after: dict, tolerance: float = 0.05) -> dict[str, dict[str, bool | None]]:
    """Per arm and metric: did an improvement over the base arm survive the wipe?
    None where there was no improvement to lose."""
    base = before.get("base", {})
    result = {}
    for arm, metrics in before.items():
        result[arm] = {}
        for name in METRICS:
            b, a, reference = metrics.get(name), after.get(arm, {}).get(name), base.get(name)
            if b is None or a is None or reference is None or b <= reference + tolerance:
                result[arm][name] = None
            else:
                result[arm][name] = a >= b - tolerance
    return result


def table(report: dict) -> str:
    """A readable before/after table for the terminal."""
    def cell(v):
        return "  -  " if v is None else f"{v:5.2f}"

    lines = [f"{'arm':8} {'metric':15} {'before':>6} {'after':>6}  survived"]
    for arm, metrics in report["before"].items():
        for name in METRICS:
            survived = report["survived"][arm][name]
            mark = {True: "yes", False: "NO (lost in the wipe)", None: ""}[survived]
            lines.append(f"{arm:8} {name:15} {cell(metrics[name]):>6} {cell(report['after'][arm][name]):>6}  {mark}")
    if pinned := report.get("pinned"):
        for name in METRICS:
            if pinned["before"].get(name) is not None:
                lines.append(f"{'memory+pin':8} {name:15} {cell(pinned['before'][name]):>6} "
                             f"{cell(pinned['after'][name]):>6}  (the rule pinned: {pinned['pinned_tokens']} "
                             "tokens per answer; wiped too)")
    lines.append(f"{report['seconds']:.1f} s, training excluded")
    return "\n".join(lines)
