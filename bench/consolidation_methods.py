"""SFT against context distillation, side by side, with the memory arm they stand in for.

For each scenario, with the same data, steps and seed, it trains two adapters on the
scenario's corrections: `sft` (cross-entropy on each correction's answer) and `distill`
(the base model's reply with the notes in its prompt, learnt as a whole next-token
distribution without them; lab/consolidation.py). Then it evaluates, on the same
questions: the memory arm with the corrections stored (the teacher's side), and each
adapter's learned arm with no notes. Metrics: reliability, generalization, locality,
adherence (a behaviour's held-out probes) and prompt tokens per answer.

    python -m bench.consolidation_methods [--scenarios acme,pirate,bench/data/recall/ship.json] [--steps 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench.common import write_results

METRICS = ("reliability", "generalization", "locality", "adherence", "prompt_tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", default="acme,pirate,bench/data/recall/ship.json")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--replay", action="store_true")
    args = parser.parse_args()
    os.environ["LAB_HOME"] = tempfile.mkdtemp(prefix="bench-consolidation-methods-")

    from lab.consolidation import consolidate
    from lab.evaluate import evaluate_arms, memory_given_back, remember_scenario
    from lab.learning import TrainingConfig
    from lab.scenario import load_scenario
    from lab.session import LabSession

    session = LabSession.open("bench")
    rows = {}
    for name in args.scenarios.split(","):
        scenario = load_scenario(name)
        config = TrainingConfig(steps=args.steps, replay=args.replay)
        row = {}
        with memory_given_back(session):
            remember_scenario(session, scenario)
            row["memory"] = pick(evaluate_arms(session, scenario, ("memory",))["memory"])
        for method in ("sft", "distill"):
            began = time.perf_counter()
            result = consolidate(session, name=f"{scenario.name}-{method}", scenario=scenario, config=config,
                                 method=method, activate=False)
            with memory_given_back(session):
                session.memory.wipe()  # the learned arm has no notes
                metrics = evaluate_arms(session, scenario, ("learned",), adapter_file=result.path)["learned"]
            row[method] = {**pick(metrics), "train_s": round(time.perf_counter() - began, 1),
                           "examples": result.meta.get("examples")}
            print(f"{scenario.name} {method}: {row[method]}", flush=True)
        print(f"{scenario.name} memory: {row['memory']}", flush=True)
        rows[scenario.name] = row
    write_results("consolidation_methods", {"steps": args.steps, "replay": args.replay, "scenarios": rows})
    session.close()


def pick(metrics: dict) -> dict:
    return {k: (round(metrics[k], 3) if isinstance(metrics.get(k), float) else metrics.get(k)) for k in METRICS}


if __name__ == "__main__":
    main()
