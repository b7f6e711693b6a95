"""Shareable links: the lab's settings carried in a URL's query string.

A teacher sets up a scenario, an arm, k and a similarity threshold, copies the link and
hands it out; every student's page opens with the same settings. Reading a link never
fails: a bad value falls back to its default and is named in one warning line.

    parse_link({"scenario": "pirate", "k": "2"})
    -> (LinkSettings(scenario='pirate', arm='memory', k=2, threshold=0.5, teacher=False), None)
    parse_link({"k": "lots"})
    -> (LinkSettings(..., k=2, ...), "Ignored from the link: k='lots' (a whole number from 1 to 50). ...")
    build_link(LinkSettings(k=2, teacher=True))
    -> '/Workshop?scenario=acme&arm=memory&k=2&threshold=0.5&teacher=1'

Pure functions only: the pages hand in `st.query_params` and show the warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping
from urllib.parse import urlencode

from lab.agent import ARMS, DEFAULT_K, DEFAULT_MIN_SCORE
from lab.scenario import bundled_names

K_RANGE = (1, 50)  # the same bounds Agent.answer enforces
THRESHOLD_RANGE = (-1.0, 1.0)  # cosine similarity
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class LinkSettings:
    """What a link can set. The defaults are the lab's defaults."""

    scenario: str = "acme"
    arm: str = "memory"
    k: int = DEFAULT_K
    threshold: float = DEFAULT_MIN_SCORE
    teacher: bool = False


def _last(value) -> str:
    """A query value as one string: parse_qs gives lists, st.query_params gives the last value."""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    return str(value).strip()


def _parse_k(text: str) -> int | None:
    """_parse_k("7") -> 7;  _parse_k("0") -> None;  _parse_k("2.5") -> None"""
    try:
        k = int(text)
    except ValueError:
        return None
    return k if K_RANGE[0] <= k <= K_RANGE[1] else None


def _parse_threshold(text: str) -> float | None:
    """_parse_threshold("0.35") -> 0.35;  _parse_threshold("nan") -> None;  _parse_threshold("2") -> None"""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or not THRESHOLD_RANGE[0] <= value <= THRESHOLD_RANGE[1]:
        return None
    return value


def _parse_flag(text: str) -> bool | None:
    """_parse_flag("1") -> True;  _parse_flag("off") -> False;  _parse_flag("maybe") -> None"""
    text = text.lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _rules(scenarios: list[str]) -> dict:
    """name: (parse -> value or None, what a good value looks like)"""
    return {
        "scenario": (lambda t: t if t in scenarios else None, f"one of {', '.join(scenarios)}"),
        "arm": (lambda t: t if t in ARMS else None, f"one of {', '.join(ARMS)}"),
        "k": (_parse_k, f"a whole number from {K_RANGE[0]} to {K_RANGE[1]}"),
        "threshold": (_parse_threshold, f"a number from {THRESHOLD_RANGE[0]:g} to {THRESHOLD_RANGE[1]:g}"),
        "teacher": (_parse_flag, "1 or 0"),
    }


def parse_setting(name: str, value, scenarios: list[str] | None = None) -> tuple[object, str | None]:
    """One setting from a link: (its value, None), or (None, what was wrong with it).

    parse_setting("k", "7") -> (7, None)
    parse_setting("k", "abc") -> (None, "k='abc' (a whole number from 1 to 50)")
    """
    parse, expected = _rules(bundled_names() if scenarios is None else scenarios)[name]
    text = _last(value)
    parsed = parse(text)
    return (None, f"{name}={text[:40]!r} ({expected})") if parsed is None else (parsed, None)


def link_warning(problems: list[str]) -> str | None:
    """One warning line for every bad value a link had (None when there were none): a link
    with two bad values gets one line naming both, not one line each."""
    return ("Ignored from the link: " + "; ".join(problems) + ". Those settings keep the lab's own values.") \
        if problems else None


def parse_link(params: Mapping[str, str | list[str]],
               scenarios: list[str] | None = None) -> tuple[LinkSettings, str | None]:
    """Settings from a query string's parameters, and one warning line naming any bad value
    (None when all were fine). Unknown parameters, such as `workspace`, are left alone."""
    scenarios = bundled_names() if scenarios is None else scenarios
    values, problems = {}, []
    for name in _rules(scenarios):
        if name not in params:
            continue
        value, problem = parse_setting(name, params[name], scenarios)
        if problem:
            problems.append(problem)
        else:
            values[name] = value
    return replace(LinkSettings(), **values), link_warning(problems)


def link_params(settings: LinkSettings) -> dict[str, str]:
    """The query parameters for `settings`; `teacher` only when it is on.

    link_params(LinkSettings()) -> {'scenario': 'acme', 'arm': 'memory', 'k': '3', 'threshold': '0.5'}
    """
    params = {"scenario": settings.scenario, "arm": settings.arm, "k": str(settings.k),
              "threshold": f"{round(settings.threshold, 4):g}"}  # 0.30000000000000004 -> 0.3
    if settings.teacher:
        params["teacher"] = "1"
    return params


def build_link(settings: LinkSettings, page: str = "Workshop") -> str:
    """A relative URL to `page` that opens it with `settings` (page "" is the home page)."""
    return f"/{page}?{urlencode(link_params(settings))}"
