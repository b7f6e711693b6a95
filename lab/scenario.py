"""Scenarios: a set of corrections and the questions that measure memory and learning.

A scenario file is JSON (lab/scenarios/schema.json documents every field). Load one by
path or by the name of a bundled scenario:

    scenario = load_scenario("acme")
    scenario.items[0].correction_text   # what memory stores and training learns

A scenario of kind `updates` is a set of facts that change: each item holds its old
answer and target, and under `update` the new ones. `scenario.before_update()` and
`scenario.after_update()` are the same scenario as plain facts, old and new
(lab/update_test.py remembers and trains the first, then edits memory to the second).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from lab.errors import LabError

BUNDLED_DIR = Path(__file__).resolve().parent / "scenarios"
SCHEMA_PATH = BUNDLED_DIR / "schema.json"
MAX_FILE_BYTES = 20 * 1024 * 1024


def target_matches(target: str, reply: str) -> bool:
    """Whether a reply contains the target regex, case-insensitively."""
    return re.search(target, reply, re.IGNORECASE) is not None


def can_stop_early(target: str) -> bool:
    """Whether a reply may be cut at the target's first match. Not for a target anchored at
    the reply's end ($ or \\Z, "exactly three words"): a later token would undo the match.

    >>> can_stop_early(r"\\bRome\\b"), can_stop_early(r"^\\w+ \\w+ \\w+\\.?$")
    (True, False)
    """
    return re.search(r"(?<!\\)\$|\\Z", target) is None


@dataclass(frozen=True)
class Probe:
    question: str
    target: str

    def matches(self, reply: str) -> bool:
        return target_matches(self.target, reply)

    @property
    def stop_key(self) -> str:
        """What `matches` checks, for the reply cache's key (lab/reply_cache.py) when it ends a reply early."""
        return f"target-regex-i:{self.target}"


@dataclass(frozen=True)
class Update:
    """What a changed fact says now: its new answer, target and (optionally) memory text."""

    answer: str
    target: str
    correction: str | None = None

    def matches(self, reply: str) -> bool:
        return target_matches(self.target, reply)


@dataclass(frozen=True)
class Item:
    question: str
    answer: str
    target: str
    correction: str | None = None
    paraphrases: tuple[str, ...] = ()
    reverse: tuple[Probe, ...] = ()
    update: Update | None = None  # only in a scenario of kind "updates": the fact as it is now

    @property
    def correction_text(self) -> str:
        """The memory text: the explicit correction, or the question and answer together."""
        return self.correction or f"{self.question} {self.answer}"

    def matches(self, reply: str) -> bool:
        return target_matches(self.target, reply)

    @property
    def stop_key(self) -> str:
        """What `matches` checks, for the reply cache's key (lab/reply_cache.py) when it ends a reply early."""
        return f"target-regex-i:{self.target}"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    kind: str
    description: str
    items: tuple[Item, ...]
    locality: tuple[Probe, ...] = ()
    probes: tuple[Probe, ...] = ()
    path: Path | None = field(default=None, compare=False)
    rule: str | None = None  # a behaviour's standing instruction, which an agent would pin

    def before_update(self) -> "Scenario":
        """The facts as they were: every item's old answer (an `updates` scenario's own items,
        as plain facts)."""
        return replace(self, kind="facts", items=tuple(replace(i, update=None) for i in self.items))

    def after_update(self) -> "Scenario":
        """The facts as they are now: every item's answer, target and memory text replaced by
        its update's, under the name NAME-updated (what an adapter trained on it records)."""
        if self.kind != UPDATES:
            raise LabError(f"scenario {self.name!r} is of kind {self.kind!r}, not {UPDATES!r}: it has no updates")
        return replace(self, name=f"{self.name}-updated", kind="facts", items=tuple(
            replace(i, answer=i.update.answer, target=i.update.target, correction=i.update.correction, update=None)
            for i in self.items))


