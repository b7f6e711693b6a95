"""Memory as the staging ground: which memories have proved themselves and are worth
consolidating into the weights.

A correction goes into memory first, where it helps at once and can be edited or deleted.
Some prove themselves there: they are sent into answer after answer, leaving them out
changes the answer (*Why?* tested it), and nobody has edited them for a while. Those are
the candidates for consolidation (lab/consolidation.py): stable, useful and specific
enough to be worth weights. A memory that is still being corrected, or that no question
needs, stays in memory, where change is cheap.

The rule, with its thresholds as options (CandidateRule, `consolidate --candidates`):
    sent into at least `min_retrievals` answers,
    decisive at least `min_decisive` times (leaving it out changed the answer),
    unchanged for at least `min_age_days` (an edit restarts the clock),
    and a question to train on (a pinned rule needs none: it is distilled on general questions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from lab.memory import Memory, Usage


@dataclass(frozen=True)
class CandidateRule:
    min_retrievals: int = 3
    min_decisive: int = 1
    # About half an hour: long enough that a correction still being fixed is not taken, short
    # enough for a lesson. A deployment would wait days.
    min_age_days: float = 0.02


@dataclass(frozen=True)
class Candidate:
    memory: Memory
    usage: Usage
    age_days: float
    reason: str

    def to_json(self) -> dict:
        return {"id": self.memory.id, "text": self.memory.text, "retrievals": self.usage.retrievals,
                "decisive": self.usage.decisive, "age_days": round(self.age_days, 3), "reason": self.reason}


def age_days(memory: Memory, now: datetime | None = None) -> float:
    """Days since the memory was last written (created or edited)."""
    now = now or datetime.now(timezone.utc)
    written = datetime.fromisoformat(memory.updated_at.replace("Z", "+00:00"))
    return max(0.0, (now - written).total_seconds() / 86400)


@dataclass(frozen=True)
class Standing:
    """One memory against the rule: its counts, each test, and what it still lacks. Every
    memory has one; the candidates are those that pass every test."""

    memory: Memory
    usage: Usage
    age_days: float
    rule: CandidateRule

    @property
    def tests(self) -> dict[str, bool]:
        rule, used = self.rule, self.usage
        return {"sent": used.retrievals >= rule.min_retrievals, "decisive": used.decisive >= rule.min_decisive,
                "unchanged": self.age_days >= rule.min_age_days,
                "question": bool(self.memory.question or self.memory.pinned)}

    @property
    def candidate(self) -> bool:
        return all(self.tests.values())

    @property
    def sent(self) -> str:
        """"1 of 3": times sent into an answer, of the rule's minimum."""
        return f"{self.usage.retrievals} of {self.rule.min_retrievals}"

    @property
    def decisive(self) -> str:
        """"0 of 1 (tested 2 times)": times leaving it out changed the answer, of the minimum."""
        return f"{self.usage.decisive} of {self.rule.min_decisive} (tested {self.usage.tested})"

    @property
    def unchanged(self) -> str:
        """"12 minutes of 29 minutes": time since it was written, of the minimum."""
        return f"{duration(self.age_days)} of {duration(self.rule.min_age_days)}"

    def lacks(self) -> str:
        """What it still needs to become a candidate, in words; "" when it is one.

        >>> Standing(Memory(1, "t", None, None, "user", "", ""), Usage(retrievals=1), 0.0, CandidateRule()).lacks()
        'sent 2 more times; decisive when *Why?* leaves it out (not tested yet); unchanged for 29 minutes more; a question to train and check it on'
        """
        rule, used, tests, needs = self.rule, self.usage, self.tests, []
        if not tests["sent"]:
            more = rule.min_retrievals - used.retrievals
            needs.append(f"sent {more} more time{'s' if more != 1 else ''}")
        if not tests["decisive"]:
            needs.append("decisive when *Why?* leaves it out " + (
                "(not tested yet)" if not used.tested else
                f"(tested {used.tested} time{'s' if used.tested != 1 else ''}, never decisive)"))
        if not tests["unchanged"]:
            needs.append(f"unchanged for {duration(rule.min_age_days - self.age_days)} more")
        if not tests["question"]:
            needs.append("a question to train and check it on")
        return "; ".join(needs)


def standings(store, rule: CandidateRule = CandidateRule(), now: datetime | None = None) -> list[Standing]:
    """Every memory against `rule`, oldest id first."""
    usage = store.usage()
    return [Standing(memory, usage.get(memory.id, Usage()), age_days(memory, now), rule) for memory in store.list()]


def candidates(store, rule: CandidateRule = CandidateRule(), now: datetime | None = None) -> list[Candidate]:
    """The memories that meet `rule`, most decisive first."""
    found = [Candidate(s.memory, s.usage, s.age_days, reason(s.usage, s.age_days))
             for s in standings(store, rule, now) if s.candidate]
    return sorted(found, key=lambda c: (-c.usage.decisive, -c.usage.retrievals, c.memory.id))


def duration(days: float) -> str:
    """A span in the unit that reads best: duration(2.1) -> '2.1 days'; duration(0.02) -> '29 minutes'."""
    return f"{days:.1f} days" if days >= 1 else f"{days * 24:.1f} hours" if days * 24 >= 1 else \
        f"{max(days, 0) * 1440:.0f} minutes"


def reason(usage: Usage, age: float) -> str:
    """One line on why a memory qualifies: "sent 5 times; decisive 2 of 3 times tested; unchanged for 2.1 days"."""
    return (f"sent {usage.retrievals} times; decisive {usage.decisive} of {usage.tested} times tested; "
            f"unchanged for {duration(age)}")
