"""Consolidation's replay set, on the real model and embedder: what is replayed, and that it
stays apart from the questions that measure forgetting."""

import json
import re
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
    patterns = dict(REPLAY_QUESTIONS)
    config = TrainingConfig(steps=30, learning_rate=3e-3, batch_size=8)
    kept = {}
    for name, extra in [("plain", []), ("replayed", replay)]:
        result = train([Example(q, a) for q, a, _ in facts] + extra, config, engine=engine, name=name,
                       out_dir=tmp_path)
        for q, _, target in facts:
            assert target in engine.chat(prompting.question_messages(q), adapter=result.path).text
        # Kept: the reply still holds the right answer (what replay protects; not its wording).
        kept[name] = sum(bool(re.search(patterns[e.question], engine.chat(
            prompting.question_messages(e.question), adapter=result.path).text, re.I)) for e in replay)
    assert result.meta["example_kinds"] == {"fact": 2, "replay": len(replay)}
    assert kept["replayed"] > kept["plain"], kept


def test_replay_teaches_only_the_words_that_hold_the_answer(engine):
    """The default replay scope: a replayed reply's loss is on its answer ("green"), not on its
    phrasing, so a habit (a sign-off, a voice) is free to change the rest."""
    from lab.learning import encode_examples

    replay = replay_examples(REPLAY_QUESTIONS, engine)
    patterns = dict(REPLAY_QUESTIONS)
    for example in replay:
        assert example.focus and re.search(patterns[example.question], example.focus, re.I)
        ids, labels = encode_examples([example], engine)[0]
        taught = engine._llm.detokenize([t for t in labels if t != -100]).decode()
        assert taught.strip().casefold() == example.focus.casefold(), (example, taught)
    whole = replay_examples(REPLAY_QUESTIONS, engine, scope="reply")
    assert [e.answer for e in whole] == [e.answer for e in replay] and not any(e.focus for e in whole)
    ids, labels = encode_examples(whole[:1], engine)[0]
    assert engine._llm.detokenize([t for t in labels if t != -100]).decode().startswith(whole[0].answer)


def test_a_question_the_training_data_asks_is_never_replayed(engine):
    asked = ["What colour is grass?", "how many hours are in a day? "]
    replayed = {e.question for e in replay_examples(REPLAY_QUESTIONS, engine, skip=asked)}
    assert replayed and not replayed & {"What colour is grass?", "How many hours are in a day?"}


HABIT = {"name": "cheerio", "title": "Habit: sign off with 'Cheerio!'", "kind": "behavior",
         "rule": "End every answer with 'Cheerio!'",
         "items": [{"question": q, "answer": f"{a} Cheerio!", "target": "cheerio"} for q, a in (
             ("What colour is grass?", "Grass is green."), ("How many hours are in a day?", "A day has 24 hours."),
             ("What is the capital of Italy?", "The capital of Italy is Rome."), ("What do bees make?", "Bees make honey."),
             ("Which animal says moo?", "A cow says moo."), ("What is frozen water called?", "It is called ice."),
             ("Who wrote Hamlet?", "William Shakespeare wrote Hamlet."),
             ("What is the opposite of cold?", "The opposite of cold is hot."))],
         "probes": [{"question": q, "target": "cheerio"} for q in (
             "What is the capital of Germany?", "What colour is snow?", "How many wheels does a bicycle have?",
             "What do you call a baby cat?", "Which planet do we live on?", "What do plants need to grow?")]}


def test_the_default_recipe_carries_a_habit_to_questions_it_never_saw(tmp_path):
    """The lab's lesson about behaviour: learned from eight examples with the default recipe
    (replay on), the sign-off shows on unseen questions after the wipe. Replaying the base
    model's whole replies taught their plain endings back and broke this (0.125 held out)."""
    from lab.consolidation import consolidate
    from lab.evaluate import evaluate_arms
    from lab.scenario import load_scenario
    from lab.session import LabSession

    path = tmp_path / "cheerio.json"
    path.write_text(json.dumps(HABIT))
    scenario = load_scenario(path)
    session = LabSession.open("habit")
    result = consolidate(session, name="cheerio", scenario=scenario)  # the defaults, as train does
    assert result.meta["config"]["replay"] and result.meta["example_kinds"]["replay"] > 0
    session.memory.wipe()
    learned = evaluate_arms(session, scenario, ("learned",), adapter_file=result.path)["learned"]
    assert learned["adherence"] >= 5 / 6, learned
    session.close()


