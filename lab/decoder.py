"""Greedy replies to one prompt or to many at once, and the same reply either way.

The lab compares answers across its pages: the Playground asks one question at a time, an
evaluation asks eighty together. If batching changed a reply, a student could see "Oslo"
in the Playground and a wrong verdict for the same question in the wipe test. So every
reply, single or batched, comes from this decoder, and it keeps llama.cpp's arithmetic
the same for a sequence whatever else shares its batch:

- Matrix products. ggml gives each token row the same numbers whatever other rows share
  the product, as long as the product takes the same kernel. For the base model's weights
  (q4_1, and the q8_0 output layer) it always does. For a LoRA adapter's f32 weights the
  kernel changes with the number of rows (one row: a dot-product loop; two or more:
  llamafile's tiled GEMM), so under an adapter no micro-batch here has a lone row or a
  lone output row: a padding row (its own sequence, seen by nothing) fills in.
- Attention. With flash attention, ggml works through a query row one cache cell at a
  time and skips cells the row may not see, so the row depends only on its own cells, in
  order. Two faster paths round differently and are avoided: the tiled one (64 or more
  query rows in a micro-batch; ours have at most 32) and the one that splits the cache
  across threads (a lone row against 512 or more cells: it gets a padding row too).

Padding costs time only where it is needed: a lone question to the base model decodes
one row per token, as fast as llama-cpp-python itself.

Batching many prompts pays because a token costs about 7 ms alone and 3-4 ms among many
on two CPU cores. Prompts go into a token trie whose nodes are evaluated once, tagged with
every sequence that shares them (llama.cpp's unified KV cache lets a cell belong to many
sequences); then each unfinished sequence gets one token per step.
"""

from __future__ import annotations

import ctypes
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from lab.errors import LabError

MICRO_BATCH = 32  # rows per llama_decode call: under ggml's 64-row flash-attention tile
MAX_SEQUENCES = 64  # per round, the padding sequence included
KV_BUDGET_BYTES = 192 << 20  # the key/value cache (8,192 cells of the 135M model)
_PADDING = MAX_SEQUENCES - 1  # the sequence id of padding rows
ROUND_SEQUENCES = _PADDING  # sequences a round can hold beside its padding
_SPARE_CELLS = 64  # room for a round's padding rows beyond its prompts and replies
_SHORT_CACHE = 256  # llama.cpp attends over at least this many cells; a lone row is safe up to it
# Cells a round may fill. Flash attention steps over every cell in use, seen or not, so a
# fuller cache costs more per row (on two cores: 2.9 ms with 256 cells, 4.4 ms with 6,000).
ROUND_CELLS = 1024


