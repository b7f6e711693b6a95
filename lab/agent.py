"""The agent: one question, answered by one of four arms.

    base     the frozen model, nothing else
    memory   the frozen model + corrections retrieved from the memory store
    learned  the model with the active LoRA adapter applied, no memory
    both     the adapter and the retrieved corrections

Every Answer carries its evidence: the hits and their scores, the exact messages and
prompt text sent, token counts and latency. A teacher can show why an answer changed.
"""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable

from lab import prompting, recall
from lab.adapters import TRAIN_HINT, AdapterRegistry
from lab.engine import DEFAULT_MAX_TOKENS, Engine
from lab.errors import LabError
from lab.memory import Hit, MemoryStore
from lab.pinned import each_note_tokens

ARMS = ("base", "memory", "learned", "both")
# The recall rule's defaults (lab/recall.py, chosen by bench/recall_rules.py on invented-fact
# sets written for it, with acme and zsRE held to what they had): at most 2 notes, each
# scoring >= 0.5 (relevant questions score >= 0.64, unrelated ones <= 0.37:
# bench/prompt_formats.py), the second only within recall.MARGIN of the best. k=3 let the
# weakest note sit first in the prompt, and the 135M model often copied it.
DEFAULT_K = recall.DEFAULT_K
DEFAULT_MIN_SCORE = recall.DEFAULT_MIN_SCORE
MAX_QUESTION_CHARS = 2000


@dataclass
class Answer:
    """One arm's reply to one question, with the evidence behind it."""

    question: str
    arm: str
    answer: str
    hits: list[Hit] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    prompt: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    retrieval_ms: float = 0.0
    adapter: str | None = None
    cached: bool = False  # the reply came from the class's reply cache (lab/reply_cache.py)
    note_tokens: dict[int, int] = field(default_factory=dict)  # memory id -> the prompt tokens its note took

    @property
    def notes_in_prompt(self) -> list[Hit]:
        """The notes in the order the prompt holds them (`hits` is by score): see prompt_order."""
        return prompt_order(self.hits)

    @property
    def pinned_tokens(self) -> int:
        """Prompt tokens the pinned memories' notes took in this answer (paid on every answer): as
        they go first, with the notes' heading, this is the Memory page's pinned meter."""
        return sum(self.note_tokens.get(h.id, 0) for h in self.hits if h.pinned)

    def to_json(self, verbose: bool = False) -> dict:
        """The CLI's JSON contract; `verbose` adds the messages and prompt text. Every hit says
        whether it was pinned (sent whatever its score) and the prompt tokens its note took."""
        data = {"answer": self.answer, "arm": self.arm,
                "hits": [{"id": h.id, "text": h.text, "score": round(float(h.score), 4), "pinned": h.pinned,
                          "tokens": self.note_tokens.get(h.id, 0)} for h in self.hits],
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "latency_ms": round(self.latency_ms, 2)}
        if verbose:
            data.update(question=self.question, messages=self.messages, prompt=self.prompt,
                        adapter=self.adapter, retrieval_ms=round(self.retrieval_ms, 2), cached=self.cached)
        return data


@dataclass
class Prepared:
    """What an arm will send to the model for one question, before it is sent."""

    question: str
    arm: str
    hits: list[Hit]
    messages: list[dict]
    adapter_path: Path | None
    retrieval_ms: float
    note_tokens: dict[int, int] = field(default_factory=dict)

    def answered(self, completion) -> Answer:
        return Answer(question=self.question, arm=self.arm, answer=completion.text, hits=self.hits,
                      messages=self.messages, prompt=completion.prompt, prompt_tokens=completion.prompt_tokens,
                      completion_tokens=completion.completion_tokens,
                      latency_ms=completion.latency_ms + self.retrieval_ms, retrieval_ms=self.retrieval_ms,
                      adapter=str(self.adapter_path) if self.adapter_path else None,
                      cached=getattr(completion, "cached", False), note_tokens=self.note_tokens)


