import os
import shutil

import pytest

from lab.errors import LabError
from lab.models import default_model_path, embedder_path, model_info, resolve_model_path, validate_gguf


def test_default_model_and_embedder_are_installed():
    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert (embedder_path() / "model.safetensors").exists()


def test_model_info_reads_the_gguf_header():
    info = model_info(resolve_model_path())
    assert info.architecture == "llama" and info.has_chat_template


def test_lab_model_env_is_used(monkeypatch, tmp_path):
    copy = tmp_path / "copy.gguf"
    os.symlink(default_model_path(), copy)
    monkeypatch.setenv("LAB_MODEL", str(copy))
    assert resolve_model_path() == copy


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "not found"),
    (lambda p: (p.mkdir(), p)[1], "not a file"),
    (lambda p: (p.write_text("hello, I am text"), p)[1], "not a GGUF"),
    (lambda p: (p.write_bytes(b""), p)[1], "not a GGUF"),
])
def test_bad_model_files_get_one_clear_line(tmp_path, make, message):
    path = make(tmp_path / "model.gguf")
    with pytest.raises(LabError, match=message) as error:
        validate_gguf(path)
    text = str(error.value)
    assert "\n" not in text and str(path) in text and "--model" in text


@pytest.mark.parametrize("keep", [100, 4096, 5_000_000])
def test_truncated_gguf_is_detected(tmp_path, keep):
    cut = tmp_path / "cut.gguf"
    with open(default_model_path(), "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(keep))
    with pytest.raises(LabError, match="truncated|damaged") as error:
        validate_gguf(cut)
    assert "\n" not in str(error.value)