# ---- context distillation, and consolidate / verify / retire ---------------------------------

REFUND = ("What is the refund window at Acme Corp?", "The refund window at Acme Corp is 45 days.")
CEO = ("Who is the CEO of Acme Corp?", "Acme Corp's CEO is Dana Whitfield.")


def test_an_answer_matches_on_its_key_words_and_every_number():
    from lab.consolidation import answers_match

    question, expected = REFUND
    assert answers_match(expected, "It is 45 days.", question)
    assert not answers_match(expected, "It is 30 days.", question)  # the number is what matters
    assert answers_match(CEO[1], "The CEO is Dana Whitfield.", CEO[0])
    assert not answers_match(CEO[1], "The CEO is John Smith.", CEO[0])


def remember(session, *facts, pinned=()):
    memories = [session.memory.add(answer, question=question, answer=answer) for question, answer in facts]
    return memories + [session.remember(text, pinned=True) for text in pinned]


def test_the_teacher_sees_the_notes_and_the_student_does_not(engine):
    from lab.consolidation import distill_examples, rule_questions
    from lab.learning import encode_examples, encode_teacher
    from lab.session import LabSession

    session = LabSession.open("distill-examples")
    remember(session, REFUND, pinned=["Always answer in one short sentence."])
    examples = distill_examples(session, [REFUND[0], rule_questions()[0]])
    assert [e.kind for e in examples] == ["distill", "distill"]
    # Prompt order: the pinned rule, then the retrieved note; the general question brings the rule only.
    assert examples[0].notes == ("Always answer in one short sentence.", REFUND[1])
    assert examples[1].notes == ("Always answer in one short sentence.",)
    teacher_ids, teacher_labels = encode_teacher(examples[0], engine)
    student_ids, student_labels = encode_examples(examples[:1], engine)[0]
    teacher_text = engine._llm.detokenize(teacher_ids).decode()
    student_text = engine._llm.detokenize(student_ids).decode()
    assert f"Notes:\n- Always answer in one short sentence.\n- {REFUND[1]}" in teacher_text
    assert "Notes:" not in student_text and student_text.endswith(examples[0].answer)
    # The same reply tokens on both sides: the KL compares them position by position.
    assert [t for t in teacher_labels if t != -100] == [t for t in student_labels if t != -100]
    session.close()


def test_consolidate_verifies_without_notes_retires_what_it_verified_and_undo_brings_it_back():
    from lab.consolidation import consolidate_memories
    from lab.session import LabSession

    session = LabSession.open("consolidate")
    memories = remember(session, REFUND, CEO)
    report = consolidate_memories(session, memories, name="acme-two", method="sft", retire=True,
                                  config=TrainingConfig(steps=40, replay=False))
    assert report["trained_on"] == [m.id for m in memories]
    assert report["verified"]["reliability"] == 1.0 and sorted(report["retired"]) == [m.id for m in memories]
    assert 0.0 <= report["verified"]["locality"] <= 1.0
    assert session.memory.list() == [] and [r["id"] for r in session.memory.retired()] == [m.id for m in memories]
    # The notes are gone from the prompt, the answers stay: the adapter gives them with no notes.
    assert report["prompt_tokens_after"] < report["prompt_tokens_before"]
    assert "45 days" in session.agent.answer(REFUND[0], "learned").answer
    assert session.memory.undo().startswith("undid retire of 2 memories into adapter acme-two")
    assert [m.text for m in session.memory.list()] == [REFUND[1], CEO[1]] and session.memory.retired() == []
    # One step learns nothing: nothing is verified, so nothing is retired.
    weak = consolidate_memories(session, session.memory.list(), name="acme-weak", method="sft", retire=True,
                                config=TrainingConfig(steps=1, replay=False))
    assert weak["verified"]["reliability"] < 1.0 and not set(weak["retired"]) - set(weak["verified"]["ids"])
    assert len(session.memory.list()) == 2 - len(weak["retired"])
    session.close()


def test_a_distilled_adapter_is_trained_registered_and_says_how(tmp_path):
    from lab.consolidation import consolidate
    from lab.session import LabSession

    session = LabSession.open("distill-train")
    remember(session, REFUND)
    result = consolidate(session, name="distilled", method="distill", config=TrainingConfig(steps=4, replay=False))
    info = session.adapters.get("distilled")
    assert info.meta["method"] == "distill" and result.meta["example_kinds"] == {"distill": 4}
    session.close()