def prompt_order(hits: list[Hit]) -> list[Hit]:
    """Notes as the memory arms' prompt holds them: pinned rules first, then the retrieved
    notes worst to best, so the best match sits last, beside the question, where a small
    model looks hardest. `hits` (pinned, then retrieved best first) is the order of scores.

    prompt_order([pinned 0.1, retrieved 0.9, retrieved 0.7]) -> [pinned 0.1, retrieved 0.7, retrieved 0.9]
    """
    pinned = [h for h in hits if h.pinned]
    retrieved = [h for h in hits if not h.pinned]
    return pinned + retrieved[::-1]


def validate_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise LabError("the question is empty: type a question")
    if len(question) > MAX_QUESTION_CHARS:
        raise LabError(f"the question is too long ({len(question)} characters, max {MAX_QUESTION_CHARS})")
    if any(ord(c) < 32 and c not in "\n\t" for c in question):
        raise LabError("the question contains control characters (e.g. NUL); remove them")
    return question.strip()


def validate_arm(arm: str) -> str:
    if arm not in ARMS:
        raise LabError(f"unknown arm {arm!r}: choose one of {', '.join(ARMS)}")
    return arm


class Agent:
    """Answers questions for one workspace: its memory and its adapters, the shared engine."""

    def __init__(self, engine: Engine, memory: MemoryStore, adapters: AdapterRegistry):
        self.engine = engine
        self.memory = memory
        self.adapters = adapters

    def answer(self, question: str, arm: str = "base", *, k: int = DEFAULT_K,
               min_score: float = DEFAULT_MIN_SCORE, adapter: str | None = None,
               memory_format: str = prompting.DEFAULT_MEMORY_FORMAT,
               exclude_ids: set[int] | None = None,
               max_tokens: int = DEFAULT_MAX_TOKENS,
               adapter_file: Path | None = None,
               reply_cache: dict | None = None,
               stop_when: Callable[[str], bool] | None = None,
               on_token: Callable[[str], None] | None = None,
               on_wait: Callable[[object], None] | None = None) -> Answer:
        """Answer `question` with `arm`. `adapter` names a registered adapter (default: the active one);
        `adapter_file` gives an adapter file directly. `reply_cache` (a dict) lets an evaluation
        reuse the reply to an identical prompt: after a wipe, the memory arm's prompt is the base's."""
        prepared = self.prepare(question, arm, k=k, min_score=min_score, adapter=adapter,
                                memory_format=memory_format, exclude_ids=exclude_ids, adapter_file=adapter_file)
        return self._complete(prepared, max_tokens=max_tokens, reply_cache=reply_cache, stop_when=stop_when,
                              on_token=on_token, on_wait=on_wait)

    def _complete(self, prepared: "Prepared", *, max_tokens: int, reply_cache: dict | None,
                  stop_when=None, on_token=None, on_wait=None) -> Answer:
        # Only evaluations pass a cache; a plain ask should not render the template twice.
        key = self._cache_key(prepared, max_tokens, stop_when) if reply_cache is not None else None
        completion = reply_cache.get(key) if reply_cache is not None else None
        if completion is None:
            completion = self.engine.chat(prepared.messages, adapter=prepared.adapter_path, max_tokens=max_tokens,
                                          on_token=on_token, on_wait=on_wait, stop_when=stop_when)
            if reply_cache is not None:
                reply_cache[key] = completion
        self._count_sent([prepared])
        return prepared.answered(completion)

    def _count_sent(self, prepared: list["Prepared"]) -> None:
        """Usage signals (MemoryStore.record_use): each memory sent into an answer."""
        sent = [hit.id for p in prepared for hit in p.hits]
        if sent:
            self.memory.record_use(sent=sent)

    def answer_many(self, questions: list[str], arm: str = "base", *,
                    stop_when: list[Callable[[str], bool] | None] | None = None,
                    max_tokens: int = DEFAULT_MAX_TOKENS, reply_cache: dict | None = None,
                    on_wait: Callable[[object], None] | None = None, **options) -> list[Answer]:
        """Answer many questions with one arm (an evaluation); `stop_when` has one entry per question.

        The model answers them together (Engine.chat_many: one batch, the same replies as
        asking one at a time); prompts already in `reply_cache` are not asked again."""
        checks = list(stop_when) if stop_when is not None else [None] * len(questions)
        prepared = [self.prepare(q, arm, **options) for q in questions]
        prompts = [self.engine.format_prompt(p.messages) for p in prepared]
        keys = [self._cache_key(p, max_tokens, check, prompt) for p, check, prompt in zip(prepared, checks, prompts)]
        cache = reply_cache if reply_cache is not None else {}
        asked: dict = {}  # key -> index of the first question with it (an arm may repeat a prompt)
        for i, key in enumerate(keys):
            if key not in cache and key not in asked:
                asked[key] = i
        if asked:
            # One adapter per arm, so one batch.
            firsts = list(asked.values())
            completions = self.engine.chat_many([prepared[i].messages for i in firsts],
                                                adapter=prepared[firsts[0]].adapter_path, max_tokens=max_tokens,
                                                stop_when=[checks[i] for i in firsts], on_wait=on_wait)
            for i, completion in zip(firsts, completions):
                cache[keys[i]] = completion
        self._count_sent(prepared)
        return [p.answered(cache[key]) for p, key in zip(prepared, keys)]

    def prepare(self, question: str, arm: str = "base", *, k: int = DEFAULT_K,
                min_score: float = DEFAULT_MIN_SCORE, adapter: str | None = None,
                memory_format: str = prompting.DEFAULT_MEMORY_FORMAT,
                exclude_ids: set[int] | None = None, adapter_file: Path | None = None) -> "Prepared":
        """Everything up to the model call: the retrieved hits and the exact messages this
        arm would send, for a view that shows the prompt without generating."""
        question = validate_question(question)
        arm = validate_arm(arm)
        if not isinstance(k, int) or not 1 <= k <= 50:
            raise LabError(f"k must be a whole number from 1 to 50, got {k!r}")
        if not -1.0 <= float(min_score) <= 1.0:
            raise LabError(f"min-score must be between -1 and 1, got {min_score!r}")

        adapter_path = (adapter_file if arm in ("learned", "both") else None) if adapter_file \
            else self._adapter_path(arm, adapter)
        hits: list[Hit] = []
        retrieval_ms = 0.0
        note_tokens: dict[int, int] = {}
        if arm in ("memory", "both"):
            embedder = self.memory.embedder
            if not embedder.knows(question):
                embedder.load()  # seconds, once: latency should show retrieval, not start-up
            start = time.perf_counter()
            excluded = exclude_ids or set()
            vector = embedder.embed_one(question)
            # Pinned memories go in whatever they score; the rest compete for the k places.
            pinned = [h for h in self.memory.pinned_hits(vector) if h.id not in excluded]
            found = self.memory.search_vector(vector, k=k + len(excluded) + len(pinned), min_score=min_score)
            retrieved = recall.choose([h for h in found if h.id not in excluded and not h.pinned], k, min_score)
            retrieval_ms = (time.perf_counter() - start) * 1000
            hits = pinned + retrieved
            # The prompt is built in prompt_order, the one order the app shows the notes in.
            in_prompt = prompt_order(hits)
            messages = prompting.memory_messages(question, [h.text for h in in_prompt if not h.pinned],
                                                 memory_format, pinned=[h.text for h in in_prompt if h.pinned])
            # Each note is charged what it adds in the prompt's order (lab/pinned.py): the charges add up.
            note_tokens = dict(zip([h.id for h in in_prompt],
                                   each_note_tokens(self.engine, [h.text for h in in_prompt], memory_format)))
        else:
            messages = prompting.question_messages(question)
        return Prepared(question, arm, hits, messages, adapter_path, retrieval_ms, note_tokens)

    def _cache_key(self, prepared: "Prepared", max_tokens: int, stop_when, prompt: str | None = None) -> tuple:
        # After a wipe the memory arm's prompt is the base arm's: the same key, one generation.
        prompt = prompt if prompt is not None else self.engine.format_prompt(prepared.messages)
        return (prompt, str(prepared.adapter_path), max_tokens, stop_when)

    def _adapter_path(self, arm: str, name: str | None):
        if arm not in ("learned", "both"):
            return None
        info = self.adapters.get(name) if name else self.adapters.active()
        if info is None:
            raise LabError(f"the {arm} arm needs a trained adapter and none is active; {TRAIN_HINT}, "
                           "or activate one with: python -m lab adapters activate NAME",
                           in_app=f"The {arm} arm needs a trained adapter, and none is active yet. Train one "
                                  "on the Learning page, or on the Wipe Test page before the run.")
        return info.path
