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
import time
from pathlib import Path
from typing import Callable

from lab import prompting
from lab.errors import LabError
from lab.learning import Example, Progress, TrainingConfig, TrainingResult, base_sha256, train
from lab.models import resolve_model_path
from lab.scenario import Scenario
from lab.training_cache import TrainingCache, training_key
from lab.training_queue import QUEUE, Ticket

# Replay: the base model's own answers to general questions are mixed into training, so
# the adapter is also pulled towards leaving unrelated knowledge alone. Each question comes
# with a pattern its answer must contain: only the questions the base model answers right,
# in its first sentence, are replayed. Replaying everything it says was measured to hurt
# (bench/consolidation.py, README): the adapter learnt the base's filler and mistakes too
# ("A simple answer, but a crucial one." became its answer to "How many days are in a
# week?"). Many are counts and colours, because those are what a small adapter trained on
# numeric facts and an orange logo overwrites ("The spider has 80 legs", "Grass is orange").
# All are kept apart from every scenario's locality questions, which measure forgetting
# and must stay unseen (tests/test_consolidation.py checks, by meaning too).
REPLAY_QUESTIONS = (
    ("How many wheels does a bicycle have?", r"\b(2|two)\b"),
    ("How many sides does a triangle have?", r"\b(3|three)\b"),
    ("How many hours are in a day?", r"\b24\b"),
    ("How many months are in a year?", r"\b(12|twelve)\b"),
    ("How many minutes are in an hour?", r"\b(60|sixty)\b"),
    ("How many legs does a dog have?", r"\b(4|four)\b"),
    ("How many sides does a square have?", r"\b(4|four)\b"),
    ("How many days are in a year?", r"\b365\b"),
    ("How many eyes does a person have?", r"\b(2|two)\b"),
    ("What is 3 + 3?", r"\b(6|six)\b"),
    ("What is 10 minus 5?", r"\b(5|five)\b"),
    ("What colour is grass?", r"green"),
    ("What colour is snow?", r"white"),
    ("What colour is a banana?", r"yellow"),
    ("What colour are ripe strawberries?", r"\bred\b"),
    ("What colour is coal?", r"black"),
    ("What is the capital of Italy?", r"\bRome\b"),
    ("What is the capital of Germany?", r"\bBerlin\b"),
    ("What is the capital of Spain?", r"\bMadrid\b"),
    ("What is the capital of Egypt?", r"\bCairo\b"),
    ("Who painted the Mona Lisa?", r"Leonardo|da Vinci"),
    ("Who wrote Hamlet?", r"Shakespeare"),
    ("What is ice made of?", r"water"),
    ("What is the main language spoken in Brazil?", r"Portuguese"),
    ("What do you call a baby cat?", r"kitten"),
    ("What do you call a baby dog?", r"pupp"),
    ("Which season comes after winter?", r"spring"),
    ("What gas do plants take in?", r"carbon dioxide|CO2"),
    ("What is the tallest animal?", r"giraffe"),
    ("Which animal has a trunk?", r"elephant"),
    ("What animal barks?", r"\bdogs?\b"),
    ("What do caterpillars turn into?", r"butterfl|moth"),
    ("What planet do we live on?", r"\bEarth\b"),
    ("What is the opposite of up?", r"\bdown\b"),
    ("What is the opposite of big?", r"\b(small|little|tiny)\b"),
    ("What is frozen water called?", r"\bice\b"),
    ("What gas do people need to breathe?", r"oxygen"),
    ("What is the closest star to Earth?", r"\bSun\b"),
    ("What is the capital of England?", r"\bLondon\b"),
    ("What is the capital of Russia?", r"\bMoscow\b"),
    ("What is the capital of China?", r"\bBeijing\b"),
    ("How many legs does a cat have?", r"\b(4|four)\b"),
    ("How many wheels does a tricycle have?", r"\b(3|three)\b"),
    ("How many arms does a person have?", r"\b(2|two)\b"),
    ("What colour is the sun?", r"yellow|white"),
    ("What is the opposite of day?", r"\bnight\b"),
    ("What is the opposite of wet?", r"\bdry\b"),
    ("Where do fish live?", r"water|sea|ocean|river|lake"),
    ("What do we call a house made of ice?", r"igloo"),
    ("Which bird is a symbol of peace?", r"dove"),
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


REPLAY_MAX_WORDS = 12
# Replay shares the training steps with the corrections: on acme 40 steps learnt 12-13 of
# the 20 facts with replay, 60 steps 19 of them (README).
REPLAY_STEPS = 60
# Distillation with replay reached 0.9 of the memory arm's reliability on all five recipe sets
# at 120 steps, on two of them at 80 (bench/recipes.py, README).
DISTILL_STEPS = 120


def default_steps(method: str) -> int:
    """How many steps a method trains when nobody says: distillation learns a softer target
    than SFT's answer words and needs about twice as many (bench/recipes.py, README). An
    explicit number (train --steps, the Learning page's slider) always wins."""
    return DISTILL_STEPS if method == "distill" else TrainingConfig.steps


def _direct_answer(question: str, answer: str, pattern: str) -> bool:
    """A short sentence holding the right answer, not merely repeating the question's words
    ("10 minus 5 is a classic math problem..." holds "5" but answers nothing)."""
    return (len(answer.split()) <= REPLAY_MAX_WORDS and re.search(pattern, answer, flags=re.I) is not None
            and re.search(pattern, question, flags=re.I) is None)


def _whole_words(text: str, match: re.Match) -> str:
    """The match widened to the whole words it touches ("ocean" in "oceans" -> "oceans"), so
    its tokens are the answer's own tokens.

    >>> _whole_words("Fish live in oceans.", re.search("ocean", "Fish live in oceans."))
    'oceans'
    """
    start, end = match.span()
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[start:end]


def replay_examples(questions, engine, *, scope: str = "answer", skip=()) -> list[Example]:
    """The base model's own greedy answers (no adapter) to general questions, cut to their
    first sentence (the rambling after it is noise), for the `(question, pattern)` pairs
    whose first sentence holds the right answer. What the base gets wrong is not worth
    keeping, and what it says around a non-answer is worth forgetting.

    scope "answer" marks the words that hold the right answer (the pattern's match) as the
    only ones taught; "reply" teaches the whole sentence. A question in `skip` (one the
    training data itself asks) is never replayed: the two answers would pull apart."""
    asked = {q.strip().casefold() for q in skip}
    questions = [(q, pattern) for q, pattern in questions if q.strip().casefold() not in asked]
    replies = engine.chat_many([prompting.question_messages(q) for q, _ in questions])  # one batch
    examples = []
    for (question, pattern), reply in zip(questions, replies):
        answer = first_sentence(reply.text)
        if _direct_answer(question, answer, pattern):
            focus = _whole_words(answer, re.search(pattern, answer, flags=re.I)) if scope == "answer" else ""
            examples.append(Example(question, answer, "replay", focus=focus))
    return examples


# ---- context distillation --------------------------------------------------------------------

METHODS = ("sft", "distill")
DEFAULT_METHOD = "sft"  # with replay at 60 steps it scored above distillation, even at 120 (bench/recipes.py)
# Rewordings a distilled question is also asked in: the teacher answers each with its notes,
# so the adapter learns the fact under more than one phrasing. Wrappers, not paraphrases: a
# scenario's paraphrases measure generalization and must stay unseen.
REWORDINGS = ("{q}", "Tell me: {q}", "Quick question. {q}", "{q} Please answer briefly.")
DISTILL_MAX_TOKENS = 48


def _notes_in_prompt(prepared) -> tuple[str, ...]:
    """The notes of a prepared memory-arm prompt, in prompt order (pinned, then retrieved best last)."""
    pinned = [hit.text for hit in prepared.hits if hit.pinned]
    retrieved = [hit.text for hit in prepared.hits if not hit.pinned]
    return tuple(pinned + list(reversed(retrieved)))


def distill_examples(session, questions, *, k: int | None = None, min_score: float | None = None) -> list[Example]:
    """The teacher's side of context distillation: for each question, the prompt the memory
    arm builds from the memory as it is now (pinned notes included) and the base model's
    greedy reply to it. Questions that bring no note teach nothing and are left out."""
    from lab.agent import DEFAULT_K, DEFAULT_MIN_SCORE

    options = dict(k=k or DEFAULT_K, min_score=DEFAULT_MIN_SCORE if min_score is None else min_score)
    prepared = [session.agent.prepare(q, "memory", **options) for q in questions]
    prepared = [p for p in prepared if p.hits]
    replies = session.engine.chat_many([p.messages for p in prepared], max_tokens=DISTILL_MAX_TOKENS)  # one batch
    return [Example(p.question, reply.text.strip(), "distill", _notes_in_prompt(p))
            for p, reply in zip(prepared, replies) if reply.text.strip()]


def distill_questions(questions) -> list[str]:
    """Each question in each of the REWORDINGS."""
    return [template.format(q=q) for q in questions for template in REWORDINGS]


def rule_questions() -> list[str]:
    """General questions a pinned rule is distilled on (a rule applies everywhere): every
    other replay question, so the rest can still be replayed without contradicting it."""
    return [q for q, _ in REPLAY_QUESTIONS[1::2]]


def _distill_from_memory(session, memories) -> list[Example]:
    questions = distill_questions([m.question for m in memories if m.question])
    if any(m.pinned for m in memories):
        questions += rule_questions()
    return distill_examples(session, questions)


def _distill_from_scenario(session, scenario: Scenario) -> list[Example]:
    """The scenario's corrections (and its rule, pinned) in a scratch memory, as the wipe test has them."""
    from lab.evaluate import memory_given_back, remember_scenario

    with memory_given_back(session):
        remember_scenario(session, scenario)
        if scenario.rule:
            session.remember(scenario.rule, source=f"scenario:{scenario.name}", pinned=True)
        return _distill_from_memory(session, session.memory.list())


def consolidate(session, *, name: str, scenario: Scenario | None = None, config: TrainingConfig | None = None,
                on_progress: Callable[[Progress], None] | None = None,
                cancel: threading.Event | None = None, activate: bool = True,
                ticket: Ticket | None = None, method: str = DEFAULT_METHOD, memories=None) -> TrainingResult:
    """Train an adapter from the workspace memory (or `scenario`), register it, activate it.

    An identical training done before on this LAB_HOME (same base, examples, settings, seed)
    is not repeated: its adapter is registered here under `name` (lab/training_cache.py) and
    the result says `reused`. Otherwise the training waits its turn in the server's queue
    (lab/training_queue.py; `ticket` is its place if the caller took one already).

    `method`: "sft" learns each memory's question/answer pair (cross-entropy on the answer);
    "distill" learns what the notes did in context: the base model's reply with the notes in
    its prompt, as a whole next-token distribution, from a prompt without them. `memories`
    (a list of Memory) trains on those instead of the whole memory."""
    from lab.adapters import validate_adapter_name

    started = time.perf_counter()
    config = (config or TrainingConfig(steps=default_steps(method))).validate()
    validate_adapter_name(name)
    session.adapters.check_room(name)  # a full workspace is refused before minutes of training
    if method not in METHODS:
        raise LabError(f"unknown training method {method!r}: choose sft or distill")
    chosen = list(memories) if memories is not None else None
    if method == "distill":
        examples = (_distill_from_scenario(session, scenario) if scenario is not None
                    else _distill_from_memory(session, chosen if chosen is not None else session.memory.list()))
    elif scenario is not None:
        examples = examples_from_scenario(scenario, paraphrases=config.paraphrases)
    else:
        examples = examples_from_memory(chosen if chosen is not None else session.memory.list())
    if not examples:
        raise LabError("the training set is empty: the memory has no corrections; remember some first "
                       "(python -m lab remember TEXT --question Q --answer A) or pass --scenario NAME",
                       in_app="Your memory is empty, so there is nothing to train on. Remember a correction "
                              "in the Playground first, or choose “a scenario” above.")
    if config.replay:
        distilled_rule = method == "distill" and any(e.question in set(rule_questions()) for e in examples)
        # A rule distilled on general questions must not be contradicted by replaying them.
        examples += replay_examples(REPLAY_QUESTIONS[0::2] if distilled_rule else REPLAY_QUESTIONS, session.engine,
                                    scope=config.replay_scope, skip=[e.question for e in examples])

    cache = TrainingCache()
    key = training_key(base_sha256(resolve_model_path(session.engine.path)), examples, config)
    trained = None
    ticket = ticket or QUEUE.join(name, config.steps)
    try:
        if not cache.has(key):
            with QUEUE.turn(ticket, cancel):
                if not cache.has(key):  # not trained by another request while this one waited
                    trained = _train_into(cache, key, examples, config, session.engine, name, ticket,
                                          on_progress, cancel)
    finally:
        QUEUE.leave(ticket)
    reused = trained is None
    info = cache.register_copy(key, session.adapters, name, {
        "source": f"scenario:{scenario.name}" if scenario else "memory", "reused": reused, "method": method,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **({"reused_in_s": round(time.perf_counter() - started, 2)} if reused else {})})
    if activate:
        session.adapters.activate(name)
    if trained is not None:
        trained.path, trained.meta = info.path, info.meta  # `seconds`: the training's own, queue wait aside
        return trained
    meta = info.meta
    return TrainingResult(name=name, path=info.path, seconds=time.perf_counter() - started, steps=config.steps,
                          final_loss=meta["loss_curve"][-1], train_tokens_per_s=meta["train_tokens_per_s"],
                          loss_curve=list(meta["loss_curve"]), meta=meta, reused=True)


def _train_into(cache: TrainingCache, key: str, examples, config, engine, name, ticket, on_progress, cancel):
    """Train once and store the adapter in the shared cache under `key`."""
    def progress(report):
        ticket.report(report)  # the queue's expected starts for those behind
        if on_progress is not None:
            on_progress(report)

    work = cache.staging_dir()
    try:
        result = train(examples, config, engine=engine, name=name, out_dir=work, on_progress=progress,
                       cancel=cancel)
        peft_dir = Path(result.meta.pop("peft_dir"))
        cache.store(key, result.path, peft_dir, result.meta)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


# ---- consolidate, verify, retire -----------------------------------------------------------

# General questions the verification asks before and after (locality): never trained on
# (replay has its own), so they show what the adapter disturbed.
VERIFY_LOCALITY = (
    ("What is the capital of France?", r"\bParis\b"),
    ("How many legs does a spider have?", r"\b(8|eight)\b"),
    ("What do bees make?", r"honey"),
    ("Who wrote Romeo and Juliet?", r"Shakespeare"),
    ("What is the largest planet in the solar system?", r"Jupiter"),
    ("How many days are in a week?", r"\b(7|seven)\b"),
    ("What is the opposite of hot?", r"\bcold\b"),
    ("Which animal says moo?", r"\bcows?\b"),
    ("What is the largest ocean on Earth?", r"Pacific"),
    ("What is the chemical symbol for gold?", r"\bAu\b"),
)
_STOPWORDS = frozenset("the a an is are was were be of in on at to for and or with by from it its this that "
                       "what which who whom whose when where how why do does did has have had can will".split())


def answer_keys(expected: str, question: str = "") -> list[str]:
    """The words of an expected answer that a reply must contain to count as it: numbers and
    content words the question does not already hold.

    >>> answer_keys("The refund window at Acme Corp is 45 days.", "What is the refund window at Acme Corp?")
    ['45', 'days']
    """
    asked = {w.lower() for w in re.findall(r"\w+", question)}
    return [w.lower() for w in re.findall(r"\w+", expected)
            if w.lower() not in _STOPWORDS and w.lower() not in asked and (w.isdigit() or len(w) > 2)]


def answers_match(expected: str, reply: str, question: str = "") -> bool:
    """Whether a reply gives the expected answer: at least half its key words, and every number."""
    keys = answer_keys(expected, question)
    if not keys:
        return expected.strip().lower() in reply.lower()
    said = {w.lower() for w in re.findall(r"\w+", reply)}
    numbers = [k for k in keys if k.isdigit()]
    return all(n in said for n in numbers) and sum(k in said for k in keys) * 2 >= len(keys)


def memory_prompt_tokens(session, questions) -> float:
    """Mean prompt tokens of the memory arm for `questions` with the memory as it is now."""
    return memory_prompts(session, questions)[0]


def memory_prompts(session, questions) -> tuple[float, dict[int, str]]:
    """(mean prompt tokens of the memory arm for `questions`, {id: text} of the retrieved notes
    those prompts hold), with the memory as it is now. The notes matter as much as the mean:
    a retired note's place among the k retrieved goes to the next note that passes the
    threshold, and then the prompt is no shorter (tests/test_consolidation.py)."""
    if not questions:
        return 0.0, {}
    engine, total, notes = session.engine, 0, {}
    for question in questions:
        prepared = session.agent.prepare(question, "memory")
        total += len(engine.tokenize(engine.format_prompt(prepared.messages)))
        notes.update({hit.id: hit.text for hit in prepared.hits if not hit.pinned})
    return total / len(questions), notes


def prompt_tokens_note(report: dict) -> str:
    """What the prompt-token figures of a consolidate_memories report mean, in one line: what the
    retired notes cost, and which notes took their places if the prompts did not get shorter."""
    retired, cost = report.get("retired") or [], report.get("retired_note_tokens", 0)
    if not retired:
        return "Nothing was retired, so the memory arm's prompts are as they were."
    saved = report["prompt_tokens_before"] - report["prompt_tokens_after"]
    what = (f"The retired note{'s' if len(retired) != 1 else ''} ({cost} prompt tokens as note"
            f"{'s' if len(retired) != 1 else ''}) left the memory arm's prompts for these questions")
    fillers = report.get("took_their_place") or []
    if not fillers:
        return f"{what}: {saved:.1f} tokens fewer per answer."
    named = ", ".join(f"[{n['id']}] {n['text'][:60]}" for n in fillers)
    return (f"{what}, but other notes that pass the retrieval threshold took their places ({named}), so the "
            f"prompts are {saved:.1f} tokens shorter per answer. A higher threshold keeps such unrelated notes out.")


def consolidate_memories(session, memories, *, name: str, method: str = DEFAULT_METHOD, retire: bool = False,
                         config: TrainingConfig | None = None, on_progress=None, cancel=None,
                         ticket: Ticket | None = None) -> dict:
    """Train an adapter on `memories`, verify it, and (with `retire`) retire what it verified.

    Verification asks the adapter each memory's question with no notes at all: a memory
    whose answer it gives is verified, and only verified memories are retired (moved out of
    the store into its retired list; undo brings them back). Locality: of VERIFY_LOCALITY's
    questions the base model gets right, the share the adapter still gets right. A pinned
    memory without a question cannot be checked this way and is never retired."""
    memories = list(memories)
    if not memories:
        raise LabError("nothing to consolidate: choose memories (--ids, --candidates or --all)",
                       in_app="Choose at least one memory to consolidate.")
    asked = [m for m in memories if m.question]
    questions = [m.question for m in asked]
    tokens_before, notes_before = memory_prompts(session, questions)
    result = consolidate(session, name=name, config=config, method=method, memories=memories,
                         on_progress=on_progress, cancel=cancel, ticket=ticket)
    agent = session.agent
    replies = agent.answer_many(questions, "learned", adapter=name) if questions else []
    verified = [m.id for m, reply in zip(asked, replies) if answers_match(m.answer or m.text, reply.answer, m.question)]
    local = [q for q, _ in VERIFY_LOCALITY]
    base = agent.answer_many(local, "base")
    learned = agent.answer_many(local, "learned", adapter=name)
    right = [i for i, (b, (_, pattern)) in enumerate(zip(base, VERIFY_LOCALITY)) if re.search(pattern, b.answer, re.I)]
    kept = sum(bool(re.search(VERIFY_LOCALITY[i][1], learned[i].answer, re.I)) for i in right)
    retired = [m.id for m in session.memory.retire(verified, name)] if retire and verified else []
    tokens_after, notes_after = memory_prompts(session, questions)
    from lab.pinned import note_tokens  # what a note costs in a prompt, as the Memory page and Workshop say

    report = {"name": name, "method": method, "trained_on": [m.id for m in memories],
              "verified": {"reliability": round(len(verified) / len(asked), 3) if asked else None,
                           "locality": round(kept / len(right), 3) if right else None, "ids": verified},
              "retired": retired, "prompt_tokens_before": round(tokens_before, 1),
              "prompt_tokens_after": round(tokens_after, 1),
              "seconds": round(result.seconds, 1), "reused": result.reused,
              "answers": [{"id": m.id, "question": m.question, "expected": m.answer or m.text, "reply": r.answer,
                           "verified": m.id in verified} for m, r in zip(asked, replies)],
              # What the retired notes cost, and the notes retrieval sends in their places now.
              "retired_note_tokens": sum(note_tokens(session.engine, m.text) for m in memories if m.id in retired),
              "took_their_place": [{"id": i, "text": t} for i, t in sorted(notes_after.items()) if i not in notes_before],
              # Never retired: without a question the adapter cannot be checked without the note.
              "unverifiable": [{"id": m.id, "text": m.text, "why": (
                  "it has no question, so the adapter cannot be checked without it, and an unchecked note is "
                  "never retired." + (" A pinned rule still goes into every memory-arm prompt: if the adapter "
                                      "follows it on its own (ask the learned arm), unpin or delete it yourself."
                                      if m.pinned else ""))} for m in memories if not m.question]}
    report["prompt_tokens_note"] = prompt_tokens_note(report)
    return report
