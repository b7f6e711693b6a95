"""Attribution: which retrieved memory changed the answer?

Answer once with the memory arm, then again with each memory it sent (pinned or retrieved)
left out in turn. A memory whose removal changes the answer is one the answer depended on.
This is a leave-one-out test, the simplest honest answer to "why did it say that?". Each
memory keeps count of how often it was tested so and how often it was decisive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Ablation:
    id: int
    text: str
    score: float
    answer_without: str
    changed: bool
    pinned: bool = False


@dataclass
class Explanation:
    question: str
    answer: str
    base_answer: str
    ablations: list[Ablation] = field(default_factory=list)

    @property
    def decisive(self) -> list[int]:
        """Ids of the memories whose removal changed the answer."""
        return [a.id for a in self.ablations if a.changed]

    def to_json(self) -> dict:
        return {"question": self.question, "answer": self.answer, "base_answer": self.base_answer,
                "hits": [{"id": a.id, "text": a.text, "score": round(a.score, 4), "pinned": a.pinned}
                         for a in self.ablations],
                "ablations": [{"id": a.id, "answer_without": a.answer_without, "changed": a.changed}
                              for a in self.ablations],
                "decisive": self.decisive}


def explain(agent, question: str, *, arm: str = "memory", k: int = 3, min_score: float | None = None,
            on_progress: Callable[[int, int, str], None] | None = None) -> Explanation:
    """Leave each retrieved memory out in turn and see whether the answer changes.
    `on_progress(done, total, what)` hears of each answer before it is asked (one per sent memory,
    plus the answer with all of them and the one without any)."""
    from lab.agent import DEFAULT_MIN_SCORE

    report = on_progress or (lambda done, total, what: None)
    min_score = DEFAULT_MIN_SCORE if min_score is None else min_score
    report(0, 2, "answering with the memories")
    full = agent.answer(question, arm, k=k, min_score=min_score)
    total = 2 + len(full.hits)
    report(1, total, "answering without any memory")
    base_arm = "learned" if arm == "both" else "base"
    base = agent.answer(question, base_arm)
    ablations = []
    for i, hit in enumerate(full.hits, 2):
        report(i, total, f"answering without memory [{hit.id}] ({i - 1} of {len(full.hits)})")
        without = agent.answer(question, arm, k=k, min_score=min_score, exclude_ids={hit.id})
        ablations.append(Ablation(hit.id, hit.text, float(hit.score), without.answer, without.answer != full.answer,
                                  hit.pinned))
    # Usage signals (the staging ground for consolidation): which memories were tested, and decisive.
    agent.memory.record_use(tested=[a.id for a in ablations], decisive=[a.id for a in ablations if a.changed])
    return Explanation(question=full.question, answer=full.answer, base_answer=base.answer, ablations=ablations)
