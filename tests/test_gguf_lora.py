import numpy as np
import pytest

from lab.errors import LabError
from lab.gguf_lora import permute_rows, write_lora_gguf


def test_permute_rows_interleaves_halves_per_head():
    rows = np.arange(8).reshape(8, 1)
    assert permute_rows(rows, 2).ravel().tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_permute_matches_llama_cpp_converter_on_a_matrix():
    # The converter's own formula, applied to a full weight, must agree with ours on lora_b @ lora_a.
    rng = np.random.default_rng(0)
    b, a = rng.normal(size=(12, 2)), rng.normal(size=(2, 5))
    assert np.allclose(permute_rows(b, 3) @ a, permute_rows(b @ a, 3))


def test_unsupported_architecture_is_named(tmp_path):
    with pytest.raises(LabError, match="gemma3.*supported: llama"):
        write_lora_gguf(tmp_path / "x.gguf", {"blk.0.attn_v.weight": (np.zeros((2, 4)), np.zeros((4, 2)))},
                        alpha=2, architecture="gemma3", n_head=1, n_head_kv=1)


def test_written_adapter_has_the_metadata_llama_cpp_reads(tmp_path):
    from gguf import GGUFReader

    a, b = np.ones((2, 4), np.float32), np.ones((6, 2), np.float32)
    path = write_lora_gguf(tmp_path / "a.gguf", {"blk.0.attn_v.weight": (a, b)}, alpha=4,
                           architecture="llama", n_head=1, n_head_kv=1)
    reader = GGUFReader(str(path))

    def field(key):
        f = reader.fields[key]
        return f.parts[f.data[0]]

    assert bytes(field("general.type")).decode() == "adapter"
    assert bytes(field("adapter.type")).decode() == "lora"
    assert bytes(field("general.architecture")).decode() == "llama"
    assert float(field("adapter.lora.alpha")[0]) == 4.0
    names = {t.name for t in reader.tensors}
    assert names == {"blk.0.attn_v.weight.lora_a", "blk.0.attn_v.weight.lora_b"}
