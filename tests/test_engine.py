"""The engine on the real SmolLM2 GGUF: determinism, streaming, scoring, LoRA switching, threads."""

import threading

import pytest

from lab import prompting
from lab.engine import Engine
from lab.errors import LabError
from lora_factory import random_adapter

FRANCE = prompting.question_messages("What is the capital of France?")
REFUND = prompting.question_messages("What is the refund window at Acme Corp?")


def test_greedy_chat_is_deterministic_and_reports_its_cost(engine):
    first, second = engine.chat(FRANCE), engine.chat(FRANCE)
    assert first.text and first.text == second.text
    assert first.prompt_tokens == len(engine._llm.tokenize(first.prompt.encode(), add_bos=False, special=True))
    assert 0 < first.completion_tokens <= 48 and first.latency_ms > 0
    assert "<|im_start|>user\nWhat is the capital of France?" in first.prompt


def test_streamed_pieces_make_up_the_answer(engine):
    pieces = []
    result = engine.chat(REFUND, on_token=pieces.append)
    assert len(pieces) > 1 and "".join(pieces).strip() == result.text


def test_max_tokens_and_stop_sequences(engine):
    assert engine.chat(REFUND, max_tokens=3).completion_tokens <= 3
    full = engine.chat(FRANCE).text
    word = full.split()[1]
    assert word not in engine.chat(FRANCE, stop=[word]).text


def test_score_prefers_the_models_own_answer(engine):
    own = engine.chat(FRANCE).text
    assert engine.score(FRANCE, own) > engine.score(FRANCE, "Bananas grow on the moon in winter.")
    assert engine.score(FRANCE, own) <= 0
    with pytest.raises(LabError, match="empty"):
        engine.score(FRANCE, "")


def test_score_rises_when_the_fact_is_in_the_prompt(engine):
    fact = "The refund window at Acme Corp is 45 days."
    with_note = prompting.memory_messages("What is the refund window at Acme Corp?", [fact])
    assert engine.score(with_note, fact) > engine.score(REFUND, fact) + 5


@pytest.fixture(scope="module")
def two_adapters(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adapters")
    return (random_adapter(folder / "a.gguf", seed=1, scale=0.1),
            random_adapter(folder / "b.gguf", seed=2, scale=0.1))


def test_adapters_switch_without_reloading_and_clear_back_to_base(engine, two_adapters):
    a, b = two_adapters
    model_before = engine._llm._model.model
    base = engine.chat(REFUND).text
    with_a = engine.chat(REFUND, adapter=a).text
    with_b = engine.chat(REFUND, adapter=b).text
    assert with_a != base and with_b != with_a
    assert engine.chat(REFUND, adapter=a).text == with_a  # switching back gives the same answer
    assert engine.chat(REFUND).text == base  # and clearing restores the base exactly
    assert engine._llm._model.model == model_before  # the base model was never reloaded
    assert engine.score(REFUND, base) != engine.score(REFUND, base, adapter=a)


def test_bad_adapter_files_give_one_line_and_leave_the_engine_working(engine, tmp_path):
    missing = tmp_path / "missing.gguf"
    not_gguf = tmp_path / "text.gguf"
    not_gguf.write_text("not an adapter")
    header_only = tmp_path / "cut.gguf"
    header_only.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 16)
    for path, message in [(missing, "not found"), (not_gguf, "not GGUF"), (header_only, "corrupt")]:
        with pytest.raises(LabError, match=message) as error:
            engine.chat(FRANCE, adapter=path)
        assert "\n" not in str(error.value) and "train" in str(error.value)
    assert engine.chat(FRANCE).text == engine.chat(FRANCE).text


def test_concurrent_chats_from_many_threads_match_serial_answers(engine, two_adapters):
    questions = [prompting.question_messages(q) for q in
                 ("What is the capital of France?", "What is 2 + 2?", "Who wrote Hamlet?")]
    jobs = [(m, adapter) for m in questions for adapter in (None, two_adapters[0])]
    expected = [engine.chat(m, adapter=adapter).text for m, adapter in jobs]
    results = [None] * (len(jobs) * 2)
    errors = []

    def run(slot):
        try:
            m, adapter = jobs[slot % len(jobs)]
            results[slot] = engine.chat(m, adapter=adapter, max_tokens=48).text
        except Exception as exc:  # collected, so a failure in a thread fails the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == expected * 2


def test_a_queued_call_is_told_it_is_waiting(engine):
    waited, places = threading.Event(), []
    engine._lock.acquire()  # the model is busy (scoring, say)
    try:
        worker = threading.Thread(target=lambda: engine.chat(FRANCE, max_tokens=2, use_cache=False,
                                                             on_wait=lambda place: (places.append(place), waited.set())))
        worker.start()
        assert waited.wait(10) and engine.waiting == 1
    finally:
        engine._lock.release()
    worker.join()
    assert engine.waiting == 0
    assert "Waiting for the shared model" in places[0].describe() and "Yours starts" in places[0].describe()


def test_base_model_without_chat_template_gets_a_plain_prompt(engine):
    saved = engine._template
    engine._template = None
    try:
        prompt = engine.format_prompt(FRANCE)
    finally:
        engine._template = saved
    assert prompt.endswith("Question: What is the capital of France?\nAnswer:")


def test_any_gguf_by_path(tmp_path):
    from lab.models import default_model_path
    import os

    copy = tmp_path / "other-name.gguf"
    os.symlink(default_model_path(), copy)
    other = Engine(copy)
    assert other.path == copy and other.chat(FRANCE, max_tokens=4).text


def test_while_a_training_runs_decoding_leaves_it_its_cores_and_answers_the_same(engine, monkeypatch):
    from lab.training_queue import QUEUE, Ticket

    full = engine._decoding_threads()
    monkeypatch.setenv("LAB_TRAINING_THREADS", "1")
    monkeypatch.setattr(QUEUE, "_running", Ticket("someone's acme", 40))
    during = engine._decoding_threads()
    assert during == max(1, min(full, (__import__("os").cpu_count() or 1) - 1))
    with_fewer = engine.chat(REFUND, use_cache=False).text
    assert engine._decoder.n_threads == during
    monkeypatch.setattr(QUEUE, "_running", None)
    assert engine.chat(REFUND, use_cache=False).text == with_fewer  # threads change the speed, not the reply
    assert engine._decoder.n_threads == full
