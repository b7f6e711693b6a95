"""Write a LoRA adapter as a GGUF file that llama.cpp applies on top of an unchanged base.

The tensors come in peft's layout: for a linear layer W (out, in), lora_a is (r, in) and
lora_b is (out, r), and the update is W + (alpha / r) * lora_b @ lora_a. For the llama
architecture, llama.cpp's converter permutes the rows of the q and k weights (it
interleaves the rotary halves differently from Hugging Face), so the rows of lora_b for
q and k must be permuted the same way, or the adapter rotates the wrong dimensions.

    write_lora_gguf(path, {"blk.0.attn_q.weight": (a, b), ...}, alpha=16, architecture="llama",
                    n_head=9, n_head_kv=3)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lab.errors import LabError

SUPPORTED_ARCHITECTURES = ("llama",)
# Hugging Face module name -> llama.cpp tensor name inside blk.N
HF_TO_GGUF = {
    "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
    "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down",
}


def permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row permutation, applied to the first axis of `weights`.

    Within each head the rows [x0, x1, ..., y0, y1, ...] (HF: halves) become
    [x0, y0, x1, y1, ...] (GGUF: interleaved pairs).

    >>> permute_rows(np.arange(4).reshape(4, 1), 1).ravel().tolist()
    [0, 2, 1, 3]
    """
    rows = weights.shape[0]
    return (weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def write_lora_gguf(path: str | os.PathLike, tensors: dict[str, tuple[np.ndarray, np.ndarray]], *,
                    alpha: float, architecture: str, n_head: int, n_head_kv: int,
                    name: str = "lab-adapter") -> Path:
    """Write `tensors` ({gguf base tensor name: (lora_a, lora_b)}) as a GGUF LoRA adapter.

    Rows of lora_b for attn_q / attn_k are permuted here; pass them in Hugging Face order.
    """
    import gguf

    if architecture not in SUPPORTED_ARCHITECTURES:
        raise LabError(f"cannot export a LoRA for architecture {architecture!r}; "
                       f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}")
    if not tensors:
        raise LabError("no LoRA tensors to export")
    path = Path(path)
    writer = gguf.GGUFWriter(str(path), arch=architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("general.name", name)
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    for base_name, (lora_a, lora_b) in sorted(tensors.items()):
        lora_a = np.ascontiguousarray(lora_a, dtype=np.float32)
        lora_b = np.asarray(lora_b, dtype=np.float32)
        if lora_a.ndim != 2 or lora_b.ndim != 2 or lora_a.shape[0] != lora_b.shape[1]:
            raise LabError(f"bad LoRA shapes for {base_name}: a {lora_a.shape}, b {lora_b.shape}")
        if base_name.endswith("attn_q.weight"):
            lora_b = permute_rows(lora_b, n_head)
        elif base_name.endswith("attn_k.weight"):
            lora_b = permute_rows(lora_b, n_head_kv)
        stem = base_name.removesuffix(".weight")
        writer.add_tensor(f"{stem}.weight.lora_a", lora_a)
        writer.add_tensor(f"{stem}.weight.lora_b", np.ascontiguousarray(lora_b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
