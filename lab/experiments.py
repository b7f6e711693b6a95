"""Experiments: change one setting, measure everything, and keep the results as rows.

    rows = sweep_k(session, scenario, [1, 2, 3, 5])          # memory arm, one row per k
    rows = sweep_threshold(session, scenario, [0.3, 0.7])    # memory arm, one row per min_score
    rows = sweep_rank(session, scenario, [2, 4], steps=20)   # learned arm, a fresh adapter per rank
    rows = memory_curve(session, scenario, [0, 1, 2])        # score against corrections remembered
    rows = training_curve(session, scenario, [0, 10, 20])    # score against training steps
    rows_to_csv(rows)   ->  "k,reliability,...\\r\\n1,1.0,...\\r\\n"

Every row is a flat dict: the swept value first, then the metrics (lab.evaluate), then
the costs. Each function takes `on_point(row)`, called as each row is measured, so a page
can fill its table and charts in while a long run goes on.

Every experiment runs in a scratch workspace: a temporary memory and adapter folder over
the same shared model. The student's own memories, adapters and active adapter are never
touched, so there is nothing to restore afterwards and nothing lost if a run fails half way.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from lab import curves
from lab.errors import LabError
from lab.evaluate import METRICS, evaluate_arms, remember_scenario
from lab.learning import TrainingConfig
from lab.scenario import Scenario
from lab.session import LabSession
from lab.workspace import Workspace

OnPoint = Callable[[dict], None] | None
MAX_VALUES = 20  # more points than this is a long wait for a line that barely changes
SCORES = METRICS  # shares of questions answered right, 0..1 (None: no such questions)
MEMORY_COSTS = ("prompt_tokens", "latency_ms")
RANK_STEPS = 20  # few steps: the rank sweep compares capacities, it does not need converged adapters
# What each swept setting may be (low, high); the agent takes k up to 50, the trainer ranks up to 256.
K_RANGE, THRESHOLD_RANGE, RANK_RANGE, STEPS_RANGE = (1, 50), (0.0, 1.0), (1, 256), (0, 1000)

# Rough timings on 2 idle CPU cores with SmolLM2-135M (README, Benchmarks), for estimates only;
# a machine shared with other users can be several times slower.
SECONDS_PER_ANSWER = 0.4  # one evaluation question: prefill plus up to 24 tokens at about 90 tokens/s
SECONDS_PER_TRAINING_STEP = 0.5  # a batch of 8 examples (training_pace's first guess too; then measured)
SECONDS_PER_ADAPTER = 8.0  # load the base in PyTorch, export the GGUF, load it in llama.cpp


# ---- pure helpers ------------------------------------------------------------------------------


def check_values(name: str, values, *, whole: bool, low: float, high: float) -> list:
    """The values to sweep, sorted and without repeats; a LabError names the first bad one.

    check_values("k", [3, 1, 3], whole=True, low=1, high=50) -> [1, 3]
    """
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise LabError(f"give the {name} values as a list of numbers, not {str(values)[:40]!r}")
    values = list(values)
    if not values:
        raise LabError(f"give at least one {name} value")
    kind = "whole number" if whole else "number"
    for value in values:
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if not is_number or (whole and value != int(value)) or not low <= value <= high:
            raise LabError(f"every {name} value must be a {kind} from {_plain(low)} to {_plain(high)}, "
                           f"not {str(value)[:20]!r}")
    if len(set(values)) > MAX_VALUES:
        raise LabError(f"at most {MAX_VALUES} {name} values at a time, got {len(set(values))}")
    return sorted({int(v) if whole else float(v) for v in values})


def parse_values(text: str, name: str, *, whole: bool) -> list:
    """Numbers typed as text, separated by commas or spaces.

    parse_values("1, 2,3", "k", whole=True) -> [1, 2, 3]
    """
    parts = [p for p in re.split(r"[,;\s]+", str(text or "").strip()) if p]
    numbers_ = []
    for part in parts:
        try:
            numbers_.append(float(part))
        except ValueError:
            example = "1, 2, 3" if whole else "0.3, 0.5, 0.7"
            raise LabError(f"{name} values must be numbers separated by commas (e.g. {example}), "
                           f"not {part[:20]!r}") from None
    return numbers_


def rows_to_csv(rows: list[dict]) -> str:
    """One header line (every key, in first-seen order), then one line per row; None is empty."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)  # DictWriter writes None as an empty field, and any missing key too
    return out.getvalue()


