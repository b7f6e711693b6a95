"""The decoder on the real SmolLM2 GGUF: a question gets the same reply alone or in a batch,
under an adapter too, whatever was asked before it."""

import re

import pytest

from lab import prompting
from lab.decoder import MAX_SEQUENCES, kv_bytes_per_token
from lab.errors import LabError
from lora_factory import random_adapter

NOTES = ["Acme Corp was founded by Otto Lindqvist in 1987.",
         "The refund window at Acme Corp is 45 days.",
         "Acme Corp's headquarters are in Tromsø, Norway."]
QUESTIONS = ["What is the capital of France?", "What is 2 + 2?", "Who wrote Hamlet?",
             "How many legs does a spider have?", "Who founded Acme Corp?",
             "What is the refund window at Acme Corp?", "Where is Acme Corp based?"]


def conversations():
    """Plain questions, questions with one to three notes (shared beginnings), a repeat."""
    plain = [prompting.question_messages(q) for q in QUESTIONS]
    noted = [prompting.memory_messages(q, NOTES[:n]) for n in (1, 2, 3) for q in QUESTIONS[4:]]
    return plain + noted + [plain[0]]


def matcher(pattern):
    return lambda text: re.search(pattern, text, re.I) is not None


def one_at_a_time(engine, items, **options):
    checks = options.pop("stop_when", [None] * len(items))
    return [engine.chat(m, stop_when=check, **options) for m, check in zip(items, checks)]


def same(batched, single):
    assert [c.text for c in batched] == [c.text for c in single]
    assert [c.completion_tokens for c in batched] == [c.completion_tokens for c in single]
    assert [c.prompt_tokens for c in batched] == [c.prompt_tokens for c in single]


def test_batched_replies_are_the_one_at_a_time_replies(engine):
    items = conversations()
    # Some replies stop at their target and one runs long, so at the end a lone row decodes
    # against a cache of more than 512 cells: the case that needs a padding row.
    checks = [matcher("paris"), None, matcher("shakespeare"), None, matcher("otto"), matcher("45"), None] \
        + [matcher("otto|45|troms")] * 9 + [matcher("paris")]
    batched = engine.chat_many(items, max_tokens=40, stop_when=checks)
    same(batched, one_at_a_time(engine, items, max_tokens=40, stop_when=checks))
    assert all(c.latency_ms > 0 for c in batched)
    assert batched[0].text == batched[-1].text  # the repeated prompt


def test_batched_replies_match_under_an_adapter(engine, tmp_path):
    adapter = random_adapter(tmp_path / "a.gguf", seed=3, scale=0.1)
    items = conversations()[:8]
    batched = engine.chat_many(items, adapter=adapter, max_tokens=16)
    same(batched, one_at_a_time(engine, items, adapter=adapter, max_tokens=16))
    # and back to the base model in the same batch context
    assert [c.text for c in engine.chat_many(items, max_tokens=16)] == \
        [c.text for c in one_at_a_time(engine, items, max_tokens=16)]


def test_more_prompts_than_one_round_holds(engine):
    items = [prompting.question_messages(f"What is {a} + {b}?") for a in range(9) for b in range(8)]
    assert len(items) > MAX_SEQUENCES
    same(engine.chat_many(items, max_tokens=6), one_at_a_time(engine, items, max_tokens=6))


def test_long_prompts_match_and_too_long_ones_get_one_line(engine):
    notes = [f"Note {i}: Acme Corp has an office on floor {i} of its building in Tromsø." for i in range(14)]
    long = prompting.memory_messages("Which floor is the Acme office on?", notes)
    assert engine.count_tokens(engine.format_prompt(long)) > 256  # past the cache size where ggml changes path
    items = [long, prompting.question_messages("What is 2 + 2?")]
    same(engine.chat_many(items, max_tokens=8), one_at_a_time(engine, items, max_tokens=8))
    huge = prompting.memory_messages("Which floor?", notes * 40)
    with pytest.raises(LabError, match="tokens, more than") as error:
        engine.chat(huge)
    assert "\n" not in str(error.value)
    assert engine.chat(items[1], max_tokens=8).text == engine.chat_many(items, max_tokens=8)[1].text


def test_a_reply_does_not_depend_on_what_was_asked_before(engine):
    question = prompting.memory_messages("Who founded Acme Corp?", NOTES)
    first = engine.chat(question).text
    engine.chat(prompting.question_messages("Tell me a long story about a dragon."), max_tokens=48)
    engine.chat(prompting.memory_messages("Where is Acme Corp based?", NOTES[::-1]))
    assert engine.chat(question).text == first


def test_streamed_pieces_hold_back_stop_strings(engine):
    pieces = []
    result = engine.chat(prompting.question_messages("List three fruits, one per line."), on_token=pieces.append)
    assert "".join(pieces).strip() == result.text
    assert not any("\n\n" in piece or "<|im_end|>" in piece for piece in pieces)


def test_kv_bytes_per_token_reads_the_gguf_metadata(engine):
    # SmolLM2-135M: 30 layers, 3 key/value heads of 64 dimensions, f16 keys and values.
    assert kv_bytes_per_token(engine._llm.metadata) == 30 * 2 * 3 * 64 * 2


@pytest.mark.parametrize("text", ["Tromsø", "naïve café"])
def test_replies_with_split_characters_match(engine, text):
    items = [prompting.question_messages(f"Repeat exactly: {text}")] * 2 + \
        [prompting.question_messages(f"Say the word {text} twice.")]
    same(engine.chat_many(items, max_tokens=12), one_at_a_time(engine, items, max_tokens=12))
