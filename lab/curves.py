"""Learning curves: score against how much was put in.

    memory   reliability and generalization against the number of corrections remembered
    learned  the same against training steps (a fresh adapter per point, same seed)

Memory improves one fact at a time, the moment it is stored; the learned arm improves
for all facts together, as training goes on. The Experiments page plots both.
"""

from __future__ import annotations

from lab.evaluate import evaluate_arms
from lab.learning import TrainingConfig
from lab.scenario import Scenario


def memory_curve(session, scenario: Scenario, points: list[int] | None = None) -> list[dict]:
    n = len(scenario.items)
    points = points or sorted({0, *range(max(1, n // 5), n, max(1, n // 5)), n})
    session.memory.wipe()
    curve, stored = [], 0
    for count in points:
        new = scenario.items[stored:count]
        if new:
            session.memory.add_many([{"text": i.correction_text, "question": i.question, "answer": i.answer,
                                      "source": f"scenario:{scenario.name}"} for i in new])
        stored = count
        metrics = evaluate_arms(session, scenario, ["memory"])["memory"]
        curve.append({"corrections": count, "reliability": metrics["reliability"],
                      "generalization": metrics["generalization"]})
    session.memory.wipe()
    return curve


def learning_curve(session, scenario: Scenario, steps: list[int] | None = None,
                   config: TrainingConfig | None = None) -> list[dict]:
    from lab.consolidation import consolidate

    base = config or TrainingConfig()
    session.memory.wipe()
    curve = [{"steps": 0, **_learned_metrics(session, scenario, None), "seconds": 0.0}]
    for count in steps or [10, 20, 30, 40]:
        result = consolidate(session, name=f"curve-{scenario.name}-{count}", scenario=scenario,
                             config=TrainingConfig(**{**base.__dict__, "steps": count}), activate=False)
        # What training took, even when an identical one done earlier was reused (lab/training_cache.py).
        curve.append({"steps": count, **_learned_metrics(session, scenario, result.path),
                      "seconds": round(result.training_seconds, 1)})
        session.adapters.delete(result.name)
    return curve


def _learned_metrics(session, scenario, adapter) -> dict:
    arm = "learned" if adapter else "base"
    metrics = evaluate_arms(session, scenario, [arm], adapter_file=adapter)[arm]
    return {"reliability": metrics["reliability"], "generalization": metrics["generalization"],
            "locality": metrics["locality"]}
