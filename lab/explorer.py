"""The retrieval explorer: what a question finds in the memory, and what the memory arm sends.

The Memory page's explorer once decided for itself which notes were "sent" (every candidate
at or above the threshold) and showed a prompt the agent never sent: the agent's recall rule
(lab/recall.py) also drops a second note far below the best one. So the explorer asks the
agent: `Agent.prepare` gives the hits and the exact messages, and this module only adds the
near misses beside them, each with the reason the rule left it out.

    seen = explore(session.agent, "How many people live on the island?", k=2, min_score=0.5)
    [(c.hit.score, c.sent, c.why) for c in seen.candidates]
        -> [(0.87, True, 'sent'), (0.53, False, 'more than 0.30 below the best note (0.87)')]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lab import prompting, recall
from lab.agent import Agent, Prepared
from lab.memory import Hit


@dataclass(frozen=True)
class Candidate:
    """One of the k nearest retrieved (not pinned) notes, and whether the memory arm sends it."""

    hit: Hit
    sent: bool
    why: str  # "sent", or why the recall rule left it out


@dataclass
class Exploration:
    """The memory arm's prompt for one question, as the agent prepares it, and what it chose from."""

    prepared: Prepared  # the agent's own hits and messages
    candidates: list[Candidate]  # the k nearest retrieved notes, best first
    vector: np.ndarray  # the question's embedding (the page's map places it)
    prompt: str  # the exact prompt text the memory arm sends
    prompt_tokens: int
    extra_tokens: int  # over the base arm's prompt for the same question

    @property
    def pinned(self) -> list[Hit]:
        return [hit for hit in self.prepared.hits if hit.pinned]

    @property
    def sent(self) -> list[Hit]:
        """The retrieved notes the memory arm sends, best first."""
        return [hit for hit in self.prepared.hits if not hit.pinned]


def explore(agent: Agent, question: str, *, k: int, min_score: float) -> Exploration:
    """What the memory arm sends for `question` with this k and threshold, beside the k
    nearest retrieved notes; a bad question or setting is the agent's own one-line LabError."""
    prepared = agent.prepare(question, "memory", k=k, min_score=min_score)
    vector = agent.memory.embedder.embed_one(prepared.question)  # the agent's, from the embedder's cache
    sent = [hit for hit in prepared.hits if not hit.pinned]
    pinned = len(prepared.hits) - len(sent)
    # min_score=-1 keeps all k nearest, so the ones the rule drops can be shown too.
    nearest = [hit for hit in agent.memory.search_vector(vector, k=k + pinned, min_score=-1.0) if not hit.pinned][:k]
    shown = {hit.id for hit in nearest}
    nearest += [hit for hit in sent if hit.id not in shown]  # never hide a sent note, however the index ranks
    sent_ids = {hit.id for hit in sent}
    candidates = [Candidate(hit, hit.id in sent_ids,
                            "sent" if hit.id in sent_ids else recall.why_left_out(hit, sent, min_score))
                  for hit in sorted(nearest, key=lambda hit: -hit.score)]
    engine = agent.engine
    prompt = engine.format_prompt(prepared.messages)
    base = engine.format_prompt(prompting.question_messages(prepared.question))
    prompt_tokens = engine.count_tokens(prompt)
    return Exploration(prepared, candidates, vector, prompt, prompt_tokens, prompt_tokens - engine.count_tokens(base))
