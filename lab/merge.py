"""Make it permanent: bake a LoRA adapter into a standalone GGUF model.

An adapter is a small patch llama.cpp adds at run time: W x + scale * B (A x). Merging
computes W' = W + scale * B A once and writes a new model file, so the learned change
ships without the adapter and can be opened like any other GGUF:
`python -m lab ask --model merged.gguf ...`. After this nothing about it can be wiped
or switched off: it is the new base.

The base keeps its quantized tensors byte for byte; only the tensors the adapter touches
are dequantized, patched and stored as F16 (so a merged 135M model grows from 90 to
about 140 MB). Both files are in llama.cpp's layout already (the adapter's q/k rows
were permuted when it was written), so the product B A needs no further permutation.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from lab.errors import LabError

MERGED_GROWTH = 1.6  # a merged model's size against its base's, about (140 MB from 90, above)

def merge_adapter(base_path: Path, adapter_path: Path, out_path: Path, *, name: str | None = None) -> Path:
    """Write base + adapter as one GGUF model at `out_path` (atomically) and return it."""
    import gguf

    base_path, adapter_path, out_path = Path(base_path), Path(adapter_path), Path(out_path)
    try:
        adapter = gguf.GGUFReader(str(adapter_path))
    except Exception as exc:
        raise LabError(f"cannot read the adapter {adapter_path} ({exc}); retrain it") from exc
    alpha_field = adapter.get_field("adapter.lora.alpha")
    if alpha_field is None:
        raise LabError(f"{adapter_path} is not a LoRA adapter (no adapter.lora.alpha); retrain it")
    alpha = float(alpha_field.contents())
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for tensor in adapter.tensors:
        stem, _, part = tensor.name.rpartition(".")
        pairs.setdefault(stem, {})[part] = np.asarray(tensor.data, dtype=np.float32)

    base = gguf.GGUFReader(str(base_path))
    arch = base.get_field("general.architecture").contents()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, arch=arch)
        for key, field in base.fields.items():
            if key.startswith("GGUF.") or key == "general.architecture":
                continue  # the writer writes these itself
            if key == "general.name" and name:
                writer.add_string(key, name)
                continue
            sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub_type)
        merged = 0
        for tensor in base.tensors:
            lora = pairs.get(tensor.name)
            if lora is None:
                # Untouched: the quantized bytes as they are (data.shape is the byte layout).
                writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type)
                continue
            a, b = lora.get("lora_a"), lora.get("lora_b")
            if a is None or b is None:
                raise LabError(f"the adapter is missing lora_a or lora_b for {tensor.name}; retrain it")
            weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
            weights = weights.reshape(b.shape[0], a.shape[1])  # (out, in)
            weights += (alpha / a.shape[0]) * (b @ a)
            writer.add_tensor(tensor.name, weights.astype(np.float16))
            merged += 1
        if merged != len(pairs):
            raise LabError(f"the adapter patches {len(pairs)} tensors but only {merged} exist in "
                           f"{base_path.name}: it was trained for another model")
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_path


def make_permanent(session, name: str) -> dict:
    """Merge the workspace's adapter `name` into the session's base model. The merged model
    sits beside the adapter (adapters/NAME/merged.gguf), so deleting the adapter deletes it."""
    import time

    info = session.adapters.get(name)
    if session.adapters.limits is not None:  # the biggest write a student can ask for: room first
        from lab.limits import check_disk_room

        check_disk_room(session.adapters.limits, session.workspace.root,
                        int(Path(session.engine.path).stat().st_size * MERGED_GROWTH))
    start = time.perf_counter()
    out = merge_adapter(session.engine.path, info.path, info.path.parent / "merged.gguf",
                        name=f"{session.engine.info.name} + {name}")
    return {"adapter": name, "model": str(out), "size_bytes": out.stat().st_size,
            "seconds": round(time.perf_counter() - start, 2)}