def rows_to_json(rows: list[dict], about: dict | None = None) -> str:
    """The rows with what produced them: {"experiment": ..., "scenario": ..., "rows": [...]}."""
    return json.dumps({**(about or {}), "rows": rows}, indent=1)


def _plain(number: float) -> str:
    return f"{number:g}"


def _round(value, digits: int):
    return None if value is None else round(value, digits)


def _metrics_row(x_name: str, x, metrics: dict) -> dict:
    row = {x_name: x, **{name: _round(metrics.get(name), 3) for name in SCORES}}
    row.update({name: _round(metrics.get(name), 1) for name in MEMORY_COSTS})
    return row


# ---- a scratch workspace -----------------------------------------------------------------------


@contextmanager
def scratch_session(session: LabSession):
    """A throwaway workspace (empty memory, no adapters) that shares `session`'s model.

    Experiments wipe memories and train adapters by the dozen; doing that here rather than
    in the student's workspace means their work is never at risk and never needs restoring.
    """
    folder = Path(tempfile.mkdtemp(prefix="lab-experiment-"))
    scratch = LabSession(Workspace.open("experiment", root=folder), session.model_path)
    try:
        yield scratch
    finally:
        scratch.close()
        shutil.rmtree(folder, ignore_errors=True)


# ---- memory: sweeps over retrieval settings -------------------------------------------------------


def sweep_k(session: LabSession, scenario: Scenario, values, *, min_score: float | None = None,
            on_point: OnPoint = None) -> list[dict]:
    """Memory-arm metrics for each k (notes retrieved per question), every correction remembered."""
    values = check_values("k", values, whole=True, low=K_RANGE[0], high=K_RANGE[1])
    return _sweep_memory(session, scenario, "k", values, lambda k: {"k": k, "min_score": min_score}, on_point)


def sweep_threshold(session: LabSession, scenario: Scenario, values, *, k: int | None = None,
                    on_point: OnPoint = None) -> list[dict]:
    """Memory-arm metrics for each threshold (the lowest similarity a note needs to be used)."""
    values = check_values("threshold", values, whole=False, low=THRESHOLD_RANGE[0], high=THRESHOLD_RANGE[1])
    return _sweep_memory(session, scenario, "threshold", values, lambda t: {"k": k, "min_score": t}, on_point)


def _sweep_memory(session, scenario, x_name, values, options, on_point) -> list[dict]:
    rows = []
    with scratch_session(session) as scratch:
        remember_scenario(scratch, scenario)
        # One cache for the whole sweep: a setting that retrieves the same notes sends the same
        # prompt, and its replies are reused rather than generated again.
        cache: dict = {}
        for value in values:
            metrics = evaluate_arms(scratch, scenario, ["memory"], reply_cache=cache, **options(value))["memory"]
            rows.append(_metrics_row(x_name, value, metrics))
            if on_point:
                on_point(rows[-1])
    return rows


def memory_curve(session: LabSession, scenario: Scenario, points=None, *, on_point: OnPoint = None) -> list[dict]:
    """Reliability and generalization with the first N corrections remembered, for each N in `points`."""
    points = check_values("corrections", default_points(scenario) if points is None else points,
                          whole=True, low=0, high=len(scenario.items))
    rows = []
    with scratch_session(session) as scratch:
        for count in points:
            # lab.curves measures one point per call here, so each row can be shown as it comes.
            rows.append(curves.memory_curve(scratch, scenario, [count])[0])
            if on_point:
                on_point(rows[-1])
    return rows


