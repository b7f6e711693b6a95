"""Learning on the real model: train a LoRA, export it as GGUF, load it in llama.cpp."""

import threading

import pytest

from lab.consolidation import consolidate
from lab.errors import LabError
from lab.learning import Example, TrainingCancelled, TrainingConfig, load_base, train
from lab.scenario import load_scenario
from lab.session import LabSession

FACTS = [("What is the refund window at Acme Corp?", "The refund window at Acme Corp is 45 days.", "45"),
         ("Who is the CEO of Acme Corp?", "The CEO of Acme Corp is Priya Ramanathan.", "Priya")]
QUICK = dict(steps=30, rank=8, alpha=16, learning_rate=3e-3, batch_size=2, replay=False)


@pytest.fixture(scope="module")
def trained(engine, embedder, tmp_path_factory, request):
    """One workspace whose memory holds two corrections, consolidated into adapter 'v1'."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LAB_HOME", str(tmp_path_factory.mktemp("learning-home")))
    request.addfinalizer(mp.undo)
    session = LabSession.open("learner")
    base = {q: session.agent.answer(q, "base").answer for q, _, _ in FACTS}
    for q, a, _ in FACTS:
        session.memory.add(a, question=q, answer=a)
    result = consolidate(session, name="v1", config=TrainingConfig(**QUICK))
    return session, result, base


def test_tokenizer_matches_llama_cpp_on_numbers(engine):
    from lab.learning import TOKENIZER_SAMPLE, tokenizer_matches_llama_cpp

    _, tokenizer = load_base(engine.path)
    assert tokenizer_matches_llama_cpp(tokenizer, engine)
    assert engine.tokenize("45", special=False) == tokenizer("45", add_special_tokens=False)["input_ids"]
    assert len(engine.tokenize("1987", special=False)) == 4  # digits one by one
    assert any(any(c.isdigit() for c in text) for text in TOKENIZER_SAMPLE)


def test_a_few_steps_on_two_facts_change_the_answer_and_survive_a_wipe(trained):
    session, result, base = trained
    assert result.path.exists() and session.adapters.active_name() == "v1"
    assert result.final_loss < result.loss_curve[0] and result.train_tokens_per_s > 0
    session.memory.wipe()
    for q, _, target in FACTS:
        learned = session.agent.answer(q, "learned")
        assert target in learned.answer and learned.answer != base[q]
        assert learned.hits == [] and learned.prompt_tokens == session.agent.answer(q, "base").prompt_tokens
    session.memory.undo()


def test_training_is_seeded_and_reproducible(trained, engine, tmp_path, monkeypatch):
    _, result, _ = trained
    # The same seed gives the same run at the same thread count; without the variable the
    # count follows whether someone asked in the last 2 s, and float sums differ (1e-6) by it.
    monkeypatch.setenv("LAB_TRAINING_THREADS", "1")
    examples = [Example(q, a) for q, a, _ in FACTS]
    again = train(examples, TrainingConfig(**{**QUICK, "steps": 5}), engine=engine, name="again", out_dir=tmp_path)
    twice = train(examples, TrainingConfig(**{**QUICK, "steps": 5}), engine=engine, name="twice", out_dir=tmp_path)
    assert again.loss_curve == twice.loss_curve


def test_registry_metadata_records_how_the_adapter_was_made(trained):
    session, result, _ = trained
    meta = session.adapters.get("v1").meta
    assert meta["source"] == "memory" and len(meta["base_sha256"]) == 16 and len(meta["data_sha256"]) == 64
    assert meta["config"]["rank"] == 8 and len(meta["loss_curve"]) == QUICK["steps"]
    assert meta["trainable_parameters"] > 0 and meta["train_tokens_per_s"] > 0
    assert (result.path.parent / "peft" / "adapter_config.json").exists()


def test_gguf_adapter_in_llama_cpp_answers_like_transformers_with_peft(trained, engine):
    import torch
    from peft import PeftModel

    from lab import prompting

    session, result, _ = trained
    model, _ = load_base(engine.path)
    model = PeftModel.from_pretrained(model, str(result.path.parent / "peft")).eval()
    for q, _, _ in FACTS:
        prompt_ids = engine.tokenize(engine.format_prompt(prompting.question_messages(q)))
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=20, do_sample=False,
                                 eos_token_id=engine.tokenize("<|im_end|>")[0])
        hf_answer = engine._llm.detokenize(out[0, len(prompt_ids):].tolist()).decode("utf-8", "ignore")
        hf_answer = hf_answer.split("<|im_end|>")[0].strip()
        llama_answer = engine.chat(prompting.question_messages(q), adapter=result.path, max_tokens=20).text
        assert llama_answer == hf_answer


def test_a_cancelled_run_leaves_the_previous_adapter_active_and_no_files(trained):
    session, result, _ = trained
    before = sorted(p.name for p in session.adapters.directory.rglob("*"))
    cancel = threading.Event()

    def stop_at_step_two(progress):
        if progress.step == 2:
            cancel.set()

    with pytest.raises(TrainingCancelled):  # seed 1: v1's own settings would reuse v1 (lab/training_cache.py)
        consolidate(session, name="v2", config=TrainingConfig(**QUICK, seed=1), on_progress=stop_at_step_two,
                    cancel=cancel)
    assert session.adapters.active_name() == "v1"
    assert sorted(p.name for p in session.adapters.directory.rglob("*")) == before


def test_a_failed_export_leaves_nothing_visible(trained, monkeypatch):
    import lab.learning

    session, _, _ = trained
    before = sorted(p.name for p in session.adapters.directory.rglob("*"))

    def broken_export(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(lab.learning, "export_gguf", broken_export)
    with pytest.raises(OSError):
        consolidate(session, name="v3", config=TrainingConfig(**{**QUICK, "steps": 1}))
    assert session.adapters.active_name() == "v1"
    assert sorted(p.name for p in session.adapters.directory.rglob("*")) == before


def test_empty_training_set_is_refused(engine, embedder):
    session = LabSession.open("empty")
    with pytest.raises(LabError, match="training set is empty"):
        consolidate(session, name="x", config=TrainingConfig(steps=1))
    with pytest.raises(LabError, match="training set is empty"):
        train([], TrainingConfig(steps=1), engine=engine, name="x", out_dir=session.adapters.directory)


def test_unsupported_base_architecture_is_named(tmp_path):
    import gguf
    import numpy as np

    path = tmp_path / "gemma.gguf"
    writer = gguf.GGUFWriter(str(path), arch="gemma3")
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(LabError, match="'gemma3'.*supported: llama"):
        load_base(path)


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, "steps"), ("rank", 0, "rank"), ("learning_rate", 0, "learning rate"),
    ("target_modules", ("nope",), "unknown target modules"),
])
def test_bad_hyperparameters(field, value, message):
    with pytest.raises(LabError, match=message):
        TrainingConfig(**{field: value}).validate()


def test_scenario_examples_with_paraphrases(engine):
    from lab.consolidation import examples_from_scenario

    scenario = load_scenario("acme")
    plain = examples_from_scenario(scenario)
    more = examples_from_scenario(scenario, paraphrases=True)
    assert len(plain) == 20 and len(more) == 20 + sum(len(i.paraphrases) for i in scenario.items)
    assert {e.kind for e in more} == {"fact", "paraphrase"}
    assert all(isinstance(e, Example) for e in more)


def test_training_leaves_a_core_to_the_model_only_while_someone_asks(monkeypatch):
    import os

    import lab.engine
    from lab.learning import training_threads_now

    cores = os.cpu_count() or 1
    monkeypatch.delenv("LAB_TRAINING_THREADS", raising=False)
    monkeypatch.setattr(lab.engine, "shared_engine_asked_within", lambda seconds: False)
    assert training_threads_now() == cores
    monkeypatch.setattr(lab.engine, "shared_engine_asked_within", lambda seconds: True)
    assert training_threads_now() == max(1, cores - 1)
    monkeypatch.setenv("LAB_TRAINING_THREADS", "1")
    monkeypatch.setattr(lab.engine, "shared_engine_asked_within", lambda seconds: False)
    assert training_threads_now() == 1