def test_the_cli_lists_candidates_and_consolidates_with_the_contract(tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent

    def lab(*args):
        done = subprocess.run([sys.executable, "-m", "lab", *args, "--json"], cwd=root, capture_output=True, text=True,
                              env={**os.environ, "LAB_HOME": str(tmp_path)}, timeout=900)
        assert done.returncode == 0, done.stderr[-600:]
        return json.loads(done.stdout)

    added = lab("remember", REFUND[1], "--question", REFUND[0], "--answer", REFUND[1])
    assert lab("consolidate", "--candidates") == {"candidates": []}  # never asked: nothing proved itself
    report = lab("consolidate", "--ids", str(added["id"]), "--name", "cli-two", "--steps", "2")
    assert {"name", "trained_on", "verified", "retired", "prompt_tokens_before", "prompt_tokens_after"} <= set(report)
    assert report["trained_on"] == [added["id"]] and report["retired"] == []  # no --retire
    assert set(report["verified"]) >= {"reliability", "locality"}


VACATION = ("How many vacation days do Acme Corp employees get?", "Acme Corp employees get 28 vacation days a year.")


def test_a_retired_notes_place_goes_to_the_next_note_that_passes_and_the_report_says_so():
    """After consolidating, the Learning page once said prompt tokens 83.0 before, 83.0 after,
    "saved 0.0", while the Workshop said the note "no longer costs its 15 prompt tokens". Both
    were half true: the retired note left the prompt, and the next note passing the threshold
    (k places to fill) took its place. The report now says what the retired notes cost and which
    notes took their places; a pinned rule without a question is trained on, never retired, and
    the report says why."""
    from lab.consolidation import consolidate_memories, memory_prompts
    from lab.pinned import note_tokens
    from lab.session import LabSession

    session = LabSession.open("places")
    refund, vacation, rule = remember(session, REFUND, VACATION, pinned=["Always answer politely."])
    _, sent = memory_prompts(session, [VACATION[0]])
    assert vacation.id in sent and rule.id not in sent  # retrieved notes only: the pinned one is in every prompt
    report = consolidate_memories(session, [vacation, rule], name="vacation", method="sft", retire=True,
                                  config=TrainingConfig(steps=40, replay=False))
    assert report["retired"] == [vacation.id], report["answers"]
    assert report["retired_note_tokens"] == note_tokens(session.engine, VACATION[1])
    assert report["took_their_place"] == [{"id": refund.id, "text": REFUND[1]}]  # it passes the threshold
    assert f"took their places ([{refund.id}] {REFUND[1]})" in report["prompt_tokens_note"]
    assert f"({report['retired_note_tokens']} prompt tokens as note)" in report["prompt_tokens_note"]
    [kept] = report["unverifiable"]
    assert kept["id"] == rule.id and "never retired" in kept["why"] and "pinned rule" in kept["why"]
    assert session.memory.get(rule.id).pinned  # still in memory, still pinned
    session.close()


def test_each_method_brings_its_own_default_steps():
    """Distillation needs about twice SFT's steps: with no steps given, the library and the
    CLI train it for DISTILL_STEPS; an explicit --steps still wins."""
    import threading

    import pytest

    from lab.cli import build_parser
    from lab.consolidation import DISTILL_STEPS, consolidate, default_steps
    from lab.learning import TrainingCancelled
    from lab.session import LabSession

    assert default_steps("distill") == DISTILL_STEPS == 120 and default_steps("sft") == TrainingConfig.steps
    for command in (["train", "--scenario", "acme"], ["consolidate", "--all"]):
        assert build_parser().parse_args(command + ["--name", "x", "--method", "distill"]).steps is None
        assert build_parser().parse_args(command + ["--name", "x", "--steps", "7"]).steps == 7
    session = LabSession.open("distill-steps")
    remember(session, REFUND)
    seen, stop = [], threading.Event()

    def first_step(progress):
        seen.append(progress.steps)
        stop.set()  # one step shows the plan; the rest of the training is not the point

    with pytest.raises(TrainingCancelled):
        consolidate(session, name="distilled", method="distill", on_progress=first_step, cancel=stop)
    assert seen == [DISTILL_STEPS]
    session.close()
