"""Makes small random GGUF LoRA adapters for the base model, for engine and agent tests.

They are real adapter files (written by lab.gguf_lora, loaded by llama.cpp); only their
weights are random, since what is tested is loading and switching, not what was learned.
"""

from pathlib import Path

import numpy as np

from lab.gguf_lora import write_lora_gguf
from lab.models import read_gguf_header, resolve_model_path


def random_adapter(path: Path, *, seed: int = 0, rank: int = 4, scale: float = 0.05, layers=range(0, 30, 3)) -> Path:
    fields = read_gguf_header(resolve_model_path()).fields
    hidden = fields["llama.embedding_length"]
    n_head, n_head_kv = fields["llama.attention.head_count"], fields["llama.attention.head_count_kv"]
    kv = hidden // n_head * n_head_kv
    ffn = fields["llama.feed_forward_length"]
    shapes = {"attn_q": (hidden, hidden), "attn_k": (kv, hidden), "attn_v": (kv, hidden),
              "attn_output": (hidden, hidden), "ffn_gate": (ffn, hidden), "ffn_up": (ffn, hidden),
              "ffn_down": (hidden, ffn)}
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in layers:
        for name, (out_dim, in_dim) in shapes.items():
            a = rng.normal(0, scale, size=(rank, in_dim)).astype(np.float32)
            b = rng.normal(0, scale, size=(out_dim, rank)).astype(np.float32)
            tensors[f"blk.{layer}.{name}.weight"] = (a, b)
    return write_lora_gguf(path, tensors, alpha=rank, architecture="llama", n_head=n_head, n_head_kv=n_head_kv)
