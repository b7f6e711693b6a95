"""Consolidation: turning what is in memory (or a scenario) into a trained adapter.

Memory is the staging ground: corrections pile up there first, instantly useful. When
they have proved themselves, consolidation trains them into a LoRA adapter, which is
registered in the workspace and made active. Wipe the memory afterwards and the
learned arm still knows.
"""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path
from typing import Callable

from lab import prompting
from lab.errors import LabError
from lab.learning import Example, Progress, TrainingConfig, TrainingResult, train
from lab.scenario import Scenario

# Replay: the base model's own answers to these general questions are mixed into training,
# so the adapter is also pulled towards leaving unrelated behaviour alone. They are kept
# apart from every scenario's locality questions, which measure forgetting and must stay unseen.
REPLAY_QUESTIONS = (
    "What is the capital of Italy?", "How many wheels does a bicycle have?", "What colour is grass?",
    "Who painted the Mona Lisa?", "What is the tallest animal?", "How many hours are in a day?",
    "What is the main language spoken in Brazil?", "What gas do plants take in?", "What is ice made of?",
    "Which ocean is the largest?", "What do cows drink?", "How many sides does a triangle have?",
    "What is the capital of Germany?", "What do you call a baby cat?", "Which season comes after winter?",
    "What is the closest star to Earth?",
)


def examples_from_memory(memories) -> list[Example]:
    """A memory with a question and answer trains as that Q/A pair; a bare text trains as text."""
    examples = []
    for memory in memories:
        if memory.question and memory.answer:
            examples.append(Example(memory.question, memory.answer, "fact"))
        else:
            examples.append(Example("", memory.text, "text"))
    return examples


def examples_from_scenario(scenario: Scenario, *, paraphrases: bool = False) -> list[Example]:
    examples = [Example(item.question, item.answer, "fact") for item in scenario.items]
    if paraphrases:
        examples += [Example(p, item.answer, "paraphrase") for item in scenario.items for p in item.paraphrases]
    return examples


def first_sentence(text: str) -> str:
    """The reply up to its first full stop, question or exclamation mark.

    >>> first_sentence("Paris is the capital. It is in France.")
    'Paris is the capital.'
    """
    match = re.search(r"^.*?[.!?](?=\s|$)", text.strip(), flags=re.S)
    return match.group(0) if match else text.strip()


def replay_examples(questions, engine) -> list[Example]:
    """The base model's own greedy answers (no adapter) to unrelated questions, cut to their
    first sentence: the rambling that follows is noise the adapter should not be trained on."""
    return [Example(q, first_sentence(engine.chat(prompting.question_messages(q)).text), "replay")
            for q in questions]


def consolidate(session, *, name: str, scenario: Scenario | None = None, config: TrainingConfig | None = None,
                on_progress: Callable[[Progress], None] | None = None,
                cancel: threading.Event | None = None, activate: bool = True) -> TrainingResult:
    """Train an adapter from the workspace memory (or `scenario`), register it, activate it."""
    from lab.adapters import validate_adapter_name

    config = (config or TrainingConfig()).validate()
    validate_adapter_name(name)
    if scenario is not None:
        examples = examples_from_scenario(scenario, paraphrases=config.paraphrases)
    else:
        examples = examples_from_memory(session.memory.list())
    if not examples:
        raise LabError("the training set is empty: the memory has no corrections; remember some first "
                       "(python -m lab remember TEXT --question Q --answer A) or pass --scenario NAME")
    if config.replay:
        examples += replay_examples(REPLAY_QUESTIONS, session.engine)

    result = train(examples, config, engine=session.engine, name=name, out_dir=session.adapters.directory,
                   on_progress=on_progress, cancel=cancel)
    peft_dir = Path(result.meta.pop("peft_dir"))
    meta = {**result.meta, "source": f"scenario:{scenario.name}" if scenario else "memory"}
    try:
        info = session.adapters.register(name, result.path, meta)
        target = info.path.parent / "peft"
        shutil.rmtree(target, ignore_errors=True)
        peft_dir.rename(target)
    finally:
        shutil.rmtree(peft_dir, ignore_errors=True)
    if activate:
        session.adapters.activate(name)
    result.path = info.path
    return result
