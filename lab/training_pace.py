"""How long a training takes on this server, measured: what every estimate on the pages says.

A training has three parts, each with its own pace:

    preparing   the base model answers the questions the training needs first (the replay
                questions, or for distillation each question with its notes): seconds per answer
    loading     its turn came: the base model loads into PyTorch, then after the last step the
                adapter is exported and checked in llama.cpp: seconds, whatever the steps
    training    the steps themselves: seconds per step

Each is learnt from the trainings that ran here (lab/training_queue.py and lab/jobs.py
report them) and kept in $LAB_HOME/.shared/training_pace.json, so a restart keeps them.
Until a part has been measured, the adapters already trained on this LAB_HOME say what the
steps and the loading took (their meta holds `seconds` and `train_seconds`), and only then
the README's rough figures, which the page calls a first guess.

    pace = current()
    pace.training_s(60)        # loading + 60 steps, in seconds
    pace.preparing_s(50)       # the base model's 50 answers before it
    record_training(steps=60, train_s=41.0, other_s=9.5)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "training_pace.json"
# First guesses, for a server that has measured nothing yet (README, Benchmarks: 2 idle cores).
GUESS_SECONDS_PER_STEP, GUESS_OTHER_S, GUESS_SECONDS_PER_ANSWER = 0.5, 5.0, 0.8
# A new measurement counts this much against what was known: one busy moment should not
# double the next estimate, and a faster machine should show within a few trainings.
WEIGHT = 0.5
RECENT_ADAPTERS = 5  # the newest trained adapters read when nothing was measured yet


@dataclass(frozen=True)
class Pace:
    seconds_per_step: float
    other_s: float  # loading the base model before the steps, exporting the adapter after them
    seconds_per_answer: float
    load_s: float | None = None  # the part of other_s before the first step (None: not measured apart)
    # Which of the three were measured on this server (True) or are first guesses (False).
    steps_measured: bool = False
    answers_measured: bool = False

    def training_s(self, steps: int) -> float:
        """Seconds from a training's turn to its adapter: loading, `steps` steps, export."""
        return self.other_s + self.seconds_per_step * steps

    @property
    def loading_s(self) -> float:
        """Seconds from a training's turn to its first step (the base model loading)."""
        return self.other_s if self.load_s is None else self.load_s

    def preparing_s(self, answers: int) -> float:
        """Seconds for the base model to give `answers` answers before the training starts."""
        return self.seconds_per_answer * answers


def pace_path(root: Path | None = None) -> Path:
    from lab.training_cache import shared_dir

    return shared_dir(root) / FILE_NAME


def _read(root: Path | None = None) -> dict:
    try:
        data = json.loads(pace_path(root).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _positive(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def from_trained_adapters(root: Path | None = None) -> tuple[float, float] | None:
    """(seconds per step, other seconds) from the newest adapters in the shared training cache,
    or None if it holds none with timings. Their meta says what each training took in all
    (`seconds`) and on its steps (`train_seconds`)."""
    from lab.training_cache import TrainingCache

    folder = TrainingCache(root).directory
    try:
        metas = sorted((p for p in folder.glob("*/meta.json")), key=lambda p: p.stat().st_mtime)[-RECENT_ADAPTERS:]
    except OSError:
        return None
    per_step, other = [], []
    for path in metas:
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            steps = int(meta["config"]["steps"])
            train_s, total_s = float(meta["train_seconds"]), float(meta["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if steps > 0 and train_s > 0 and total_s >= train_s:
            per_step.append(train_s / steps)
            other.append(total_s - train_s)
    if not per_step:
        return None
    middle = len(per_step) // 2
    return sorted(per_step)[middle], sorted(other)[middle]


def current(root: Path | None = None) -> Pace:
    """This server's pace: measured where it can be, first guesses where not."""
    known = _read(root)
    per_step, other, per_answer, load = (_positive(known.get(k)) for k in ("seconds_per_step", "other_s",
                                                                            "seconds_per_answer", "load_s"))
    steps_measured = per_step is not None and other is not None
    if not steps_measured:
        found = from_trained_adapters(root)
        if found is not None:
            per_step, other = found
            steps_measured = True
    return Pace(seconds_per_step=per_step or GUESS_SECONDS_PER_STEP,
                other_s=GUESS_OTHER_S if other is None else other,
                seconds_per_answer=per_answer or GUESS_SECONDS_PER_ANSWER, load_s=load,
                steps_measured=steps_measured, answers_measured=per_answer is not None)


def _blend(known: dict, updates: dict[str, float], root: Path | None) -> None:
    from lab.adapters import write_json_atomic

    merged = dict(known)
    for name, value in updates.items():
        old = _positive(known.get(name))
        merged[name] = round(value if old is None else WEIGHT * value + (1 - WEIGHT) * old, 4)
    merged["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        write_json_atomic(pace_path(root), merged)
    except OSError:
        pass  # an estimate is not worth failing a training over


def record_training(*, steps: int, train_s: float, other_s: float, load_s: float | None = None,
                    root: Path | None = None) -> None:
    """A training ran to its end: `train_s` on its `steps` steps, `other_s` loading and exporting
    (`load_s` of it before the first step)."""
    if steps <= 0 or train_s <= 0 or other_s < 0:
        return
    measured = {"seconds_per_step": train_s / steps, "other_s": other_s}
    if load_s is not None and 0 < load_s <= other_s:
        measured["load_s"] = load_s
    _blend(_read(root), measured, root)


def record_preparation(*, answers: int, seconds: float, root: Path | None = None) -> None:
    """The base model gave `answers` answers (replay, distillation) in `seconds` before a training."""
    if answers <= 0 or seconds <= 0:
        return
    _blend(_read(root), {"seconds_per_answer": seconds / answers}, root)
