"""How a question, and the memories retrieved for it, become the messages sent to the model.

Kept apart from the agent so a reader sees the whole prompt in one place. The format
was chosen by measurement on the 135M model (bench/prompt_formats.py): a tiny model
copies whatever text sits closest to the question, so memories go in the user turn,
right before the question, as plain sentences; unrelated memories are kept out by the
similarity threshold, because injecting them makes the model answer with them.
"""

from __future__ import annotations

from typing import Sequence

SYSTEM_PROMPT = "You are a helpful assistant. Answer the question in one short sentence."

# Each format turns (notes, question) into the user turn. The default is "notes_first".
MEMORY_FORMATS = {
    # Notes as a list under a heading, then the question.
    "notes_first": lambda notes, q: "Notes:\n" + "\n".join(f"- {n}" for n in notes) + f"\n\nQuestion: {q}",
    # Notes as running text, then the question.
    "inline": lambda notes, q: " ".join(notes) + f"\n{q}",
    # An explicit instruction to use the notes.
    "instructed": lambda notes, q: ("Use these facts to answer.\n" + "\n".join(notes) + f"\n\nQuestion: {q}"),
}
DEFAULT_MEMORY_FORMAT = "notes_first"


def question_messages(question: str, system: str = SYSTEM_PROMPT) -> list[dict]:
    """The messages for a question with nothing retrieved (base and learned arms)."""
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def memory_messages(question: str, notes: Sequence[str], fmt: str = DEFAULT_MEMORY_FORMAT,
                    system: str = SYSTEM_PROMPT, pinned: Sequence[str] = ()) -> list[dict]:
    """The messages for a question with retrieved memories (memory and both arms).

    Pinned memories (lab/pinned.py) come first among the notes, in every prompt: standing
    rules, then the notes retrieved for this question, the best one last beside it.
    With no notes at all this is exactly `question_messages`, so an empty or wiped memory
    gives the memory arm the very same prompt as the base arm.

    >>> memory_messages("Who?", ["Ada wrote it."])[1]["content"]
    'Notes:\\n- Ada wrote it.\\n\\nQuestion: Who?'
    """
    every = list(pinned) + list(notes)
    if not every:
        return question_messages(question, system)
    return [{"role": "system", "content": system},
            {"role": "user", "content": MEMORY_FORMATS[fmt](every, question)}]
