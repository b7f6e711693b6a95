"""The measured pace of trainings on this server: what the estimates on the pages come from.
Pure unit tests: the pace file and the trained adapters' meta are plain JSON under LAB_HOME."""

import json
import os

import pytest

from lab import training_pace
from lab.training_cache import TrainingCache


def test_a_new_server_says_its_figures_are_first_guesses():
    pace = training_pace.current()
    assert not pace.steps_measured and not pace.answers_measured
    assert pace.training_s(60) == pytest.approx(training_pace.GUESS_OTHER_S + 60 * training_pace.GUESS_SECONDS_PER_STEP)


def test_the_adapters_trained_here_give_the_pace_before_anything_is_recorded():
    folder = TrainingCache().directory
    for i, (steps, train_s, total_s) in enumerate([(60, 90.0, 102.0), (40, 60.0, 70.0), (60, 30.0, 40.0)]):
        entry = folder / f"key{i}"
        entry.mkdir(parents=True)
        (entry / "meta.json").write_text(json.dumps({"config": {"steps": steps}, "train_seconds": train_s,
                                                     "seconds": total_s}))
        os.utime(entry / "meta.json", (1000 + i, 1000 + i))
    pace = training_pace.current()
    assert pace.steps_measured and pace.seconds_per_step == pytest.approx(1.5)  # the median of 1.5, 1.5, 0.5
    assert pace.other_s == pytest.approx(10.0)


def test_recorded_trainings_and_preparations_blend_into_the_pace():
    training_pace.record_training(steps=60, train_s=60.0, other_s=12.0, load_s=8.0)
    first = training_pace.current()
    assert (first.seconds_per_step, first.other_s, first.loading_s) == (1.0, 12.0, 8.0) and first.steps_measured
    training_pace.record_training(steps=60, train_s=120.0, other_s=12.0)  # a busy moment counts half
    assert training_pace.current().seconds_per_step == pytest.approx(1.5)
    training_pace.record_preparation(answers=50, seconds=100.0)
    pace = training_pace.current()
    assert pace.answers_measured and pace.preparing_s(25) == pytest.approx(50.0)
    training_pace.record_preparation(answers=0, seconds=3.0)  # nothing was generated: nothing learnt
    assert training_pace.current().seconds_per_answer == pytest.approx(2.0)


def test_a_damaged_pace_file_is_a_first_guess_not_a_crash():
    path = training_pace.pace_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert not training_pace.current().steps_measured


def test_the_experiments_estimate_follows_the_measured_pace():
    """Pure: a sweep that trains adapters is estimated at this server's measured seconds per step."""
    from lab import experiments
    from lab.scenario import load_scenario

    acme = load_scenario("acme")
    guessed = experiments.estimate_seconds("rank", acme, [2, 4], steps=20)
    training_pace.record_training(steps=20, train_s=200.0, other_s=30.0)  # a slow server: 10 s a step
    measured = experiments.estimate_seconds("rank", acme, [2, 4], steps=20)
    assert measured - guessed > 2 * 20 * 9  # two adapters, twenty steps each, about 9.5 s slower a step
