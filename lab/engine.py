"""The frozen language model: one llama.cpp model per process, shared by every session.

Decoding is greedy (deterministic): the lab compares arms, and sampling noise would blur
the comparison. Replies come from lab/decoder.py, which gives a question the same reply
whether it is asked alone (`chat`) or among many (`chat_many`, for evaluations), and every
session's requests go through one queue (lab/scheduler.py) that serves them together in
batched rounds, so thirty students asking at once cost about one batch, not thirty turns.
Before that queue, the class's reply cache (lab/reply_cache.py) answers what was already
asked with exactly the same prompt and weights. Scoring uses llama-cpp-python's own context,
between rounds (llama.cpp contexts are not thread-safe: the engine's lock guards both).

LoRA adapters are applied per call: `chat(messages, adapter=path)` switches the adapter
on the loaded model (no reload of the base); cached keys and values computed with other
weights are dropped.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from lab.errors import LabError
from lab.models import model_info, resolve_model_path

if TYPE_CHECKING:
    from lab.scheduler import Place

DEFAULT_MAX_TOKENS = 48
# A reply is one short answer: stop at the end of the turn or at a blank line.
DEFAULT_STOP = ("<|im_end|>", "<|endoftext|>", "\n\n")


@dataclass
class Completion:
    """What the model produced, and what it cost."""

    text: str
    prompt: str  # the exact text the model saw, chat template applied
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    adapter: str | None = None
    cached: bool = False  # from the class's reply cache: generated earlier, for anyone, identically
    generated_ms: float | None = None  # what generating it took (the first time, when cached)

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / (self.latency_ms / 1000) if self.latency_ms > 0 else 0.0


class _Flight:
    """A reply being generated for one caller that others with the same key wait for."""

    def __init__(self):
        self._done = threading.Event()
        self.reply = None

    def land(self, reply) -> None:
        if not self._done.is_set():
            self.reply = reply
            self._done.set()

    def wait(self):
        self._done.wait()
        return self.reply


class Engine:
    """A GGUF model loaded by llama-cpp-python, with greedy chat, scoring and LoRA switching."""

    def __init__(self, model_path: str | os.PathLike | None = None, *, n_ctx: int = 2048,
                 n_threads: int | None = None, seed: int = 0):
        import llama_cpp

        from lab.llama_runtime import refuse_amx_build

        refuse_amx_build()  # one clear line instead of a segfault on the first decode
        self._llama_cpp = llama_cpp
        self.path = resolve_model_path(model_path)
        self.info = model_info(self.path)
        try:
            # This context scores (teacher forcing); replies come from lab/decoder.py.
            self._llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=n_ctx, n_batch=512, seed=seed,
                                        n_threads=n_threads or os.cpu_count(), verbose=False)
        except Exception as exc:
            raise LabError(f"llama.cpp could not load {self.path} ({exc}); "
                           "pass --model PATH to another GGUF file") from exc
        self._lock = threading.Lock()
        self._adapters: dict[str, object] = {}  # 'path|size|mtime' -> llama_adapter_lora pointer
        self._applied: str | None = None
        self._decoder = None  # made on the first reply
        self._template = self._chat_formatter()
        self._model_hash: str | None = None  # the reply cache's name for these weights
        self._flights: dict[str, "_Flight"] = {}  # reply-cache key -> the generation under way
        self._flights_lock = threading.Lock()
        self.use_reply_cache = True
        from lab.decoder import ROUND_CELLS, ROUND_SEQUENCES, GreedyDecoder
        from lab.scheduler import Scheduler

        self.scheduler = Scheduler(serve=self._serve_round, cost=GreedyDecoder.round_cells, capacity=ROUND_CELLS,
                                   stream=self._stream_to, max_sequences=ROUND_SEQUENCES, model_lock=self._lock)

    # ---- formatting ------------------------------------------------------------------

    def _chat_formatter(self):
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None  # a base model: plain-text prompts, see format_prompt
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        vocab = self._llm
        eos = vocab.detokenize([vocab.token_eos()]).decode("utf-8", "ignore") if vocab.token_eos() >= 0 else ""
        bos = vocab.detokenize([vocab.token_bos()]).decode("utf-8", "ignore") if vocab.token_bos() >= 0 else ""
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True)

    def format_prompt(self, messages: Sequence[dict]) -> str:
        """The exact prompt text for `messages`: the model's chat template, or a plain
        'System/User/Assistant' layout for a base model that has none."""
        if self._template is not None:
            return self._template(messages=list(messages)).prompt
        lines = []
        for message in messages:
            role = {"system": "", "user": "Question: ", "assistant": "Answer: "}.get(message["role"], "")
            lines.append(role + message["content"])
        return "\n".join(lines) + "\nAnswer:"

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    # ---- the queue ---------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether the model is working now (a round of replies, or scoring)."""
        return self._lock.locked() or self.scheduler.busy

    @property
    def waiting(self) -> int:
        """How many requests wait for a round."""
        return self.scheduler.pending

    # ---- generation --------------------------------------------------------------------

    def chat(self, messages: Sequence[dict], *, adapter: str | os.PathLike | None = None,
             max_tokens: int = DEFAULT_MAX_TOKENS, stop: Sequence[str] = DEFAULT_STOP,
             on_token: Callable[[str], None] | None = None,
             on_wait: Callable[["Place"], None] | None = None,
             stop_when: Callable[[str], bool] | None = None, use_cache: bool = True) -> Completion:
        """Answer `messages` greedily. `on_token` receives the text as it streams; `stop_when`
        ends generation early once it returns True for the text so far (an evaluation that
        has seen the target needs no more tokens: the verdict cannot change). `on_wait(place)`
        is told where the request stands while other sessions' requests go first."""
        return self._generate([messages], adapter=adapter, max_tokens=max_tokens, stop=stop,
                              stop_when=[stop_when], on_wait=on_wait, on_token=on_token, use_cache=use_cache)[0]

    def chat_many(self, conversations: Sequence[Sequence[dict]], *, adapter: str | os.PathLike | None = None,
                  max_tokens: int = DEFAULT_MAX_TOKENS, stop: Sequence[str] = DEFAULT_STOP,
                  stop_when: Sequence[Callable[[str], bool] | None] | None = None,
                  on_wait: Callable[["Place"], None] | None = None, use_cache: bool = True) -> list[Completion]:
        """Greedy replies to many conversations at once: exactly the replies `chat` gives one
        at a time (lab/decoder.py says why), in about half the time. Each Completion's
        latency_ms is its share of its round's wall time."""
        checks = list(stop_when) if stop_when is not None else [None] * len(conversations)
        if len(checks) != len(conversations):
            raise ValueError(f"stop_when has {len(checks)} entries for {len(conversations)} conversations")
        return self._generate(conversations, adapter=adapter, max_tokens=max_tokens, stop=stop,
                              stop_when=checks, on_wait=on_wait, use_cache=use_cache)

    def _generate(self, conversations, *, adapter, max_tokens, stop, stop_when, on_wait, on_token=None,
                  use_cache=True):
        from lab import reply_cache
        from lab.decoder import Request

        prompts = [self.format_prompt(m) for m in conversations]
        # Tokenized as llama-cpp-python's create_completion would: special tokens parsed, and
        # a BOS token where the model asks for one.
        tokens = [self._llm.tokenize(p.encode("utf-8"), special=True) for p in prompts]
        requests = [Request(t, max_tokens, tuple(stop), check) for t, check in zip(tokens, stop_when)]
        decoder = self._decoder_ready()
        for request in requests:
            decoder.check(request)  # a prompt too long fails alone, before it joins anyone's round
        group = self._adapter_group(Path(adapter)) if adapter else (None, None)
        adapter_name = str(adapter) if adapter else None

        # The class's reply cache first: what was asked identically before is not asked again.
        cache = reply_cache.shared_cache() if use_cache and self.use_reply_cache and reply_cache.enabled() else None
        keys = self._cache_keys(requests, group[1]) if cache is not None else [None] * len(requests)
        completions: list[Completion | None] = [None] * len(requests)
        for i, key in enumerate(keys):
            started = time.perf_counter()
            hit = cache.get(key) if key is not None else None
            if hit is not None:
                completions[i] = Completion(hit.text.strip(), prompts[i], hit.prompt_tokens, hit.completion_tokens,
                                            (time.perf_counter() - started) * 1000, adapter_name, cached=True,
                                            generated_ms=hit.seconds * 1000)
                if on_token is not None:
                    on_token(hit.text)
        missing = [i for i, c in enumerate(completions) if c is None]
        # Identical requests already being generated for someone else (thirty students starting
        # the same wipe test together) are waited for, not generated again.
        mine, following = self._claim([keys[i] for i in missing])
        mine = [missing[j] for j in mine]
        following = [(missing[j], flight) for j, flight in following]
        if on_token is not None and len(requests) == 1:
            requests[0].on_text = on_token
        try:
            if mine:
                started = time.perf_counter()
                ticket = self.scheduler.submit(group, [requests[i] for i in mine])
                replies = ticket.wait(on_text=(lambda i, piece: on_token(piece)) if on_token else None,
                                      on_wait=on_wait)
                # A question's latency is what its asker waited, queue included; a batch's is each
                # reply's share of that wait.
                share_ms = (time.perf_counter() - started) * 1000 / len(mine)
                for i, reply in zip(mine, replies):
                    completions[i] = Completion(text=reply.text.strip(), prompt=prompts[i],
                                                prompt_tokens=reply.prompt_tokens,
                                                completion_tokens=reply.completion_tokens,
                                                latency_ms=share_ms, adapter=adapter_name,
                                                generated_ms=reply.seconds * 1000)
                    if keys[i] is not None and cache is not None:
                        cached = reply_cache.CachedReply(reply.text, reply.prompt_tokens, reply.completion_tokens,
                                                         reply.seconds)
                        cache.put(keys[i], cached)
                        self._land(keys[i], cached)
        finally:
            self._abandon([keys[i] for i in mine if keys[i] is not None])
        for i, flight in following:
            started = time.perf_counter()
            reply = flight.wait()
            if reply is None:  # its owner gave up (a page rerun): ask for it ourselves
                completions[i] = self._generate([conversations[i]], adapter=adapter, max_tokens=max_tokens,
                                                stop=stop, stop_when=[stop_when[i]], on_wait=on_wait,
                                                on_token=on_token, use_cache=use_cache)[0]
                continue
            completions[i] = Completion(reply.text.strip(), prompts[i], reply.prompt_tokens, reply.completion_tokens,
                                        (time.perf_counter() - started) * 1000, adapter_name, cached=True,
                                        generated_ms=reply.seconds * 1000)
            if on_token is not None:
                on_token(reply.text)
        return completions

    def _cache_keys(self, requests, adapter_path: Path | None) -> list[str | None]:
        """Each request's reply-cache key (None: its early stop cannot be described)."""
        from lab import reply_cache

        adapter_hash = reply_cache.file_hash(adapter_path) if adapter_path is not None else None
        keys = []
        for request in requests:
            described = reply_cache.stop_key(request.stop_when)
            keys.append(None if described is None else reply_cache.reply_key(
                model_hash=self.model_hash(), adapter_hash=adapter_hash, tokens=request.tokens,
                max_tokens=request.max_tokens, stop=request.stop, stop_description=described))
        return keys

    def in_reply_cache(self, conversations: Sequence[Sequence[dict]], *, max_tokens: int = DEFAULT_MAX_TOKENS,
                       stop: Sequence[str] = DEFAULT_STOP) -> list[bool]:
        """Whether chat_many(conversations) would find each reply in the class's reply cache,
        with no adapter: what a training's estimate counts as already answered."""
        from lab import reply_cache
        from lab.decoder import Request

        if not (self.use_reply_cache and reply_cache.enabled()):
            return [False] * len(conversations)
        cache = reply_cache.shared_cache()
        requests = [Request(self._llm.tokenize(self.format_prompt(m).encode("utf-8"), special=True), max_tokens,
                            tuple(stop), None) for m in conversations]
        return [key is not None and cache.get(key) is not None for key in self._cache_keys(requests, None)]

    # ---- requests in flight: the same work, generated once -------------------------------

    def _claim(self, keys: list[str | None]):
        """Split request positions into those this call generates and those (position,
        flight) someone else is generating right now."""
        mine, following = [], []
        with self._flights_lock:
            for j, key in enumerate(keys):
                if key is not None and key in self._flights:
                    following.append((j, self._flights[key]))
                else:
                    if key is not None:
                        self._flights[key] = _Flight()
                    mine.append(j)
        return mine, following

    def _land(self, key: str, reply) -> None:
        with self._flights_lock:
            flight = self._flights.pop(key, None)
        if flight is not None:
            flight.land(reply)

    def _abandon(self, keys: list[str]) -> None:
        """Release whatever this call claimed and did not land (an error, an interrupted page)."""
        for key in keys:
            self._land(key, None)

    def _serve_round(self, group, requests, *, admit=None, on_reply=None):
        """One round for the scheduler, in its worker thread, with the engine's lock held."""
        decoder = self._decoder_locked()
        decoder.set_threads(self._decoding_threads())
        key, path = group
        pointer = self._load_adapter_locked(path)[1] if path is not None else None
        if decoder.applied != key:
            if not decoder.set_adapter(pointer):
                raise LabError(f"llama.cpp could not apply adapter {path}")
            decoder.applied = key
        return decoder.serve_round(requests, admit=admit, on_reply=on_reply)

    def _decoding_threads(self) -> int:
        """All the cores, except those a training in this process is using: with torch's thread
        and two of llama.cpp's on two cores, llama.cpp's threads wait on each other at every
        step (bench/training_contention.py: asks at p50 5.96 s with 2 threads, 0.76 s with 1).
        A training gives up a core while someone asks (lab/learning.training_threads_now)."""
        full = self._llm.context_params.n_threads
        from lab.training_queue import QUEUE

        if not QUEUE.training_now:
            return full
        import torch

        return max(1, min(full, (os.cpu_count() or 1) - torch.get_num_threads()))

    @staticmethod
    def _stream_to(request, push) -> None:
        request.on_text = push  # called in the worker; the ticket hands it to the asker's thread

    def _decoder_ready(self):
        if self._decoder is None:
            with self._lock:
                return self._decoder_locked()
        return self._decoder

    def model_hash(self) -> str:
        """The model file's content hash (the reply cache's name for these weights)."""
        if self._model_hash is None:
            from lab.reply_cache import file_hash

            self._model_hash = file_hash(self.path)
        return self._model_hash

    def _adapter_group(self, path: Path) -> tuple[str, Path]:
        """The scheduler's group for an adapter file: its version key, after checking the
        file here, in the asker's thread, so a bad file is the asker's one-line error."""
        path = path.resolve()
        self._check_adapter_file(path)
        stat = path.stat()
        return f"{path}|{stat.st_size}|{stat.st_mtime_ns}", path

    def _decoder_locked(self):
        from lab.decoder import GreedyDecoder

        if self._decoder is None:
            try:
                self._decoder = GreedyDecoder(self._llm, n_threads=self._llm.context_params.n_threads)
            except RuntimeError as exc:
                raise LabError(f"llama.cpp could not make a decoding context for {self.path.name} ({exc})") from exc
        return self._decoder

    def _adds_bos(self) -> bool:
        return bool(self._llm._model.add_bos_token()) if hasattr(self._llm._model, "add_bos_token") else False

    # ---- scoring -----------------------------------------------------------------------

    def score(self, messages: Sequence[dict], target: str, *,
              adapter: str | os.PathLike | None = None) -> float:
        """Teacher-forced log-probability (natural log, summed over tokens) of `target` as
        the model's reply to `messages`. Higher is more likely; 0 is certain."""
        import numpy as np

        prompt_ids = self._llm.tokenize(self.format_prompt(messages).encode("utf-8"),
                                        add_bos=self._adds_bos(), special=True)
        target_ids = self.tokenize(target, special=False)
        if not target_ids:
            raise LabError("cannot score an empty target answer")
        with self._lock:
            self._apply_adapter(adapter)
            self._llm.reset()
            total = 0.0
            self._llm.eval(prompt_ids)
            for token in target_ids:
                # Without logits_all llama-cpp-python keeps no scores: read the last row directly.
                logits = np.ctypeslib.as_array(self._llm._ctx.get_logits_ith(-1), shape=(self._llm.n_vocab(),))
                logits = logits.astype(np.float64)
                top = logits.max()
                total += float(logits[token] - top - np.log(np.exp(logits - top).sum()))
                self._llm.eval([token])
        return total

    # ---- LoRA adapters -----------------------------------------------------------------

    def load_adapter(self, path: str | os.PathLike):
        """Load a GGUF LoRA adapter onto the base model (cached; the base is not reloaded)."""
        with self._lock:
            return self._load_adapter_locked(Path(path))

    _FIX = "retrain it with: python -m lab train --from-memory --name NAME"

    def _check_adapter_file(self, path: Path) -> None:
        if not path.is_file():
            raise LabError(f"adapter file not found: {path}; {self._FIX}", in_app=f"The adapter file is missing "
                           f"({path.name}): delete this adapter on the Learning page and train it again.")
        with open(path, "rb") as handle:
            if handle.read(4) != b"GGUF":
                raise LabError(f"corrupt adapter file (not GGUF): {path}; {self._FIX}", in_app="The adapter file "
                               "is damaged: delete this adapter on the Learning page and train it again.")

    def _load_adapter_locked(self, path: Path):
        fix = self._FIX
        path = path.resolve()
        if not path.is_file():
            self._check_adapter_file(path)
        # Keyed by file version too: retraining under the same name replaces the file.
        stat = path.stat()
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
        if key in self._adapters:
            return key, self._adapters[key]
        self._check_adapter_file(path)
        pointer = self._llama_cpp.llama_adapter_lora_init(self._llm._model.model, str(path).encode("utf-8"))
        if not pointer:
            raise LabError(f"corrupt or incompatible adapter file: {path} (llama.cpp refused it; "
                           f"it must be a LoRA for {self.info.name}); {fix}", in_app="llama.cpp refused the "
                           "adapter file: delete it on the Learning page and train it again.")
        self._adapters[key] = pointer
        return key, pointer

    def _apply_adapter(self, adapter: str | os.PathLike | None, scale: float = 1.0) -> None:
        """Make `adapter` (or none) the one in effect. Caller holds the lock."""
        key, pointer = self._load_adapter_locked(Path(adapter)) if adapter else (None, None)
        if key == self._applied:
            return
        ctx = self._llm._ctx.ctx
        if pointer is None:
            self._llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            adapters = (self._llama_cpp.llama_adapter_lora_p_ctypes * 1)(pointer)
            scales = (ctypes.c_float * 1)(scale)
            if self._llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, scales) != 0:
                raise LabError(f"llama.cpp could not apply adapter {adapter}")
        self._applied = key
        # Cached keys and values were computed with the old weights: start clean.
        self._llm.reset()
        self._llm._ctx.kv_cache_clear()

    def close(self) -> None:
        """Free the llama.cpp model now (at interpreter exit its own finaliser can fail noisily)."""
        with self._lock:
            if self._decoder is not None:
                self._decoder.close()
                self._decoder = None
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    @property
    def applied_adapter(self) -> str | None:
        """The file of the adapter in effect now, or None."""
        return self._applied.split("|")[0] if self._applied else None


_shared: Engine | None = None
_shared_lock = threading.Lock()


def get_engine(model_path: str | os.PathLike | None = None) -> Engine:
    """The process-wide engine. Asking for a different model replaces the loaded one."""
    global _shared
    wanted = resolve_model_path(model_path)
    with _shared_lock:
        if _shared is None or _shared.path != wanted:
            if _shared is not None:
                _shared.close()
            else:
                atexit.register(_close_shared)
            _shared = Engine(wanted)
        return _shared


def shared_engine_asked_within(seconds: float) -> bool:
    """Whether the process's engine has served or queued a request in the last `seconds`."""
    engine = _shared
    return engine is not None and engine.scheduler.active_within(seconds)


def _close_shared() -> None:
    if _shared is not None:
        _shared.close()
