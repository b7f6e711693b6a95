"""The frozen language model: one llama.cpp model per process, shared by every session.

llama.cpp contexts are not thread-safe and Streamlit runs each browser session on its
own thread, so every call takes the engine's lock. Decoding is greedy (deterministic):
the lab compares arms, and sampling noise would blur the comparison. Replies come from
lab/decoder.py, which gives a question the same reply whether it is asked alone (`chat`)
or among many (`chat_many`, for evaluations); scoring uses llama-cpp-python's context.

LoRA adapters are applied per call: `chat(messages, adapter=path)` switches the adapter
on the loaded model (no reload of the base); cached keys and values computed with other
weights are dropped.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from lab.errors import LabError
from lab.models import model_info, resolve_model_path

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

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / (self.latency_ms / 1000) if self.latency_ms > 0 else 0.0


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
        self._waiting = 0
        self._adapters: dict[str, object] = {}  # 'path|size|mtime' -> llama_adapter_lora pointer
        self._applied: str | None = None
        self._decoder = None  # made on the first reply
        self._template = self._chat_formatter()

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

    # ---- the lock ----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a call is running on the model now."""
        return self._lock.locked()

    @property
    def waiting(self) -> int:
        """How many calls are queued behind the one running now."""
        return self._waiting

    def _acquire(self, on_wait: Callable[[], None] | None) -> None:
        if self._lock.acquire(blocking=False):
            return
        self._waiting += 1
        try:
            if on_wait is not None:
                on_wait()  # lets a page say "waiting for the model"
            self._lock.acquire()
        finally:
            self._waiting -= 1

    # ---- generation --------------------------------------------------------------------

    def chat(self, messages: Sequence[dict], *, adapter: str | os.PathLike | None = None,
             max_tokens: int = DEFAULT_MAX_TOKENS, stop: Sequence[str] = DEFAULT_STOP,
             on_token: Callable[[str], None] | None = None,
             on_wait: Callable[[], None] | None = None,
             stop_when: Callable[[str], bool] | None = None) -> Completion:
        """Answer `messages` greedily. `on_token` receives the text as it streams; `stop_when`
        ends generation early once it returns True for the text so far (an evaluation that
        has seen the target needs no more tokens: the verdict cannot change)."""
        return self._generate([messages], adapter=adapter, max_tokens=max_tokens, stop=stop,
                              stop_when=[stop_when], on_wait=on_wait, on_token=on_token)[0]

    def chat_many(self, conversations: Sequence[Sequence[dict]], *, adapter: str | os.PathLike | None = None,
                  max_tokens: int = DEFAULT_MAX_TOKENS, stop: Sequence[str] = DEFAULT_STOP,
                  stop_when: Sequence[Callable[[str], bool] | None] | None = None,
                  on_wait: Callable[[], None] | None = None) -> list[Completion]:
        """Greedy replies to many conversations at once: exactly the replies `chat` gives one
        at a time (lab/decoder.py says why), in about half the time. Each Completion's
        latency_ms is its share of the batch's wall time."""
        checks = list(stop_when) if stop_when is not None else [None] * len(conversations)
        if len(checks) != len(conversations):
            raise ValueError(f"stop_when has {len(checks)} entries for {len(conversations)} conversations")
        return self._generate(conversations, adapter=adapter, max_tokens=max_tokens, stop=stop,
                              stop_when=checks, on_wait=on_wait)

    def _generate(self, conversations, *, adapter, max_tokens, stop, stop_when, on_wait, on_token=None):
        prompts = [self.format_prompt(m) for m in conversations]
        # Tokenized as llama-cpp-python's create_completion would: special tokens parsed, and
        # a BOS token where the model asks for one.
        tokens = [self._llm.tokenize(p.encode("utf-8"), special=True) for p in prompts]
        self._acquire(on_wait)
        try:
            decoder = self._decoder_locked()
            key, pointer = self._load_adapter_locked(Path(adapter)) if adapter else (None, None)
            if decoder.applied != key:
                if not decoder.set_adapter(pointer):
                    raise LabError(f"llama.cpp could not apply adapter {adapter}")
                decoder.applied = key
            replies = decoder.generate(tokens, max_tokens=max_tokens, stop=stop, stop_when=stop_when,
                                       on_text=on_token)
        finally:
            self._lock.release()
        return [Completion(text=r.text.strip(), prompt=p, prompt_tokens=r.prompt_tokens,
                           completion_tokens=r.completion_tokens, latency_ms=r.seconds * 1000,
                           adapter=str(adapter) if adapter else None)
                for p, r in zip(prompts, replies)]

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

    def _load_adapter_locked(self, path: Path):
        fix = "retrain it with: python -m lab train --from-memory --name NAME"
        path = path.resolve()
        if not path.is_file():
            raise LabError(f"adapter file not found: {path}; {fix}", in_app=f"The adapter file is missing "
                           f"({path.name}): delete this adapter on the Learning page and train it again.")
        # Keyed by file version too: retraining under the same name replaces the file.
        stat = path.stat()
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
        if key in self._adapters:
            return key, self._adapters[key]
        with open(path, "rb") as handle:
            if handle.read(4) != b"GGUF":
                raise LabError(f"corrupt adapter file (not GGUF): {path}; {fix}", in_app="The adapter file is "
                               "damaged: delete this adapter on the Learning page and train it again.")
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


def _close_shared() -> None:
    if _shared is not None:
        _shared.close()
