"""Shared helpers for the benchmarks: timing summaries and results files.

Benchmarks are scripts, not tests: they print a table and write bench/results/NAME.json,
which the README's tables quote. Run them from the project root, e.g.
`python -m bench.generation`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Where the numbers were measured."""
    import torch

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()}


def summary(values_ms: list[float]) -> dict:
    """p50/p90/p99/mean of a list of milliseconds."""
    ordered = sorted(values_ms)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return {"n": len(ordered), "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "mean_ms": statistics.fmean(ordered)}


def write_results(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), **data}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path
