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


def candidates(store, rule: CandidateRule = CandidateRule(), now: datetime | None = None) -> list[Candidate]:
    """The memories that meet `rule`, most decisive first."""
    usage = store.usage()
    found = []
    for memory in store.list():
        used = usage.get(memory.id, Usage())
        age = age_days(memory, now)
        if (used.retrievals >= rule.min_retrievals and used.decisive >= rule.min_decisive
                and age >= rule.min_age_days and (memory.question or memory.pinned)):
            found.append(Candidate(memory, used, age, reason(used, age)))
    return sorted(found, key=lambda c: (-c.usage.decisive, -c.usage.retrievals, c.memory.id))


def reason(usage: Usage, age: float) -> str:
    """One line on why a memory qualifies: "sent 5 times; decisive 2 of 3 times tested; unchanged for 2.1 days"."""
    unchanged = f"{age:.1f} days" if age >= 1 else f"{age * 24:.1f} hours" if age * 24 >= 1 else \
        f"{age * 1440:.0f} minutes"
    return (f"sent {usage.retrievals} times; decisive {usage.decisive} of {usage.tested} times tested; "
            f"unchanged for {unchanged}")
