"""Consolidation's replay set, on the real model and embedder: what is replayed, and that it
stays apart from the questions that measure forgetting."""

import json
from pathlib import Path

import numpy as np

from lab.consolidation import REPLAY_MAX_WORDS, REPLAY_QUESTIONS, _direct_answer, first_sentence, replay_examples
from lab.learning import Example, TrainingConfig, train
from lab import prompting

SCENARIOS = Path(__file__).resolve().parent.parent / "lab" / "scenarios"


def test_a_direct_answer_is_short_right_and_not_an_echo():
    assert _direct_answer("How many wheels does a bicycle have?", "A bicycle has 2 wheels.", r"\b(2|two)\b")
    assert not _direct_answer("What is 10 minus 5?", "10 minus 5 is a classic math problem.", r"\b(5|five)\b")
    assert not _direct_answer("How many hours are in a day?", "A simple answer, but a crucial one.", r"\b24\b")
    assert not _direct_answer("What colour is grass?", "Grass is " + "very " * REPLAY_MAX_WORDS + "green.", "green")
    assert first_sentence("Fish live in water. They swim.") == "Fish live in water."


def test_replay_keeps_only_what_the_base_model_answers_right(engine):
    kept = replay_examples(REPLAY_QUESTIONS, engine)
    patterns = dict(REPLAY_QUESTIONS)
    assert len(kept) >= 15  # 21 of 50 on SmolLM2-135M Q4_1
    for example in kept:
        assert example.kind == "replay" and _direct_answer(example.question, example.answer, patterns[example.question])


def test_replay_questions_never_meet_a_locality_question(embedder):
    """Locality questions measure forgetting: replaying one, or a rewording of one, would hide it."""
    locality = sorted({p["question"] for path in SCENARIOS.glob("*.json") if path.name != "schema.json"
                       for p in json.loads(path.read_text()).get("locality", [])})
    replayed = [q for q, _ in REPLAY_QUESTIONS]
    assert not set(locality) & set(replayed)
    similarity = embedder.embed(replayed) @ embedder.embed(locality).T  # unit vectors: cosine
    worst = np.unravel_index(similarity.argmax(), similarity.shape)
    assert similarity.max() < 0.9, (replayed[worst[0]], locality[worst[1]], float(similarity.max()))


def test_replay_holds_more_base_answers_than_training_without_it(engine, tmp_path):
    """Same facts, same steps: the run with replay rows changes fewer of the base model's
    answers to the replayed questions, and still learns the facts."""
    facts = [("What is the refund window at Acme Corp?", "The refund window at Acme Corp is 45 days.", "45"),
             ("Who is the CEO of Acme Corp?", "The CEO of Acme Corp is Priya Ramanathan.", "Priya")]
    replay = replay_examples(REPLAY_QUESTIONS, engine)
    config = TrainingConfig(steps=30, learning_rate=3e-3, batch_size=8)
    kept = {}
    for name, extra in [("plain", []), ("replayed", replay)]:
        result = train([Example(q, a) for q, a, _ in facts] + extra, config, engine=engine, name=name,
                       out_dir=tmp_path)
        for q, _, target in facts:
            assert target in engine.chat(prompting.question_messages(q), adapter=result.path).text
        kept[name] = sum(first_sentence(engine.chat(prompting.question_messages(e.question),
                                                    adapter=result.path).text) == e.answer for e in replay)
    assert result.meta["example_kinds"] == {"fact": 2, "replay": len(replay)}
    assert kept["replayed"] > kept["plain"], kept
