"""Learning: consolidate corrections into the weights with a LoRA adapter.

The base GGUF is loaded into PyTorch by transformers (dequantized; SmolLM2 is the llama
architecture with tied embeddings) and cached as safetensors in models/cache, so later
runs start in seconds. peft trains a low-rank update of the attention and MLP
projections on the corrections, with the loss on the answer tokens only. The result is
exported as a GGUF LoRA adapter that llama.cpp applies on top of the unchanged,
quantized base (lab.gguf_lora), plus a peft copy for transformers.

    result = train(examples, config, base_path, out_dir, on_progress=print)

A run that fails or is cancelled leaves nothing behind: the adapter is written to a
temporary file, checked by llama.cpp, and only then moved into the registry.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from lab.errors import LabError
from lab.gguf_lora import HF_TO_GGUF, SUPPORTED_ARCHITECTURES, write_lora_gguf
from lab.models import MODELS_DIR, file_sha256, read_gguf_header, resolve_model_path

CACHE_DIR = MODELS_DIR / "cache"
ALL_MODULES = tuple(HF_TO_GGUF)
# Part of every shared training's key (lab/training_cache.py): bump it whenever train()
# changes what it computes from the same examples and settings, so no adapter trained by
# the old recipe is handed out as if the new one had made it.
RECIPE_VERSION = 1
# torch's threads while training. On the 2-core class server a training shares the cores
# with everyone's questions (llama.cpp): bench/training_contention.py measured asks at p50
# 0.56 s during a training with torch on 1 thread and llama.cpp on 1, 1.3 s with torch on 2,
# and several seconds with llama.cpp on 2 (threads waiting on each other). So while anyone
# asks, torch keeps one core free and llama.cpp takes it; while nobody asks, torch takes
# every core (training_threads_now, chosen again at each step). LAB_TRAINING_THREADS fixes it.
TRAINING_THREADS_ENV = "LAB_TRAINING_THREADS"
DEFAULT_TRAINING_THREADS = 1  # what training_threads() gives without the variable
REPLAY_SCOPES = ("answer", "reply")


@dataclass(frozen=True)
class Example:
    """One training pair. kind: 'fact' (a correction), 'paraphrase', 'replay' (the base
    model's own answer to an unrelated question, to limit forgetting), 'text' (a memory
    with no question: plain language-model loss on its text) or 'distill' (context
    distillation: `answer` is what the base model replied with `notes` in its prompt, and
    the adapter learns that reply's whole next-token distribution without the notes)."""

    question: str
    answer: str
    kind: str = "fact"
    notes: tuple[str, ...] = ()  # 'distill': the notes the teacher saw, in prompt order
    # 'replay' with REPLAY_SCOPE "answer": the part of `answer` that holds the knowledge
    # ("green" in "Grass is green."); the loss is taken on its tokens only.
    focus: str = ""


@dataclass
class TrainingConfig:
    # The default recipe (60 steps, replay on, SFT) is the one that measured best across the
    # bundled scenarios and three fresh fact sets (python -m bench.recipes, README): without
    # replay, 40 steps kept only 0.25-0.33 of the unrelated answers on the fresh sets.
    steps: int = 60
    rank: int = 8
    alpha: float = 16.0
    learning_rate: float = 2e-3
    batch_size: int = 8
    target_modules: tuple[str, ...] = ALL_MODULES
    # Which layers get an adapter. None: the top `top_layers`. Training only upper layers lets
    # the frozen layers below run once per example instead of every step (about 3x faster
    # here) and was enough for the bundled scenarios (bench/consolidation.py).
    layers: tuple[int, ...] | None = None
    top_layers: int = 10
    paraphrases: bool = False
    replay: bool = True  # the forgetting exercise turns it off (train --no-replay, the Learning page)
    # What a replayed reply teaches: "answer", only the tokens holding the right answer ("green"
    # in "Grass is green."), or "reply", every token of the base model's reply. Replaying the
    # whole reply also taught the base model's phrasing, which is exactly what a habit changes:
    # held-out habit adherence fell to 0.125 (bench/replay_scope.py, README). The answer alone
    # keeps the knowledge replay is there to protect and leaves the phrasing free.
    replay_scope: str = "answer"
    seed: int = 0

    def validate(self) -> "TrainingConfig":
        checks = [(1 <= self.steps <= 100_000, f"steps must be 1..100000, got {self.steps}"),
                  (1 <= self.rank <= 256, f"rank must be 1..256, got {self.rank}"),
                  (0 < self.learning_rate <= 1, f"learning rate must be in (0, 1], got {self.learning_rate}"),
                  (1 <= self.batch_size <= 256, f"batch size must be 1..256, got {self.batch_size}"),
                  (self.alpha > 0, f"alpha must be positive, got {self.alpha}"),
                  (self.top_layers >= 1, f"top layers must be at least 1, got {self.top_layers}"),
                  (self.replay_scope in REPLAY_SCOPES,
                   f"replay scope must be one of {', '.join(REPLAY_SCOPES)}, got {self.replay_scope!r}")]
        for ok, message in checks:
            if not ok:
                raise LabError(message)
        unknown = set(self.target_modules) - set(ALL_MODULES)
        if unknown or not self.target_modules:
            raise LabError(f"unknown target modules {sorted(unknown)}; choose from {', '.join(ALL_MODULES)}")
        return self


@dataclass
class Progress:
    step: int
    steps: int
    loss: float
    tokens_per_s: float
    eta_s: float


@dataclass
class TrainingResult:
    name: str
    path: Path
    seconds: float
    steps: int
    final_loss: float
    train_tokens_per_s: float
    loss_curve: list[float] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    # True when an identical training had been done before and its adapter was registered
    # instead (lab/training_cache.py): `seconds` is then this request's, not the training's.
    reused: bool = False

    @property
    def training_seconds(self) -> float:
        """What training this adapter took, whoever trained it."""
        return float(self.meta.get("seconds", self.seconds))

    def to_json(self) -> dict:
        return {"name": self.name, "path": str(self.path), "seconds": round(self.seconds, 2), "steps": self.steps,
                "final_loss": round(self.final_loss, 4), "train_tokens_per_s": round(self.train_tokens_per_s, 1),
                "reused": self.reused}


class TrainingCancelled(LabError):
    """Raised inside train() when the cancel event is set; nothing was registered."""


# ---- the base model in PyTorch -------------------------------------------------------------


def _quiet_transformers() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


ASKED_RECENTLY_S = 2.0  # the model served someone this recently: a question is likely to follow


def training_threads_now() -> int:
    """torch's threads for the next step: $LAB_TRAINING_THREADS if set; otherwise every core
    while nobody is asking the model, and one fewer while someone is (a class's questions keep
    their core; an idle server trains at full speed). The decoder takes the rest
    (Engine._decoding_threads)."""
    cores = os.cpu_count() or 1
    if os.environ.get(TRAINING_THREADS_ENV, "").strip():
        return training_threads()
    from lab.engine import shared_engine_asked_within

    return max(1, cores - 1) if shared_engine_asked_within(ASKED_RECENTLY_S) else cores


def training_threads() -> int:
    """How many threads torch trains with: $LAB_TRAINING_THREADS, else DEFAULT_TRAINING_THREADS
    (never more than the machine has)."""
    cores = os.cpu_count() or 1
    raw = os.environ.get(TRAINING_THREADS_ENV, "").strip()
    if not raw:
        return max(1, min(cores, DEFAULT_TRAINING_THREADS))
    try:
        wanted = int(raw)
    except ValueError:
        raise LabError(f"{TRAINING_THREADS_ENV} must be a whole number of threads, not {raw[:20]!r}") from None
    if wanted < 1:
        raise LabError(f"{TRAINING_THREADS_ENV} must be at least 1, not {wanted}")
    return min(cores, wanted)


def base_sha256(base_path: Path) -> str:
    """The base model file's sha256, hashed once per (path, size, mtime) and remembered."""
    base_path = Path(base_path)
    stat = base_path.stat()
    # Hashing 100 MB takes a moment; remember it per (path, size, mtime).
    key_file = CACHE_DIR / "hashes.json"
    key = f"{base_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    try:
        known = json.loads(key_file.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = file_sha256(base_path)
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(json.dumps(known, indent=1))
    return known[key]


def base_cache_dir(base_path: Path) -> Path:
    """models/cache/<first 16 hex of the base's sha256>: one dequantized copy per base file."""
    return CACHE_DIR / base_sha256(base_path)[:16]


_loaded: dict[str, tuple] = {}
_load_lock = threading.Lock()


def load_base(base_path: Path):
    """(model, tokenizer) in float32 for training; dequantized once, then read from the cache."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    base_path = Path(base_path)
    header = read_gguf_header(base_path)
    architecture = header.fields.get("general.architecture")
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise LabError(f"cannot train adapters for architecture {architecture!r} ({base_path.name}); "
                       f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}")
    cache = base_cache_dir(base_path)
    with _load_lock:
        if str(cache) not in _loaded:
            if not (cache / "model.safetensors").exists():
                tmp = Path(tempfile.mkdtemp(dir=CACHE_DIR, prefix=".dequantizing-"))
                try:
                    _dequantize_to(base_path, tmp)
                    shutil.rmtree(cache, ignore_errors=True)
                    os.replace(tmp, cache)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            tokenizer = AutoTokenizer.from_pretrained(str(cache))
            _loaded[str(cache)] = (str(cache), tokenizer)
        cache_str, tokenizer = _loaded[str(cache)]
    # A fresh model each run (peft wraps it in place); the cache makes this about a second.
    model = AutoModelForCausalLM.from_pretrained(cache_str, dtype=torch.float32)
    return model, tokenizer


def _dequantize_to(base_path: Path, folder: Path) -> None:
    """Load the GGUF with transformers (dequantizing it) and save plain safetensors + config."""
    import contextlib
    import io

    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with contextlib.redirect_stderr(io.StringIO()):  # its progress bar is not for our users
        model = AutoModelForCausalLM.from_pretrained(str(base_path.parent), gguf_file=base_path.name,
                                                     dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(base_path.parent), gguf_file=base_path.name)
    # save_pretrained refuses a model loaded from GGUF; the weights themselves are plain tensors.
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # the same tensor as the input embeddings
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


# ---- data ----------------------------------------------------------------------------------


def encode_examples(examples: Sequence[Example], engine) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per example, tokenized by llama.cpp itself so the ids are exactly
    the ones the adapter will see at inference. Labels are -100 except on the answer."""
    from lab import prompting

    end = engine.tokenize("<|im_end|>", special=True) if engine.info.has_chat_template else []
    encoded = []
    for example in examples:
        if example.kind == "text":
            ids = engine.tokenize(example.answer, special=False)
            encoded.append((ids, list(ids)))
            continue
        prompt = engine.format_prompt(prompting.question_messages(example.question))
        prompt_ids = engine.tokenize(prompt, special=True)
        answer_ids = engine.tokenize(example.answer, special=False) + end
        labels = focus_labels(example, answer_ids, engine) if example.focus else answer_ids
        encoded.append((prompt_ids + answer_ids, [-100] * len(prompt_ids) + labels))
    return encoded


def focus_labels(example: Example, answer_ids: list[int], engine) -> list[int]:
    """The answer's labels with only the tokens of `example.focus` kept (-100 elsewhere).

    The focus span starts at the whitespace before it, so the text before it tokenizes as it
    does inside the whole answer; where it does not (a merge across the boundary), the whole
    answer is kept, which is what replay did before."""
    start = example.answer.find(example.focus)
    if start < 0:
        return answer_ids
    end = start + len(example.focus)
    while start > 0 and example.answer[start - 1].isspace():
        start -= 1
    before = engine.tokenize(example.answer[:start], special=False) if start else []
    through = engine.tokenize(example.answer[:end], special=False)
    if answer_ids[:len(before)] != before or answer_ids[:len(through)] != through or len(through) <= len(before):
        return answer_ids
    return [-100] * len(before) + answer_ids[len(before):len(through)] + [-100] * (len(answer_ids) - len(through))


def encode_teacher(example: Example, engine) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of a 'distill' example as its teacher saw it: the memory arm's
    prompt, notes included, then the same reply tokens as the student's."""
    from lab import prompting

    end = engine.tokenize("<|im_end|>", special=True) if engine.info.has_chat_template else []
    prompt = engine.format_prompt(prompting.memory_messages(example.question, list(example.notes)))
    prompt_ids = engine.tokenize(prompt, special=True)
    answer_ids = engine.tokenize(example.answer, special=False) + end
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def make_batches(encoded, batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by length, so a batch pads little; batches in random order."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i][0]), rng.random()))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


# Numbers matter here: SmolLM2's GGUF pre-tokenizer splits digits one by one.
TOKENIZER_SAMPLE = ("The refund window at Acme Corp is 45 days.", "In 1987: 3.14159, 2:30 pm, bluefin42!",
                    "Tromsø has 77,000 people; x9 X9 1,240 +31 -7", "  double  spaces\tand\nnew lines ")


def tokenizer_matches_llama_cpp(tokenizer, engine) -> bool:
    """Whether the transformers tokenizer (used by the peft copy) gives llama.cpp's ids.

    Training itself always uses llama.cpp's ids (encode_examples), so the GGUF adapter is
    right either way; a mismatch is recorded in the adapter's metadata for the peft copy.
    """
    return all(tokenizer(t, add_special_tokens=False)["input_ids"] == engine.tokenize(t, special=False)
               for t in TOKENIZER_SAMPLE)


def example_record(example: Example) -> dict:
    """An example as JSON for hashing: `notes` and `focus` only where there are some, so the examples of
    every earlier recipe keep the hash (and the class's trained adapters stay reusable)."""
    record = asdict(example)
    for optional in ("notes", "focus"):
        if not record[optional]:
            del record[optional]
    return record


def data_hash(examples: Sequence[Example]) -> str:
    blob = json.dumps([example_record(e) for e in examples], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


# ---- training ------------------------------------------------------------------------------


class _FrozenPrefix:
    """Runs the layers below the lowest LoRA layer once per example and keeps their output.

    Those layers are frozen and carry no adapter, so their output never changes during
    training: computing it again every step would be wasted work. Each step then runs only
    the adapted layers, and the output projection only where the loss is taken.
    """

    def __init__(self, peft_model, first_trained_layer: int):
        self.decoder = peft_model.base_model.model.model  # LlamaModel: embed, layers, norm
        self.lm_head = peft_model.base_model.model.lm_head
        self.all_layers = self.decoder.layers
        self.first = first_trained_layer

    def hidden(self, input_ids):
        """(B, T, H): the input of the first trained layer."""
        import torch

        with torch.no_grad():
            out = self.decoder(input_ids=input_ids, output_hidden_states=True, use_cache=False)
        return out.hidden_states[self.first].detach()

    def loss(self, prefix_hidden, labels, teachers=None):
        """Mean loss per answer token (positions whose label is not -100): cross-entropy of
        the next token, or for a row with a teacher (replay), the KL divergence from the
        teacher's next-token distribution, which pulls the adapter back only where it drifts."""
        import torch

        logits = self.answer_logits(prefix_hidden, labels).float()  # (N, V), rows in order
        targets = labels[:, 1:][labels[:, 1:] != -100]
        if teachers is None or all(t is None for t in teachers):
            return torch.nn.functional.cross_entropy(logits, targets)
        counts = (labels[:, 1:] != -100).sum(dim=1).tolist()
        total, start = logits.new_zeros(()), 0
        for teacher, count in zip(teachers, counts):
            rows = logits[start:start + count]
            if teacher is None:
                total = total + torch.nn.functional.cross_entropy(rows, targets[start:start + count], reduction="sum")
            else:
                total = total + torch.nn.functional.kl_div(torch.log_softmax(rows, -1), teacher,
                                                           log_target=True, reduction="sum")
            start += count
        return total / max(1, start)

    def answer_logits(self, prefix_hidden, labels):
        """(N, V): the next-token logits at the N positions whose next label is not -100."""
        self.decoder.layers = self.all_layers[self.first:]
        try:
            out = self.decoder(inputs_embeds=prefix_hidden, use_cache=False)
        finally:
            self.decoder.layers = self.all_layers
        hidden = out.last_hidden_state[:, :-1]  # (B, T-1, H): position t predicts token t+1
        keep = labels[:, 1:] != -100
        return self.lm_head(hidden[keep])  # only where the loss is taken


def train(examples: Sequence[Example], config: TrainingConfig, *, engine, name: str, out_dir: Path,
          on_progress: Callable[[Progress], None] | None = None,
          cancel: threading.Event | None = None) -> TrainingResult:
    """Train a LoRA adapter on `examples`; write it as GGUF to a hidden temp file in `out_dir`,
    checked by llama.cpp. Returns the result; registering the file is the caller's move."""
    import torch

    config.validate()
    if not examples:
        raise LabError("the training set is empty: remember some corrections (with a question and an answer) "
                       "or pass --scenario NAME")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(training_threads_now())  # process-wide (the embedder too): given back afterwards
    try:
        return _train(examples, config, engine=engine, name=name, out_dir=Path(out_dir), on_progress=on_progress,
                      cancel=cancel)
    finally:
        torch.set_num_threads(threads_before)


def _train(examples, config, *, engine, name, out_dir, on_progress, cancel) -> TrainingResult:
    import warnings

    import torch
    from peft import LoraConfig, get_peft_model

    warnings.filterwarnings("ignore", category=FutureWarning)
    started = time.perf_counter()
    base_path = resolve_model_path(engine.path)
    model, tokenizer = load_base(base_path)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)

    n_layers = model.config.num_hidden_layers
    layers = (sorted(set(config.layers)) if config.layers is not None
              else list(range(max(0, n_layers - config.top_layers), n_layers)))
    if not layers or any(not 0 <= i < n_layers for i in layers):
        raise LabError(f"layers must be between 0 and {n_layers - 1}, got {config.layers}")
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0, bias="none",
                      target_modules=list(config.target_modules), layers_to_transform=layers,
                      task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
    warmup = max(1, config.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / config.steps))))

    runner = _FrozenPrefix(model, layers[0])
    encoded = encode_examples(examples, engine)
    tokenizer_matches = tokenizer_matches_llama_cpp(tokenizer, engine)
    # Each example alone (no padding), so its frozen prefix is exact; batches then pad the cache.
    prefix = [runner.hidden(torch.tensor([ids], device=device))[0] for ids, _ in encoded]  # each (T, H)
    # Replay rows learn the base model's whole next-token distribution, taken now, while
    # the adapter is still zero (distillation; plain cross-entropy on the base's greedy
    # words taught its phrasing to unrelated questions, README). Context-distillation rows
    # learn the distribution the base model had with the notes in its prompt: the same
    # reply tokens, read by a teacher who saw the notes.
    teachers = [None] * len(encoded)
    with torch.no_grad():
        for i, example in enumerate(examples):
            if example.kind == "replay":
                ids, labs = encoded[i]
                teachers[i] = torch.log_softmax(runner.answer_logits(
                    prefix[i][None], torch.tensor([labs], device=device)).float(), -1)
            elif example.kind == "distill":
                ids, labs = encode_teacher(example, engine)
                teachers[i] = torch.log_softmax(runner.answer_logits(
                    runner.hidden(torch.tensor([ids], device=device)), torch.tensor([labs], device=device)).float(), -1)
    batches: list[list[int]] = []
    losses: list[float] = []
    tokens_seen = 0
    train_start = time.perf_counter()
    for step in range(1, config.steps + 1):
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled("training was cancelled; the previous adapter is still the active one")
        if not batches:
            batches = make_batches(encoded, config.batch_size, rng)
        threads = training_threads_now()
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        batch = batches.pop()
        width = max(len(encoded[i][0]) for i in batch)
        hidden = torch.zeros((len(batch), width, prefix[0].shape[-1]), device=device)  # (B, T, H), right-padded
        labels = torch.full((len(batch), width), -100, dtype=torch.long, device=device)  # (B, T)
        for row, i in enumerate(batch):
            ids, labs = encoded[i]
            hidden[row, :len(ids)] = prefix[i]
            labels[row, :len(labs)] = torch.tensor(labs, device=device)
            tokens_seen += len(ids)
        # Causal attention: real tokens never see the padding after them, and padding has no labels.
        loss = runner.loss(hidden, labels, [teachers[i] for i in batch])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        elapsed = time.perf_counter() - train_start
        if on_progress is not None:
            on_progress(Progress(step=step, steps=config.steps, loss=losses[-1],
                                 tokens_per_s=tokens_seen / elapsed if elapsed > 0 else 0.0,
                                 eta_s=elapsed / step * (config.steps - step)))
    train_seconds = time.perf_counter() - train_start

    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gguf_tmp = out_dir / f".{name}.{os.getpid()}.gguf.tmp"
    peft_tmp = out_dir / f".{name}.{os.getpid()}.peft.tmp"
    try:
        export_gguf(model, gguf_tmp, alpha=config.alpha, base_path=base_path)
        engine.load_adapter(gguf_tmp)  # llama.cpp must accept it before anyone can see it
        model.save_pretrained(str(peft_tmp))
    except BaseException:
        gguf_tmp.unlink(missing_ok=True)
        shutil.rmtree(peft_tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    meta = {"base_model": str(base_path), "base_sha256": base_cache_dir(base_path).name,
            "data_sha256": data_hash(examples), "examples": len(examples),
            "example_kinds": {k: sum(e.kind == k for e in examples) for k in sorted({e.kind for e in examples})},
            "config": {**asdict(config), "target_modules": list(config.target_modules), "layers": layers},
            "loss_curve": [round(x, 5) for x in losses], "seconds": round(seconds, 2),
            "train_seconds": round(train_seconds, 2), "train_tokens": tokens_seen,
            "train_tokens_per_s": round(tokens_seen / train_seconds, 1),
            "trainable_parameters": sum(p.numel() for p in trainable), "device": device,
            "torch_threads": torch.get_num_threads(),
            "tokenizer_matches_llama_cpp": tokenizer_matches,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return TrainingResult(name=name, path=gguf_tmp, seconds=seconds, steps=config.steps, final_loss=losses[-1],
                          train_tokens_per_s=tokens_seen / train_seconds, loss_curve=losses,
                          meta={**meta, "peft_dir": str(peft_tmp)})


def export_gguf(peft_model, path: Path, *, alpha: float, base_path: Path) -> Path:
    """Write the peft model's LoRA tensors as a GGUF adapter for the base at `base_path`."""
    fields = read_gguf_header(base_path).fields
    architecture = fields.get("general.architecture")
    tensors = {}
    state = {k: v.detach().float().cpu().numpy() for k, v in peft_model.state_dict().items() if "lora_" in k}
    for key, a in state.items():
        if ".lora_A." not in key:
            continue
        b = state[key.replace(".lora_A.", ".lora_B.")]
        # base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.default.weight
        parts = key.split(".")
        layer = int(parts[parts.index("layers") + 1])
        module = parts[parts.index("lora_A") - 1]
        tensors[f"blk.{layer}.{HF_TO_GGUF[module]}.weight"] = (a, b)
    return write_lora_gguf(path, tensors, alpha=alpha, architecture=architecture,
                           n_head=fields[f"{architecture}.attention.head_count"],
                           n_head_kv=fields[f"{architecture}.attention.head_count_kv"])