def default_points(scenario: Scenario) -> list[int]:
    """About five evenly spaced counts from none to every correction.

    (a scenario of 20 items) -> [0, 4, 8, 12, 16, 20]
    """
    n = len(scenario.items)
    return sorted({0, *range(max(1, n // 5), n, max(1, n // 5)), n})


# ---- learning: sweeps that train ---------------------------------------------------------------------


def training_curve(session: LabSession, scenario: Scenario, steps=(0, 10, 20, 30), *,
                   config: TrainingConfig | None = None, on_point: OnPoint = None) -> list[dict]:
    """Learned-arm metrics after N training steps (a fresh adapter each, same seed); 0 is the base."""
    steps = check_values("steps", steps, whole=True, low=STEPS_RANGE[0], high=STEPS_RANGE[1])
    if steps == [0]:
        raise LabError("add at least one number of training steps above 0 (0 is the untrained base)")
    config = (config or TrainingConfig()).validate()
    rows = []
    with scratch_session(session) as scratch:
        for count in (s for s in steps if s > 0):
            # lab.curves trains one adapter per call here (so each row shows as it comes) and measures
            # the untrained base every time; the base's row is kept once, if 0 was asked for.
            base, trained = curves.learning_curve(scratch, scenario, [count], config)
            for row in ([base] if not rows and 0 in steps else []) + [trained]:
                rows.append(row)
                if on_point:
                    on_point(row)
    return rows


def sweep_rank(session: LabSession, scenario: Scenario, ranks, *, steps: int = RANK_STEPS,
               config: TrainingConfig | None = None, on_point: OnPoint = None) -> list[dict]:
    """For each LoRA rank: train a temporary adapter on the scenario, measure the learned arm, delete it.

    alpha grows with the rank (alpha/rank stays as in `config`), so every adapter's update has the
    same scale and only its capacity changes.
    """
    from lab.consolidation import consolidate

    ranks = check_values("rank", ranks, whole=True, low=RANK_RANGE[0], high=RANK_RANGE[1])
    (steps,) = check_values("steps", [steps], whole=True, low=1, high=STEPS_RANGE[1])
    base = (config or TrainingConfig()).validate()
    configs = [replace(base, steps=steps, rank=rank, alpha=base.alpha / base.rank * rank).validate()
               for rank in ranks]  # every value checked before minutes of training start
    rows = []
    with scratch_session(session) as scratch:
        cache: dict = {}  # the base's replies (for locality) are the same for every rank
        for rank, rank_config in zip(ranks, configs):
            result = consolidate(scratch, name=f"rank-{rank}", scenario=scenario, config=rank_config,
                                 activate=False)
            try:
                metrics = evaluate_arms(scratch, scenario, ["learned"], adapter_file=result.path,
                                        reply_cache=cache)["learned"]
                size = result.path.stat().st_size
            finally:
                scratch.adapters.delete(result.name)
            rows.append({**_metrics_row("rank", rank, metrics), "train_seconds": round(result.training_seconds, 1),
                         "final_loss": round(result.final_loss, 4), "adapter_kb": round(size / 1024, 1),
                         "trainable_parameters": result.meta.get("trainable_parameters")})
            if on_point:
                on_point(rows[-1])
    return rows


# ---- the catalogue the page offers -------------------------------------------------------------------


@dataclass(frozen=True)
class Experiment:
    label: str
    x: str  # the column that holds the swept value (and its name in messages)
    values_label: str
    whole: bool  # the values are whole numbers
    allowed: tuple[float, float]  # (low, high); the memory curve's high is the scenario's size
    trains: bool  # trains adapters: minutes, not seconds
    scores: tuple[str, ...]
    costs: tuple[str, ...]
    guide: str  # one sentence: what to look for in the chart
    defaults: tuple = ()


EXPERIMENTS = {
    "memory_curve": Experiment(
        "Memory curve", "corrections", "corrections remembered", True, (0, 5000), False,
        ("reliability", "generalization"), (),
        "Each stored note fixes its own question the moment it is added: expect reliability to climb "
        "one fact at a time, and paraphrases to follow only when the note is found for them."),
    "training_curve": Experiment(
        "Training curve", "steps", "training steps (0 = the untrained base)", True, STEPS_RANGE, True,
        ("reliability", "generalization", "locality"), ("seconds",),
        "Training moves every fact at once, and slowly: look for a flat start, then a climb, and check "
        "whether locality (unrelated questions) pays for it.", (0, 10, 20, 30)),
    "k": Experiment(
        "k sweep", "k", "k (notes retrieved per question)", True, K_RANGE, False,
        ("reliability", "generalization", "locality"), MEMORY_COSTS,
        "Every extra note is read with every question: see whether reliability still rises, or only "
        "prompt tokens and latency do.", (1, 2, 3, 5)),
    "threshold": Experiment(
        "Threshold sweep", "threshold", "similarity thresholds (0 to 1)", False, THRESHOLD_RANGE, False,
        ("reliability", "generalization", "locality"), MEMORY_COSTS,
        "Low thresholds let unrelated notes in (watch locality and prompt tokens); high ones keep the "
        "right note out too (watch reliability fall back to the base's).", (0.3, 0.4, 0.5, 0.6, 0.7)),
    "rank": Experiment(
        "Rank sweep", "rank", "LoRA ranks", True, RANK_RANGE, True,
        ("reliability", "generalization", "locality"), ("train_seconds", "adapter_kb", "trainable_parameters"),
        "Rank is the adapter's capacity: check whether more parameters and kilobytes buy more "
        "reliability, or only cost training time.", (2, 4, 8, 16)),
}


def _experiment(key: str) -> Experiment:
    if key not in EXPERIMENTS:
        raise LabError(f"no experiment {key!r}; choose from {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[key]


def defaults(key: str, scenario: Scenario) -> list:
    """The values an experiment starts with (the memory curve's depend on the scenario's size)."""
    return default_points(scenario) if key == "memory_curve" else list(_experiment(key).defaults)


def values_from_text(key: str, scenario: Scenario, text: str) -> list:
    """What a student typed, parsed and checked for this experiment and scenario (a LabError if not)."""
    experiment = _experiment(key)
    low, high = experiment.allowed
    if key == "memory_curve":
        high = len(scenario.items)
    values = check_values(experiment.x, parse_values(text, experiment.x, whole=experiment.whole),
                          whole=experiment.whole, low=low, high=high)
    if key == "training_curve" and values == [0]:
        raise LabError("add at least one number of training steps above 0 (0 is the untrained base)")
    return values


def run(key: str, session: LabSession, scenario: Scenario, values, *, steps: int = RANK_STEPS,
        on_point: OnPoint = None) -> list[dict]:
    """Run the experiment named `key` (see EXPERIMENTS). `steps` is for the rank sweep."""
    _experiment(key)
    if key == "memory_curve":
        return memory_curve(session, scenario, values, on_point=on_point)
    if key == "training_curve":
        return training_curve(session, scenario, values, on_point=on_point)
    if key == "k":
        return sweep_k(session, scenario, values, on_point=on_point)
    if key == "threshold":
        return sweep_threshold(session, scenario, values, on_point=on_point)
    return sweep_rank(session, scenario, values, steps=steps, on_point=on_point)


def adapters_trained(key: str, values: list) -> int:
    return {"rank": len(values), "training_curve": sum(v > 0 for v in values)}.get(key, 0)


def estimate_seconds(key: str, scenario: Scenario, values: list, *, steps: int = RANK_STEPS,
                     config: TrainingConfig | None = None) -> float:
    """A rough estimate of how long `run` takes on this machine's CPU (for the page to warn)."""
    questions = (len(scenario.items) + sum(len(i.paraphrases) + len(i.reverse) for i in scenario.items)
                 + len(scenario.probes) + 2 * len(scenario.locality))  # the base answers locality too
    evaluation = questions * SECONDS_PER_ANSWER
    # The training parts come from this server's measured pace (lab/training_pace.py) once a
    # training has been timed here; the constants above are only the first guesses.
    from lab import training_pace

    pace = training_pace.current()
    adapter_s = pace.other_s if pace.steps_measured else SECONDS_PER_ADAPTER
    # A step costs about the same per example; batches never hold more examples than there are.
    per_step = pace.seconds_per_step * min((config or TrainingConfig()).batch_size, len(scenario.items)) / 8
    if key == "training_curve":  # lab.curves measures the base with every adapter
        return sum(adapter_s + s * per_step + 2 * evaluation for s in values if s > 0)
    if key == "rank":
        return len(values) * (adapter_s + steps * per_step + evaluation)
    return len(values) * evaluation
