"""Which retrieved memories go into a prompt: the recall rule.

The memory store ranks notes by similarity; this module decides which of them the model
sees. A 135M model copies whatever note sits beside the question, so the rule matters as
much as the ranking: a weak neighbour let in (the island's mayor, asked for its population)
becomes the answer.

Today's rule: the best `k` notes scoring at least `min_score`.
"""

from __future__ import annotations

from typing import Sequence

from lab.memory import Hit


def choose(hits: Sequence[Hit], k: int, min_score: float) -> list[Hit]:
    """The notes to send, best first, from `hits` (best first, already above `min_score`)."""
    return [hit for hit in hits if hit.score >= min_score][:k]
