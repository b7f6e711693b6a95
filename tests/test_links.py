"""Shareable links: parsing and building the query string (pure functions, no model)."""

import pytest

from lab.agent import ARMS, DEFAULT_K, DEFAULT_MIN_SCORE
from lab.links import LinkSettings, build_link, link_params, parse_link
from lab.scenario import bundled_names


def test_no_parameters_give_the_defaults_and_no_warning():
    settings, warning = parse_link({})
    assert settings == LinkSettings("acme", "memory", DEFAULT_K, DEFAULT_MIN_SCORE, False) and warning is None


def test_build_gives_a_relative_workshop_url():
    link = build_link(LinkSettings("acme", "memory", 3, 0.5, teacher=True))
    assert link == "/Workshop?scenario=acme&arm=memory&k=3&threshold=0.5&teacher=1"
    assert "teacher" not in build_link(LinkSettings())  # off is the default: left out
    assert build_link(LinkSettings(), page="Wipe_Test").startswith("/Wipe_Test?scenario=acme")


@pytest.mark.parametrize("settings", [
    LinkSettings(),
    LinkSettings("pirate", "learned", 1, -1.0, True),
    LinkSettings("poisoning", "both", 50, 1.0, False),
    LinkSettings("preferences", "base", 7, 0.35, True),
])
def test_round_trip(settings):
    assert parse_link(link_params(settings)) == (settings, None)


def test_every_bundled_scenario_and_arm_is_accepted():
    for name in bundled_names():
        assert parse_link({"scenario": name})[0].scenario == name
    for arm in ARMS:
        assert parse_link({"arm": arm})[0].arm == arm


def test_threshold_is_written_without_float_noise():
    assert link_params(LinkSettings(threshold=0.1 + 0.2))["threshold"] == "0.3"


@pytest.mark.parametrize("name, value", [
    ("scenario", "nope"), ("scenario", "../etc/passwd"), ("arm", "brain"), ("k", "0"), ("k", "51"),
    ("k", "2.5"), ("k", "lots"), ("threshold", "1.5"), ("threshold", "-2"), ("threshold", "nan"),
    ("threshold", "inf"), ("threshold", "half"), ("teacher", "maybe"),
])
def test_a_bad_value_falls_back_to_its_default_with_one_warning_line(name, value):
    settings, warning = parse_link({name: value, "k": "4"} if name != "k" else {name: value})
    assert getattr(settings, name) == getattr(LinkSettings(), name)
    assert warning and "\n" not in warning and f"{name}=" in warning
    if name != "k":
        assert settings.k == 4  # the good values of the same link still count


def test_several_bad_values_are_named_in_the_same_line():
    settings, warning = parse_link({"arm": "x", "k": "-1", "threshold": "0.2", "workspace": "mine"})
    assert settings == LinkSettings(threshold=0.2)
    assert warning.count("=") == 2 and "arm='x'" in warning and "k='-1'" in warning


def test_values_as_lists_use_the_last_one_and_whitespace_is_ignored():
    settings, warning = parse_link({"k": ["2", "5"], "arm": [" learned "], "teacher": ["yes"]})
    assert (settings.k, settings.arm, settings.teacher, warning) == (5, "learned", True, None)


def test_a_very_long_bad_value_is_cut_in_the_warning():
    _, warning = parse_link({"scenario": "x" * 5000})
    assert len(warning) < 300
