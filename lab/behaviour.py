"""Three ways to hold a behaviour, side by side: a retrieved note, a pinned note, learned weights.

A style rule is the case where the two tiers of memory part ways. Stored as retrieved
notes (the scenario's worked examples), the rule reaches a new question only when an
example happens to score above the threshold for it. Pinned, it rides in every prompt and
needs no retrieval, but every answer pays its tokens. Trained into an adapter, it costs no
context at all. Each way is measured on the scenario's held-out probes (questions never
stored or trained on), with the prompt tokens it adds to an answer.

The 135M model's weakness is part of the result, not hidden: pinned as one instruction,
the rule is followed far less often than pinned as worked examples (the README has the
figures), because so small a model imitates an example more readily than it obeys an
order.

    compare_ways(session, load_scenario("pirate"), adapter_file=path)
    # -> {"scenario": "pirate", "base": {...}, "ways": [{"way": "retrieved", "adherence": 0.1, ...}, ...]}
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from lab.errors import LabError
from lab.evaluate import evaluate_arms, memory_given_back, remember_scenario
from lab.scenario import Scenario

PINNED_EXAMPLES = 2  # worked examples pinned: two fit the pinned budget many times over
WAYS = ("retrieved", "pinned rule", "pinned examples", "learned")
LABELS = {
    "retrieved": "retrieved notes: the worked examples, sent when one scores above the threshold",
    "pinned rule": "pinned rule: the instruction in every prompt",
    "pinned examples": f"pinned examples: {PINNED_EXAMPLES} worked examples in every prompt",
    "learned": "learned: an adapter trained on the worked examples, nothing in the prompt",
}


def pinned_texts(scenario: Scenario, way: str) -> list[str]:
    """What the pinned ways pin: the scenario's rule, or its first worked examples."""
    if way == "pinned rule":
        if not scenario.rule:
            raise LabError(f"the scenario {scenario.name!r} states no rule to pin; add a \"rule\" to its file")
        return [scenario.rule]
    return [item.correction_text for item in scenario.items[:PINNED_EXAMPLES]]


def compare_ways(session, scenario: Scenario, *, adapter_file: Path | None = None, k: int | None = None,
                 min_score: float | None = None,
                 on_way: Callable[[str, dict | None], None] | None = None) -> dict:
    """Adherence on the held-out probes, and prompt tokens per answer, for each way of holding
    the behaviour. The learned way needs `adapter_file` (or an active adapter); without one it
    is left out, with the reason. The user's memory is given back afterwards."""
    if not scenario.probes:
        raise LabError(f"the scenario {scenario.name!r} has no held-out probes to measure a behaviour on")
    probes_only = replace(scenario, items=(), locality=())  # the probes alone are asked
    options = dict(k=k, min_score=min_score)
    if adapter_file is None and session.adapters.active() is not None:
        adapter_file = session.adapters.active().path

    def measured(way: str, arm: str) -> dict:
        if on_way:
            on_way(way, None)
        metrics = evaluate_arms(session, probes_only, (arm,), adapter_file=adapter_file, **options)[arm]
        if on_way:
            on_way(way, metrics)
        return metrics

    ways = []
    with memory_given_back(session):
        session.memory.wipe()
        base = measured("base", "base")

        def row(way: str, metrics: dict, **extra) -> dict:
            return {"way": way, "label": LABELS[way], "adherence": metrics["adherence"],
                    "prompt_tokens": round(metrics["prompt_tokens"], 1),
                    "extra_tokens": round(metrics["prompt_tokens"] - base["prompt_tokens"], 1), **extra}

        remember_scenario(session, scenario)
        ways.append(row("retrieved", measured("retrieved", "memory")))
        for way in ("pinned rule", "pinned examples"):
            if way == "pinned rule" and not scenario.rule:
                continue
            session.memory.wipe()
            texts = pinned_texts(scenario, way)
            for text in texts:
                session.remember(text, source=f"scenario:{scenario.name}", pinned=True)
            ways.append(row(way, measured(way, "memory"), pinned=texts))
    if adapter_file is not None:
        ways.append(row("learned", measured("learned", "learned"), adapter=Path(adapter_file).parent.name))
        skipped = None
    else:
        skipped = (f"no adapter is active: train one on the {scenario.name} scenario "
                   f"(python -m lab train --scenario {scenario.name} --name {scenario.name})")
    report = {"scenario": scenario.name, "probes": len(scenario.probes),
              "base": {"adherence": base["adherence"], "prompt_tokens": round(base["prompt_tokens"], 1)},
              "ways": ways}
    if skipped:
        report["learned_skipped"] = skipped
    return report


def table(report: dict) -> str:
    """The comparison as lines for a terminal."""
    n = report["probes"]
    lines = [f"{'way':16} {'adherence':>9} {'prompt tokens':>14} {'extra per answer':>17}",
             f"{'base (nothing)':16} {report['base']['adherence']:9.2f} {report['base']['prompt_tokens']:14.1f} "
             f"{0:17.1f}"]
    for way in report["ways"]:
        lines.append(f"{way['way']:16} {way['adherence']:9.2f} {way['prompt_tokens']:14.1f} {way['extra_tokens']:17.1f}")
    lines.append(f"adherence: the share of {n} held-out questions answered in the style")
    if report.get("learned_skipped"):
        lines.append(f"learned: left out, {report['learned_skipped']}")
    return "\n".join(lines)