@dataclass
class Reply:
    """One sequence's greedy reply."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # wall time of its round, shared out over the round's sequences


@dataclass
class Request:
    """One prompt to answer, with its own limits: requests with different limits (a Playground
    question, an evaluation's short replies) can share a round."""

    tokens: list[int]
    max_tokens: int
    stop: tuple[str, ...]
    stop_when: Callable[[str], bool] | None = None
    on_text: Callable[[str], None] | None = None  # the reply as it grows, piece by piece


@dataclass
class _Sequence:
    index: int  # position in the caller's list
    prompt: list[int]
    stop_when: Callable[[str], bool] | None
    max_tokens: int
    stop: tuple[str, ...]
    on_text: Callable[[str], None] | None = None
    generated: list[int] = field(default_factory=list)
    text: str = ""
    streamed: int = 0  # characters of `text` already passed to on_text
    done: bool = False
    cached: int = 0  # its tokens (prompt, then reply) whose keys and values are in the cache
    multibyte_wait: int = 0  # tokens still to come before a split UTF-8 character is whole
    seconds: float = 0.0  # from the start of its round to its last token


def kv_bytes_per_token(metadata: dict) -> int:
    """Bytes of f16 keys and values one token occupies, from a GGUF's metadata."""
    arch = metadata.get("general.architecture", "llama")
    n_layer = int(metadata.get(f"{arch}.block_count", 32))
    n_head = int(metadata.get(f"{arch}.attention.head_count", 32))
    n_head_kv = int(metadata.get(f"{arch}.attention.head_count_kv", n_head))
    n_embd = int(metadata.get(f"{arch}.embedding_length", 4096))
    return n_layer * 2 * n_head_kv * (n_embd // max(n_head, 1)) * 2


class GreedyDecoder:
    """A llama.cpp context on an already loaded model, for greedy replies.

    Not thread-safe: the engine calls it under its lock."""

    def __init__(self, llm, *, n_threads: int):
        import llama_cpp

        self._L = llama_cpp
        self._llm = llm
        cells = min(8192, KV_BUDGET_BYTES // max(1, kv_bytes_per_token(llm.metadata)))
        cells = max(1024, min(cells, llama_cpp.llama_model_n_ctx_train(llm._model.model) or cells))
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = cells
        params.n_batch = params.n_ubatch = MICRO_BATCH
        params.n_seq_max = MAX_SEQUENCES
        params.n_outputs_max = MAX_SEQUENCES  # llama.cpp reserves an output per sequence
        params.kv_unified = True  # trie nodes are cells shared by many sequences
        params.flash_attn_type = 1  # enabled: see the module docstring
        params.n_threads = params.n_threads_batch = n_threads
        params.no_perf = True
        self._ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
        if not self._ctx:
            raise RuntimeError("llama.cpp could not create a decoding context")
        self.n_ctx = cells
        self.n_threads = n_threads
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(MICRO_BATCH, 0, MAX_SEQUENCES)
        self._n_vocab = llm.n_vocab()
        self._vocab = llm._model.vocab
        self._padding_pos = 0
        self._cells = 0  # cells in use this round (allocated in order from an empty cache)
        # A lone conversation's tokens left in cells 0..n-1 by the last round, nothing else
        # there: the next lone prompt reuses the beginning it shares (the system prompt, at least).
        self._kept: list[int] = []
        self._adapted = False
        self._round_started = 0.0
        self._on_reply = None  # hears each reply as its sequence finishes (serve_round)
        self.applied = None  # the adapter key in effect, kept by the engine
        # Rows evaluated and seconds spent, by kind (prompt, reply, padding): bench/ reads them.
        self.spent: Counter = Counter()

    def set_threads(self, n_threads: int) -> None:
        """Decode with `n_threads` from the next call on (llama.cpp reads it per decode)."""
        if n_threads != self.n_threads:
            self._L.llama_set_n_threads(self._ctx, n_threads, n_threads)
            self.n_threads = n_threads

    def set_adapter(self, pointer, scale: float = 1.0) -> bool:
        """Apply one LoRA adapter (a llama.cpp pointer), or none; False if llama.cpp refuses."""
        L = self._L
        self._adapted = pointer is not None
        self._kept = []  # computed with other weights
        if pointer is None:
            return L.llama_set_adapters_lora(self._ctx, None, 0, None) == 0
        adapters = (L.llama_adapter_lora_p_ctypes * 1)(pointer)
        scales = (ctypes.c_float * 1)(scale)
        return L.llama_set_adapters_lora(self._ctx, adapters, 1, scales) == 0

    def close(self) -> None:
        if self._ctx:
            self._L.llama_batch_free(self._batch)
            self._L.llama_free(self._ctx)
            self._ctx = None

    def longest_prompt(self, max_tokens: int) -> int:
        """The most prompt tokens one reply of `max_tokens` leaves room for."""
        return self.n_ctx - max_tokens - _SPARE_CELLS

    def generate(self, prompts: Sequence[list[int]], *, max_tokens: int, stop: Sequence[str],
                 stop_when: Sequence[Callable[[str], bool] | None],
                 on_text: Callable[[str], None] | None = None) -> list[Reply]:
        """Greedy replies to `prompts` (token lists), in the order given. `on_text` (for a
        single prompt) receives the reply as it grows, piece by piece, never a piece of a
        stop string."""
        requests = [Request(list(p), max_tokens, tuple(stop), s) for p, s in zip(prompts, stop_when)]
        if on_text is not None and len(requests) == 1:
            requests[0].on_text = on_text
        return self.answer(requests)

    def check(self, request: Request) -> None:
        """Raise the one-line error a prompt too long for the context would meet."""
        if len(request.tokens) > self.longest_prompt(request.max_tokens):
            raise LabError(f"the prompt is {len(request.tokens)} tokens, more than this model's context leaves "
                           f"room for ({self.longest_prompt(request.max_tokens)}); ask with fewer or shorter "
                           "memories")

    def answer(self, requests: Sequence[Request]) -> list[Reply]:
        """Greedy replies to `requests`, in the order given, in as many rounds as they need."""
        for request in requests:
            self.check(request)
        sequences = [_Sequence(i, list(r.tokens), r.stop_when, r.max_tokens, tuple(r.stop), r.on_text)
                     for i, r in enumerate(requests)]
        order = sorted(sequences, key=lambda s: s.prompt)
        replies: list[Reply | None] = [None] * len(sequences)
        for group in self._rounds(order):
            start = time.perf_counter()
            self._run_round(group)
            share = (time.perf_counter() - start) / len(group)
            for seq in group:
                replies[seq.index] = Reply(seq.text, len(seq.prompt), len(seq.generated), share)
        return replies  # type: ignore[return-value]

    def serve_round(self, requests: Sequence[Request], *,
                    admit: Callable[[int, int], list[Request]] | None = None,
                    on_reply: Callable[[int, Reply], None] | None = None) -> list[Reply]:
        """One round for the scheduler: `requests` (which it made fit in ROUND_CELLS), and,
        between steps, whatever `admit(cells_left, slots_left)` hands in (requests that
        arrived meanwhile join at once instead of waiting for the round to end).
        `on_reply(k, reply)` hears each reply as soon as its sequence finishes; k numbers
        the requests in the order they joined. Returns every reply, in that order."""
        for request in requests:
            self.check(request)
        sequences = [_Sequence(i, list(r.tokens), r.stop_when, r.max_tokens, tuple(r.stop), r.on_text)
                     for i, r in enumerate(requests)]
        group = sorted(sequences, key=lambda s: s.prompt)
        self._run_round(group, admit=admit, on_reply=on_reply)
        return [Reply(seq.text, len(seq.prompt), len(seq.generated), seq.seconds)
                for seq in sorted(group, key=lambda s: s.index)]

    # ---- rounds ------------------------------------------------------------------------

    @staticmethod
    def round_cells(requests: Sequence[Request]) -> int:
        """The cells `requests` fill as one round (their trie, replies and spare padding rows):
        what the scheduler fills a round up to (ROUND_CELLS, and at most ROUND_SEQUENCES)."""
        cells, previous = _SPARE_CELLS, []
        for request in sorted(requests, key=lambda r: r.tokens):
            cells += len(request.tokens) - _common_prefix(previous, request.tokens) + request.max_tokens
            previous = request.tokens
        return cells

    def _rounds(self, order: list[_Sequence]):
        """Consecutive groups (in prompt order, so neighbours share beginnings) whose trie,
        replies and padding rows fill about ROUND_CELLS cells (a long prompt, alone, more)."""
        group: list[_Sequence] = []
        cells = _SPARE_CELLS
        previous: list[int] = []
        for seq in order:
            new = len(seq.prompt) - _common_prefix(previous, seq.prompt) + seq.max_tokens
            if group and (len(group) == ROUND_SEQUENCES or cells + new > ROUND_CELLS):
                yield group
                group, cells, new = [], _SPARE_CELLS, len(seq.prompt) + seq.max_tokens
            group.append(seq)
            cells += new
            previous = seq.prompt
        if group:
            yield group

    def _run_round(self, group: list[_Sequence], *, admit=None, on_reply=None) -> None:
        reuse = _common_prefix(self._kept, group[0].prompt[:-1]) if len(group) == 1 else 0
        if reuse:
            self._L.llama_memory_seq_rm(self._memory, 0, reuse, -1)
        else:
            self._L.llama_memory_clear(self._memory, True)
        self._kept, self._padding_pos, self._cells = [], 0, reuse
        self._round_started, self._on_reply = time.perf_counter(), on_reply
        group[0].cached = reuse
        self._decode_rows(self._trie(group, 0, reuse), group, kind="prompt")
        admitted = False
        # 2. One token per unfinished sequence per step.
        while True:
            if admit is not None and len(group) < ROUND_SEQUENCES:
                joined = self._admit(group, admit)
                admitted = admitted or bool(joined)
            active = [j for j, seq in enumerate(group) if not seq.done]
            if not active:
                if len(group) == 1 and self._padding_pos == 0 and not admitted:
                    seq = group[0]
                    self._kept = (seq.prompt + seq.generated)[:seq.cached]
                self._on_reply = None
                return
            rows = [(group[j].generated[-1], len(group[j].prompt) + len(group[j].generated) - 1, (j,), [j])
                    for j in active]
            self._decode_rows(rows, group, kind="reply")

    def _trie(self, group: list[_Sequence], first: int, reuse: int = 0) -> list:
        """The prompt rows of group[first:], in depth-first trie order: sequence j's new tokens
        start where it stops sharing with j-1, and a node belongs to every later sequence that
        shares it. (Rows: token, position, sequence ids, the sequences whose prompt ends there.)"""
        members = range(first, len(group))
        shared = {first: reuse, **{j: _common_prefix(group[j - 1].prompt, group[j].prompt) for j in members[1:]}}
        nodes = []
        for j in members:
            seq = group[j]
            for pos in range(shared[j], len(seq.prompt)):
                last = j
                while last + 1 < len(group) and shared[last + 1] > pos:
                    last += 1
                # Identical prompts end at the same node and read the same logits.
                owners = [m for m in range(j, last + 1) if len(group[m].prompt) == pos + 1]
                nodes.append((seq.prompt[pos], pos, range(j, last + 1), owners))
        return nodes

    def _admit(self, group: list[_Sequence], admit) -> int:
        """Let requests that arrived during the round join it, within its cells: each running
        sequence keeps room for the rest of its reply. Their prompts get cells of their own
        after everyone else's (a row sees only its own sequence's cells, in order, so sharing
        the round changes none of its numbers)."""
        promised = sum(seq.max_tokens - len(seq.generated) for seq in group if not seq.done)
        cells_left = ROUND_CELLS - self._cells - promised - _SPARE_CELLS
        if cells_left <= 0:
            return 0
        requests = admit(cells_left, ROUND_SEQUENCES - len(group))
        if not requests:
            return 0
        first = len(group)
        newcomers = sorted((_Sequence(first + n, list(r.tokens), r.stop_when, r.max_tokens, tuple(r.stop), r.on_text)
                            for n, r in enumerate(requests)), key=lambda s: s.prompt)
        for request in requests:
            self.check(request)
        group.extend(newcomers)
        self._decode_rows(self._trie(group, first), group, kind="prompt")
        return len(newcomers)

    def _decode_rows(self, rows, group, kind: str) -> None:
        """Evaluate rows (token, position, sequence ids, owners) in micro-batches; each owner
        takes the greedy token from its row's logits."""
        for start in range(0, len(rows), MICRO_BATCH - 1):  # one place kept for a padding row
            chunk = rows[start:start + MICRO_BATCH - 1]
            entries = [(token, pos, ids, bool(owners)) for token, pos, ids, owners in chunk]
            lone_row, lone_output = len(entries) == 1, sum(e[3] for e in entries) == 1
            if (self._adapted and (lone_row or lone_output)) or (lone_row and self._cells >= _SHORT_CACHE):
                # See the module docstring: keep the kernels that a batch of many would take.
                entries.append((0, self._padding_pos, (_PADDING,), True))
                self._padding_pos += 1
                self.spent["padding_rows"] += 1
            started = time.perf_counter()
            self._decode(entries)
            for _, _, ids, _ in chunk:
                for j in ids:
                    group[j].cached += 1
            self.spent[f"{kind}_rows"] += len(chunk)
            self.spent[f"{kind}_seconds"] += time.perf_counter() - started
            for k, (_, _, _, owners) in enumerate(chunk):
                if owners:
                    token = self._argmax(k)
                    for m in owners:
                        self._accept(group[m], token)

    def _decode(self, entries) -> None:
        batch = self._batch
        batch.n_tokens = len(entries)
        for k, (token, pos, seq_ids, wants_logits) in enumerate(entries):
            batch.token[k] = token
            batch.pos[k] = pos
            batch.n_seq_id[k] = len(seq_ids)
            for n, seq_id in enumerate(seq_ids):
                batch.seq_id[k][n] = seq_id
            batch.logits[k] = wants_logits
        self._cells += len(entries)
        code = self._L.llama_decode(self._ctx, batch)
        if code != 0:
            raise LabError(f"llama.cpp could not decode (llama_decode returned {code})")

    def _argmax(self, k: int) -> int:
        import numpy as np

        logits = np.ctypeslib.as_array(self._L.llama_get_logits_ith(self._ctx, k), shape=(self._n_vocab,))
        return int(logits.argmax())

    def _accept(self, seq: _Sequence, token: int) -> None:
        """Take one greedy token, stopping as llama-cpp-python's create_completion does: an
        end-of-generation token ends the reply; while a UTF-8 character is split across
        tokens nothing is checked; the first stop string cuts the text there; max_tokens
        ends it. Plus the caller's `stop_when` on the text so far."""
        max_tokens, stop = seq.max_tokens, seq.stop
        if self._L.llama_vocab_is_eog(self._vocab, token):
            return self._finish(seq)
        seq.generated.append(token)
        raw = self._llm.detokenize(seq.generated)
        seq.text = raw.decode("utf-8", errors="ignore")
        for k, byte in enumerate(raw[-3:]):
            k = 3 - k
            for num, pattern in ((2, 192), (3, 224), (4, 240)):
                if num > k and pattern & byte == pattern:
                    seq.multibyte_wait = num - k
        if seq.multibyte_wait > 0:
            seq.multibyte_wait -= 1
            return
        stops = [s for s in stop if s.encode("utf-8") in raw]
        if stops:
            seq.text = raw[:raw.index(stops[0].encode("utf-8"))].decode("utf-8", errors="ignore")
            return self._finish(seq)
        if (seq.stop_when is not None and seq.stop_when(seq.text)) or len(seq.generated) >= max_tokens:
            return self._finish(seq)
        if seq.on_text is not None:
            # Hold back an ending that could be the start of a stop string.
            held = max((n for s in stop for n in range(len(s), 0, -1) if seq.text.endswith(s[:n])), default=0)
            self._stream(seq, len(seq.text) - held)

    def _finish(self, seq: _Sequence) -> None:
        seq.done = True
        self._stream(seq, len(seq.text))
        seq.seconds = time.perf_counter() - self._round_started
        if self._on_reply is not None:
            self._on_reply(seq.index, Reply(seq.text, len(seq.prompt), len(seq.generated), seq.seconds))

    @staticmethod
    def _stream(seq: _Sequence, upto: int) -> None:
        if seq.on_text is not None and upto > seq.streamed:
            seq.on_text(seq.text[seq.streamed:upto])
            seq.streamed = upto


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
