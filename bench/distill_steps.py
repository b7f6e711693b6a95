"""Distillation's own default steps, checked where nothing was tuned: `consolidate --all
--method distill --retire` on a held-out fact set, at distillation's default (120 steps,
lab/consolidation.py default_steps) and at SFT's 60, which it used to get.

For each run: the adapter's verified reliability with no notes (each memory's question),
how many memories it retired, and the memory arm's prompt tokens on those questions before
and after (a retired note no longer travels with them).

    python -m bench.distill_steps                  # final-city, 120 and 60 steps
    python -m bench.distill_steps --steps 120,60 --set bench/data/recall/final-city.json
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.common import write_results

HELD_OUT = "bench/data/recall/final-city.json"  # tuned nothing: the recipe grid ran it once, after its choice


def measure(session, scenario, steps: int) -> dict:
    from lab.consolidation import consolidate_memories
    from lab.evaluate import remember_scenario
    from lab.learning import TrainingConfig

    remember_scenario(session, scenario)
    memories = session.memory.list()
    began = time.perf_counter()
    report = consolidate_memories(session, memories, name=f"{scenario.name}-distill-{steps}", method="distill",
                                  retire=True, config=TrainingConfig(steps=steps))
    return {"steps": steps, "memories": len(memories), "reliability": report["verified"]["reliability"],
            "locality": report["verified"]["locality"], "retired": len(report["retired"]),
            "prompt_tokens_before": report["prompt_tokens_before"],
            "prompt_tokens_after": report["prompt_tokens_after"],
            "train_s": report["seconds"], "wall_s": round(time.perf_counter() - began, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", default=HELD_OUT)
    parser.add_argument("--steps", default="120,60", help="comma-separated step counts")
    parser.add_argument("--home", default="/tmp/bench-distill-steps", help="LAB_HOME keeping the trainings")
    args = parser.parse_args()
    Path(args.home).mkdir(parents=True, exist_ok=True)
    os.environ["LAB_HOME"] = args.home
    os.environ.setdefault("LAB_MAX_ADAPTERS", "1000")

    from lab.consolidation import default_steps
    from lab.scenario import load_scenario
    from lab.session import LabSession

    scenario = load_scenario(args.set)
    session = LabSession.open("bench")
    rows = []
    for steps in (int(s) for s in args.steps.split(",")):
        rows.append(measure(session, scenario, steps))
        print(rows[-1], flush=True)
    session.close()
    write_results("distill_steps", {"set": scenario.name, "default_steps": default_steps("distill"), "rows": rows})


if __name__ == "__main__":
    main()
