"""Pinned memory: what an agent keeps in every prompt, and what that costs.

Agent products keep two tiers of memory: rules and preferences always in context (Letta's
core memory, ChatGPT's saved memories), and notes searched for when a question needs them.
A pinned memory is the first tier. It needs no retrieval to be followed, so a style rule
reaches questions no stored example resembles; in exchange, every answer of the memory
arms pays its tokens, relevant or not. That price is what this module measures and bounds:
a pinned store that grows without limit would crowd the context of every prompt.

    pinned_tokens(engine, ["Always answer like a pirate."])   # the extra prompt tokens per answer
    check_budget(engine, store, adding="Answer in French.")    # a one-line LabError past the budget
"""

from __future__ import annotations

import os
from typing import Sequence

from lab import prompting
from lab.errors import LabError

# About five short rules or two worked examples: two pinned examples cost about 52 tokens a
# prompt on the 135M model, and every pinned token is paid again on every answer.
DEFAULT_BUDGET_TOKENS = 256
_PROBE = "?"  # any question: the cost of the notes does not depend on it


def budget_tokens() -> int:
    """LAB_PINNED_TOKENS overrides the budget (a workshop on long system prompts, say)."""
    try:
        return max(0, int(os.environ.get("LAB_PINNED_TOKENS", DEFAULT_BUDGET_TOKENS)))
    except ValueError:
        return DEFAULT_BUDGET_TOKENS


def pinned_tokens(engine, texts: Sequence[str], fmt: str = prompting.DEFAULT_MEMORY_FORMAT) -> int:
    """Prompt tokens that pinned `texts` add to every answer: the prompt with them, less the
    prompt without them (the notes' heading included), measured with the model's tokenizer."""
    if not texts:
        return 0
    with_notes = engine.tokenize(engine.format_prompt(prompting.memory_messages(_PROBE, [], fmt, pinned=texts)))
    without = engine.tokenize(engine.format_prompt(prompting.question_messages(_PROBE)))
    return len(with_notes) - len(without)


def note_tokens(engine, text: str) -> int:
    """The tokens one memory's line takes in the notes ("- TEXT" and its line break): the
    Memory page's meter. A retrieved memory pays it only when it is sent."""
    return len(engine.tokenize(f"- {text}\n", special=False))


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
