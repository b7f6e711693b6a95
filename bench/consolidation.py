"""Consolidation speed: how long until a trained adapter knows a 20-fact scenario.

For a rising number of training steps it trains a fresh adapter on the bundled `acme`
scenario (loading the dequantized base from the cache; the one-time dequantization is
done first and not counted) and checks the learned arm on the trained questions. The
first step count reaching >= 90% is the time to consolidate. Target: <= 90 s on 2 cores.

It also compares training throughput with a measured fp32 matmul ceiling: achieved
FLOP/s = train tokens/s x FLOPs per token of the trained layers (forward + input
gradients, 4 x their weights; the frozen prefix is computed once and not counted).
Target: >= 0.5 of the ceiling.

    python -m bench.consolidation [--steps 20 30 40 60]
"""

from __future__ import annotations

import argparse
import time

from bench.common import write_results
from lab.consolidation import consolidate
from lab.learning import TrainingConfig, load_base
from lab.scenario import load_scenario
from lab.session import LabSession


def matmul_ceiling_gflops(seconds: float = 3.0) -> float:
    """fp32 matmul throughput of this machine with all threads, on training-sized shapes."""
    import torch

    a, b = torch.randn(512, 576), torch.randn(576, 1536)
    for _ in range(10):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 512 * 576 * 1536 * n / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 30, 40, 60])
    args = parser.parse_args()

    session = LabSession.open("bench-consolidation")
    scenario = load_scenario("acme")
    load_base(session.engine.path)  # the one-time dequantization, not counted
    runs = []
    for steps in args.steps:
        config = TrainingConfig(steps=steps)
        start = time.perf_counter()
        result = consolidate(session, name=f"acme-{steps}", scenario=scenario, config=config)
        seconds = time.perf_counter() - start
        correct = sum(item.matches(session.agent.answer(item.question, "learned").answer) for item in scenario.items)
        run = {"steps": steps, "seconds": round(seconds, 1), "reliability": correct / len(scenario.items),
               "final_loss": round(result.final_loss, 4), "train_tokens_per_s": round(result.train_tokens_per_s, 1),
               "layers": result.meta["config"]["layers"], "trainable_parameters": result.meta["trainable_parameters"]}
        runs.append(run)
        print(run, flush=True)
        if run["reliability"] >= 0.9:
            break

    model, _ = load_base(session.engine.path)
    layers = runs[-1]["layers"]
    per_layer = sum(p.numel() for p in model.model.layers[0].parameters() if p.dim() == 2)
    flops_per_token = 4 * per_layer * len(layers)
    ceiling = matmul_ceiling_gflops()
    achieved = runs[-1]["train_tokens_per_s"] * flops_per_token / 1e9
    reached = next((r for r in runs if r["reliability"] >= 0.9), None)
    result = {"scenario": "acme", "items": len(scenario.items), "runs": runs,
              "time_to_90_percent_s": reached["seconds"] if reached else None,
              "matmul_ceiling_gflops": round(ceiling, 1), "train_gflops": round(achieved, 1),
              "fraction_of_ceiling": round(achieved / ceiling, 3), "flops_per_token": flops_per_token,
              "targets": {"time_to_90_percent_s": "<= 90", "fraction_of_ceiling": ">= 0.5"}}
    result["passed"] = {"time": bool(reached and reached["seconds"] <= 90),
                        "throughput": result["fraction_of_ceiling"] >= 0.5}
    print(result)
    write_results("consolidation", result)
    session.close()


if __name__ == "__main__":
    main()
