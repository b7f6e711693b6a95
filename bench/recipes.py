"""Which training recipe should be the default: method, steps and replay, measured across sets.

Each recipe trains one adapter per set, from that set's corrections, with the same seed,
then the learned arm is asked with no notes: reliability (the trained questions),
generalization (their rewordings), locality (unrelated questions the base model gets right)
and, for a behaviour, adherence on held-out probes. A recipe's score on a set is the mean of
the metrics the set has; its overall score is the mean over the tuning sets, and its worst
locality is reported beside it, since forgetting is the failure a default must avoid.

The tuning sets are the bundled acme and pirate scenarios and three fresh invented-fact
sets (bench/data/recall: ship, campus, island), and a format habit (bench/data/habits/
answer-label). Kept aside and run only with `--final`, after the choice: final-city and three
habits (a sign-off, exactly three words, a persona).

Trainings are kept under --home (content-addressed, lab/training_cache.py), so a rerun
only evaluates.

    python -m bench.recipes                 # the grid on the tuning sets
    python -m bench.recipes --final --recipes sft-60-replay,sft-60-replay-answer   # the held-out sets
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from bench.common import write_results

# name: (method, steps, replay, replay scope). The scope says what a replayed reply teaches:
# "reply", every token (the recipe before bench/results/recipes_scope.json), or "answer", the
# tokens holding the right answer only (lab/learning.py TrainingConfig.replay_scope).
RECIPES = {
    "sft-40": ("sft", 40, False, "reply"),
    "sft-60": ("sft", 60, False, "reply"),
    "sft-40-replay": ("sft", 40, True, "reply"),
    "sft-60-replay": ("sft", 60, True, "reply"),
    "sft-60-replay-answer": ("sft", 60, True, "answer"),
    "distill-40-replay": ("distill", 40, True, "reply"),
    "distill-80-replay": ("distill", 80, True, "reply"),
    "distill-120-replay": ("distill", 120, True, "reply"),  # added after the grid: does distillation reach SFT with steps?
    "distill-120-replay-answer": ("distill", 120, True, "answer"),
}
# Facts (acme and three fresh invented sets) and behaviours (pirate, and a format habit).
TUNING_SETS = ("acme", "pirate", "bench/data/habits/answer-label.json", "bench/data/recall/ship.json",
               "bench/data/recall/campus.json", "bench/data/recall/island.json")
# Kept aside, run only with --final after a choice: a fact set and three habits (a sign-off,
# a format, a persona) that nothing was tuned on.
FINAL_SETS = ("bench/data/recall/final-city.json", "bench/data/habits/sign-off.json",
              "bench/data/habits/three-words.json", "bench/data/habits/grandma.json")
METRICS = ("reliability", "generalization", "locality", "adherence")


def measure(session, scenario, recipe: str) -> dict:
    from lab.consolidation import consolidate
    from lab.evaluate import evaluate_arms, memory_given_back
    from lab.learning import TrainingConfig

    method, steps, replay, scope = RECIPES[recipe]
    began = time.perf_counter()
    result = consolidate(session, name=f"{scenario.name}-{recipe}", scenario=scenario,
                         config=TrainingConfig(steps=steps, replay=replay, replay_scope=scope), method=method,
                         activate=False)
    train_s = time.perf_counter() - began
    with memory_given_back(session):
        session.memory.wipe()  # the learned arm is asked with no notes
        metrics = evaluate_arms(session, scenario, ("learned",), adapter_file=result.path)["learned"]
    row = {k: round(metrics[k], 3) for k in METRICS if metrics.get(k) is not None}
    row["score"] = round(statistics.fmean(row[k] for k in METRICS if k in row), 3)
    row["reused"] = bool(result.meta.get("reused"))
    # The training's own seconds, also when it was reused (lab/training_cache.py); `wall_s`
    # adds what this request took besides (a distillation's teacher replies, or the reuse).
    row["train_s"] = round(result.training_seconds, 1)
    row["wall_s"] = round(train_s, 1)
    return row


def summarise(rows: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Per recipe: mean score over the sets, worst locality, mean training seconds."""
    out = {}
    for recipe, by_set in rows.items():
        cells = list(by_set.values())
        out[recipe] = {"score": round(statistics.fmean(c["score"] for c in cells), 3),
                       "worst_locality": min((c["locality"] for c in cells if "locality" in c), default=None),
                       "train_s": round(statistics.fmean(c["train_s"] for c in cells), 1)}
    return out


def table(path: Path) -> str:
    """The README's table from a results file: one row per recipe, a column per set."""
    import json

    report = json.loads(path.read_text())
    sets, rows, overall = report["sets"], report["rows"], report["overall"]
    lines = ["| recipe | " + " | ".join(sets) + " | mean score | worst locality | train s |",
             "| --- |" + " --- |" * (len(sets) + 3)]

    def cell(row: dict | None) -> str:
        if not row:
            return ""
        return " / ".join(f"{row[k]:.2f}" for k in METRICS if k in row)

    for recipe, line in sorted(overall.items(), key=lambda kv: -kv[1]["score"]):
        names = [Path(s).stem for s in sets]
        lines.append(f"| {recipe} | " + " | ".join(cell(rows[recipe].get(n)) for n in names)
                     + f" | {line['score']:.3f} | {line['worst_locality']} | {line['train_s']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--sets", default=",".join(TUNING_SETS))
    parser.add_argument("--final", action="store_true", help="run the held-out final sets instead")
    parser.add_argument("--home", default="/tmp/bench-recipes", help="LAB_HOME keeping the trainings")
    parser.add_argument("--out", help="results name under bench/results (default: recipes, or recipes_final)")
    parser.add_argument("--table", metavar="RESULTS", help="print a results file as the README's table and stop")
    args = parser.parse_args()
    if args.table:
        print(table(Path(args.table)))
        return
    Path(args.home).mkdir(parents=True, exist_ok=True)
    os.environ["LAB_HOME"] = args.home
    os.environ.setdefault("LAB_MAX_ADAPTERS", "1000")  # one workspace holds every recipe's adapter for every set

    from lab.scenario import load_scenario
    from lab.session import LabSession

    recipes = args.recipes.split(",")
    sets = list(FINAL_SETS) if args.final else args.sets.split(",")
    session = LabSession.open("bench")
    rows: dict[str, dict[str, dict]] = {r: {} for r in recipes}
    for name in sets:
        scenario = load_scenario(name)
        for recipe in recipes:
            rows[recipe][scenario.name] = measure(session, scenario, recipe)
            print(f"{scenario.name:12} {recipe:18} {rows[recipe][scenario.name]}", flush=True)
    session.close()
    overall = summarise(rows)
    for recipe, line in sorted(overall.items(), key=lambda kv: -kv[1]["score"]):
        print(f"{recipe:18} score {line['score']:.3f}  worst locality {line['worst_locality']}  "
              f"train {line['train_s']} s")
    write_results(args.out or ("recipes_final" if args.final else "recipes"),
                  {"recipes": {r: dict(zip(("method", "steps", "replay", "replay_scope"), RECIPES[r])) for r in recipes},
                   "sets": [Path(s).stem for s in sets], "rows": rows, "overall": overall})


if __name__ == "__main__":
    main()