UPDATES = "updates"  # the kind whose items change


def bundled_names() -> list[str]:
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.json") if p.name != "schema.json")


def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def resolve(path_or_name: str | Path) -> Path:
    """A scenario file from a path, or from the name of a bundled scenario."""
    candidate = Path(path_or_name)
    if candidate.suffix == ".json" or candidate.exists() or "/" in str(path_or_name):
        if not candidate.is_file():
            raise LabError(f"scenario file not found: {candidate}")
        return candidate
    bundled = BUNDLED_DIR / f"{path_or_name}.json"
    if str(path_or_name) in bundled_names():
        return bundled
    raise LabError(f"no scenario named {str(path_or_name)!r}; bundled: {', '.join(bundled_names())}, "
                   "or give the path to a .json file")


def _where(error) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path]
    return "".join(parts).lstrip(".") or "(top level)"


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Read and validate a scenario; errors name the file, the field and the problem."""
    import jsonschema

    path = resolve(path_or_name)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise LabError(f"{path}: file is {path.stat().st_size} bytes, more than the {MAX_FILE_BYTES} allowed")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise LabError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise LabError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise LabError(f"{path}: {_where(first)}: {first.message[:200]}")
    for where, pattern in _regexes(data):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise LabError(f"{path}: {where}: invalid regex {pattern!r} ({exc})") from None
    if problem := _update_problem(data):
        raise LabError(f"{path}: {problem}")
    return Scenario(
        name=data["name"], title=data["title"], kind=data["kind"], description=data.get("description", ""),
        items=tuple(Item(question=i["question"], answer=i["answer"], target=i["target"],
                         correction=i.get("correction"), paraphrases=tuple(i.get("paraphrases", ())),
                         reverse=tuple(Probe(**r) for r in i.get("reverse", ())),
                         update=Update(**i["update"]) if "update" in i else None) for i in data["items"]),
        locality=tuple(Probe(**p) for p in data.get("locality", ())),
        probes=tuple(Probe(**p) for p in data.get("probes", ())), path=path, rule=data.get("rule"))


def _update_problem(data: dict) -> str | None:
    """What is wrong with a scenario's updates, as "items[i].update...: problem", or None.

    An `updates` scenario needs an update on every item, and the old and new values must
    be told apart: a reply holding the new value must not also pass for the old one.

    >>> _update_problem({"kind": "facts", "items": [{"update": {}}]})
    "items[0].update: only a scenario of kind 'updates' has updates (this one is 'facts')"
    """
    for i, item in enumerate(data["items"]):
        update = item.get("update")
        if data["kind"] != UPDATES:
            if update is not None:
                return f"items[{i}].update: only a scenario of kind {UPDATES!r} has updates (this one is {data['kind']!r})"
            continue
        if update is None:
            return f"items[{i}]: 'update' is a required property in a scenario of kind {UPDATES!r}"
        if target_matches(update["target"], item["answer"]):
            return (f"items[{i}].update.target {update['target']!r} also matches the old answer "
                    f"{item['answer']!r}: the new value could not be told from the old one")
        if target_matches(item["target"], update["answer"]):
            return (f"items[{i}].target {item['target']!r} also matches the new answer {update['answer']!r}: "
                    "the old value could not be told from the new one")
        if not target_matches(update["target"], update["answer"]):
            return f"items[{i}].update.target {update['target']!r} does not match its own answer {update['answer']!r}"
    return None


def _regexes(data: dict):
    for i, item in enumerate(data["items"]):
        yield f"items[{i}].target", item["target"]
        if "update" in item:
            yield f"items[{i}].update.target", item["update"]["target"]
        for j, rev in enumerate(item.get("reverse", ())):
            yield f"items[{i}].reverse[{j}].target", rev["target"]
    for key in ("locality", "probes"):
        for i, probe in enumerate(data.get(key, ())):
            yield f"{key}[{i}].target", probe["target"]
