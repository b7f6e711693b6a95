"""Make it permanent: an adapter merged into a standalone GGUF answers like base + adapter."""

import json

import pytest

from lab import prompting
from lab.engine import Engine
from lab.errors import LabError
from lab.merge import merge_adapter
from lab.models import resolve_model_path
from lab.session import LabSession
from lora_factory import random_adapter

QUESTIONS = ["What is the capital of Australia?", "How many legs does a spider have?", "Who wrote Hamlet?"]


def test_merged_model_answers_like_the_base_with_the_adapter(engine, tmp_path):
    adapter = random_adapter(tmp_path / "a.gguf", seed=3, scale=0.08)
    merged = merge_adapter(resolve_model_path(), adapter, tmp_path / "merged.gguf", name="merged test")
    with_adapter = [engine.chat(prompting.question_messages(q), adapter=adapter, max_tokens=16).text for q in QUESTIONS]
    base = [engine.chat(prompting.question_messages(q), max_tokens=16).text for q in QUESTIONS]
    standalone = Engine(merged)
    try:
        assert standalone.info.name == "merged test"
        alone = [standalone.chat(prompting.question_messages(q), max_tokens=16).text for q in QUESTIONS]
    finally:
        standalone.close()
    assert alone != base  # the change is in the file now...
    # ...and it is the adapter's change (F16 merge vs run-time LoRA on Q4_1: rounding may differ)
    assert sum(a == b for a, b in zip(alone, with_adapter)) >= 2, (alone, with_adapter)


def test_an_adapter_for_another_model_or_a_non_adapter_is_refused(tmp_path):
    wrong = random_adapter(tmp_path / "wrong.gguf", layers=[40])  # the 135M model has 30 layers
    with pytest.raises(LabError, match="another model"):
        merge_adapter(resolve_model_path(), wrong, tmp_path / "m.gguf")
    with pytest.raises(LabError, match="not a LoRA adapter"):
        merge_adapter(resolve_model_path(), resolve_model_path(), tmp_path / "m.gguf")
    assert not list(tmp_path.glob("*m.gguf*"))  # nothing half-written is left


def test_cli_make_permanent_prints_the_contract(tmp_path):
    from test_cli import lab

    session = LabSession.open("default")  # LAB_HOME is this test's, as for the subprocess
    random_adapter(tmp_path / "a.gguf")
    session.adapters.register("fix", tmp_path / "a.gguf", {"source": "test"})
    home = LabSession.open("default").workspace.root.parent
    data = json.loads(lab("adapters", "make-permanent", "fix", "--json", home=home).stdout)
    assert data["adapter"] == "fix" and data["model"].endswith("fix/merged.gguf") and data["size_bytes"] > 1e8
    missing = lab("adapters", "make-permanent", "nope", home=home, check=False)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
