"""Pinned memory: what an agent keeps in every prompt, and what that costs.

Agent products keep two tiers of memory: rules and preferences always in context (Letta's
core memory, ChatGPT's saved memories), and notes searched for when a question needs them.
A pinned memory is the first tier. It needs no retrieval to be followed, so a style rule
reaches questions no stored example resembles; in exchange, every answer of the memory
arms pays its tokens, relevant or not. That price is what this module measures and bounds:
a pinned store that grows without limit would crowd the context of every prompt.

    note_tokens(engine, "Always answer like a pirate.")       # what one note costs a prompt
    pinned_tokens(engine, ["Always answer like a pirate."])   # the extra prompt tokens per answer
    check_budget(engine, store, adding="Answer in French.")    # a one-line LabError past the budget

What a note costs is defined here once, and every page shows this figure under one name,
"prompt tokens": the tokens it adds to a question's prompt, formatting included (the
"Notes:" heading and "Question:" label that any note brings, its "- " and line break).
A note sent alone costs note_tokens(text). Several notes share one heading, so together
they cost notes_tokens(texts), a little less than the sum; in one answer each note is
charged what it adds after the notes before it (each_note_tokens), so the charges add up
to the prompt's extra tokens.
"""

from __future__ import annotations

import os
import weakref
from typing import Sequence

from lab import prompting
from lab.errors import LabError

# About five short rules or two worked examples: two pinned examples cost about 52 tokens a
# prompt on the 135M model, and every pinned token is paid again on every answer.
DEFAULT_BUDGET_TOKENS = 256
_PROBE = "?"  # any question: the cost of the notes does not depend on it
_COSTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # engine -> {(texts, fmt): tokens}
_COSTS_KEPT = 50_000


def budget_tokens() -> int:
    """LAB_PINNED_TOKENS overrides the budget (a workshop on long system prompts, say)."""
    try:
        return max(0, int(os.environ.get("LAB_PINNED_TOKENS", DEFAULT_BUDGET_TOKENS)))
    except ValueError:
        return DEFAULT_BUDGET_TOKENS


def notes_tokens(engine, texts: Sequence[str], fmt: str = prompting.DEFAULT_MEMORY_FORMAT) -> int:
    """The prompt tokens `texts` add to a question's prompt as notes: the prompt with them,
    less the prompt without them (the notes' heading included), in the model's own tokens."""
    texts = tuple(texts)
    if not texts:
        return 0
    # The Memory page prices every note on every run, and a note's cost never changes: kept
    # per engine (weakly, so a replaced model is not held in memory by its cache).
    try:
        known = _COSTS.setdefault(engine, {})
    except TypeError:  # an engine that cannot be weakly referenced: measured every time
        known = {}
    if (texts, fmt) not in known:
        if len(known) > _COSTS_KEPT:
            known.clear()
        with_notes = engine.tokenize(engine.format_prompt(prompting.memory_messages(_PROBE, texts, fmt)))
        without = engine.tokenize(engine.format_prompt(prompting.question_messages(_PROBE)))
        known[(texts, fmt)] = len(with_notes) - len(without)
    return known[(texts, fmt)]


def note_tokens(engine, text: str, fmt: str = prompting.DEFAULT_MEMORY_FORMAT) -> int:
    """What one note costs: the prompt tokens it adds when it is the only note sent. The
    Memory page's table, the pinned meter (for one pinned note) and the Learning page's
    figure per note are all this."""
    return notes_tokens(engine, [text], fmt)


def each_note_tokens(engine, texts: Sequence[str], fmt: str = prompting.DEFAULT_MEMORY_FORMAT) -> list[int]:
    """What each note adds to a prompt holding `texts` in this order: the first carries the
    heading, the others their own lines. They add up to notes_tokens(texts)."""
    totals = [notes_tokens(engine, texts[:n], fmt) for n in range(len(texts) + 1)]
    return [after - before for before, after in zip(totals, totals[1:])]


def pinned_tokens(engine, texts: Sequence[str], fmt: str = prompting.DEFAULT_MEMORY_FORMAT) -> int:
    """Prompt tokens that pinned `texts` add to every answer (they go first in every prompt)."""
    return notes_tokens(engine, texts, fmt)


def check_budget(engine, store, *, adding: str | None = None, pinning: int | None = None) -> int:
    """Raise a one-line LabError if pinning a new text (`adding`) or a stored memory
    (`pinning`, an id) would put the pinned memories over the budget; else the tokens they
    would then cost per answer."""
    texts = [m.text for m in store.pinned() if m.id != pinning]
    if pinning is not None:
        texts.append(store.get(pinning).text)
    if adding is not None:
        texts.append(adding)
    cost, budget = pinned_tokens(engine, texts), budget_tokens()
    if cost > budget:
        raise LabError(f"pinning this would put {cost} tokens of pinned memory into every prompt, over the budget "
                       f"of {budget}; unpin or shorten a pinned memory first (LAB_PINNED_TOKENS sets the budget)")
    return cost
