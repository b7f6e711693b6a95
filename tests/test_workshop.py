"""Workshop exercises, checked on the real model, embedder, hnswlib and SQLite.

One adapter is trained for the whole file (pirate, 20 steps, about a minute or two on
two cores): it serves both the forgetting check and the behaviour check.
"""

import json
import re

import pytest

from lab import workshop
from lab.links import LinkSettings
from lab.scenario import load_scenario
from lab.session import LabSession
from lab.workshop import CheckResult, Context, compare_prediction, run_check, save_prediction


@pytest.fixture
def session():
    session = LabSession.open("workshop")
    yield session
    session.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace with a pirate adapter, trained once and active."""
    from lab.consolidation import consolidate
    from lab.learning import TrainingConfig
    from lab.workspace import Workspace

    session = LabSession(Workspace.open("trained", root=tmp_path_factory.mktemp("lab-home")))
    consolidate(session, name="pirate", scenario=load_scenario("pirate"), config=TrainingConfig(steps=20, replay=False))
    yield session
    session.close()


def lab_state(session):
    """Everything a check must leave alone: the memories (with ids and times), snapshots, adapters."""
    return ([(m.id, m.text, m.question, m.answer, m.updated_at) for m in session.memory.list()],
            session.memory.snapshots(), session.adapters.active_name(), [a.name for a in session.adapters.list()])


def check(exercise, session, state=None, **settings):
    """Run one check and assert that it changed nothing in the lab."""
    before = lab_state(session)
    result = exercise.check(Context(session, LinkSettings(**settings), {} if state is None else state))
    assert lab_state(session) == before, "a check must only read"
    assert isinstance(result, CheckResult) and "\n" not in result.detail
    return result


# ---- pure ------------------------------------------------------------------------------------


def test_exercises_have_what_the_page_shows():
    assert len(workshop.EXERCISES) >= 5
    assert len({e.id for e in workshop.EXERCISES}) == len(workshop.EXERCISES)
    for exercise in workshop.EXERCISES:
        assert exercise.title and exercise.goal and len(exercise.steps) >= 2 and callable(exercise.check)


def test_the_readme_counts_the_exercises_the_app_has():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    [row] = [line for line in readme.splitlines() if line.startswith("| **Workshop** |")]
    count = {7: "seven", 8: "eight", 9: "nine", 10: "ten"}[len(workshop.EXERCISES)]
    assert f"| {count} guided exercises" in row, row
    assert all(e.title.split()[0].lower() in row.lower() for e in workshop.EXERCISES[-1:])  # the last one named


def test_the_refund_fact_is_acmes_first_item():
    item = load_scenario("acme").items[0]
    assert (item.question, item.answer) == (workshop.REFUND_QUESTION, workshop.REFUND_NOTE)
    assert item.matches(workshop.REFUND_NOTE)


def test_quote_keeps_a_reply_on_one_short_line():
    assert workshop.quote("Arr!\n  Rome, matey.") == '"Arr! Rome, matey."'
    assert len(workshop.quote("x" * 500, limit=20)) == 22


def test_compare_prediction_on_handmade_reports():
    before = {"base": {"reliability": 0.0}, "memory": {"reliability": 1.0}, "learned": {"reliability": 0.0}}
    after = {"base": {"reliability": 0.0}, "memory": {"reliability": 0.0}, "learned": {"reliability": 0.0}}
    right = compare_prediction({"memory": "loses", "learned": "keeps"}, before, after)
    assert right.passed and "not judged: learned" in right.detail  # learned had nothing to keep
    wrong = compare_prediction({"memory": "keeps"}, before, after)
    assert not wrong.passed and "memory: you said it keeps the improvement, it loses it" in wrong.detail
    nothing = compare_prediction({"learned": "keeps"}, before, after)
    assert not nothing.passed and "nothing to keep" in nothing.detail


def test_run_check_records_done_and_it_stays_done():
    calls = iter([True, False])
    exercise = workshop.Exercise("x", "t", "g", ("a", "b"), lambda ctx: CheckResult(next(calls), "seen"),
                                 looks_at=("state",))
    progress = {}
    run_check(exercise, None, LinkSettings(), progress)
    run_check(exercise, None, LinkSettings(), progress)
    assert progress["x"] == {"state": {}, "result": {"passed": False, "detail": "seen", "in_progress": False},
                             "judged": {"state": workshop._digest({})}, "done": True}
    assert workshop.done_count(progress) == 1


def test_a_verdict_is_withdrawn_when_what_it_judged_changes():
    exercise = workshop.Exercise("x", "t", "g", ("a", "b"), lambda ctx: CheckResult(True, "seen"),
                                 looks_at=("state",))
    progress = {}
    run_check(exercise, None, LinkSettings(), progress)
    assert workshop.changed_since(exercise, progress["x"], {}) == []
    progress["x"]["state"]["prediction"] = {"memory": "keeps"}  # a new prediction: the old verdict judged another
    assert workshop.changed_since(exercise, progress["x"], {}) == ["state"]
    assert workshop.stale_notice(["memory", "adapters"], True) == (
        "Your memory and your adapters changed since the last check, so its verdict no longer holds: press Check "
        "my work again. You finished this exercise earlier; it stays done.")
    assert workshop.changed_since(exercise, {"result": {}, "state": {}}, {}) == []  # saved before these records


def test_habit_examples_quote_one_answer_with_the_habit_and_one_without():
    questions = ["What is the capital of Spain?", "What colour is the sky?", "How many legs has a spider?"]
    replies = {"learned": ["The capital of Spain is Madrid.", "Arr, blue as the sea, matey!", "Arr, eight!"],
               "pinned": ["Madrid.", "Blue.", "Arr, eight legs!"]}
    follows = {"learned": [False, True, True], "pinned": [False, False, True]}
    text = workshop.habit_examples(questions, replies, follows)
    # The habit: the learned arm where the pinned rule missed it; and the first question, which it missed.
    assert text == ('with the habit: "What colour is the sky?" learned "Arr, blue as the sea, matey!" (pinned '
                    '"Blue."); without it: "What is the capital of Spain?" learned "The capital of Spain is Madrid."')
    everywhere = workshop.habit_examples(questions, replies, {"learned": [True] * 3, "pinned": [True, False, True]})
    assert 'without it: "What colour is the sky?" pinned "Blue."' in everywhere  # learned never missed it
    assert "no answer showed the habit" in workshop.habit_examples(questions, replies,
                                                                   {"learned": [False] * 3, "pinned": [False] * 3})


def test_a_training_estimate_comes_from_the_last_training_measured_here():
    from lab.experiments import SECONDS_PER_ADAPTER, SECONDS_PER_TRAINING_STEP
    from lab.training_cache import TrainingCache

    assert workshop.training_estimate_s(60) == SECONDS_PER_ADAPTER + 60 * SECONDS_PER_TRAINING_STEP  # nothing yet
    entry = TrainingCache().entry("k" * 64)
    entry.mkdir(parents=True)
    # A training of 60 steps that took 110 s: 100 s of steps, 10 s of setup and export.
    (entry / "meta.json").write_text(json.dumps({"config": {"steps": 60}, "seconds": 110.0, "train_seconds": 100.0}))
    assert workshop.training_estimate_s(60) == pytest.approx(110.0)
    assert workshop.training_estimate_s(120) == pytest.approx(210.0)


def test_progress_is_saved_in_the_workspace(session):
    assert workshop.load_progress(session.workspace) == {}
    workshop.save_progress(session.workspace, {"x": {"done": True}})
    assert workshop.load_progress(session.workspace) == {"x": {"done": True}}
    (session.workspace.results_dir / workshop.PROGRESS_FILE).write_text("{broken", encoding="utf-8")
    assert workshop.load_progress(session.workspace) == {}


# ---- 1. make the memory arm answer -----------------------------------------------------------


def test_memory_answer_fails_on_an_empty_memory_and_passes_after_the_correction(session):
    empty = check(workshop.MEMORY_ANSWER, session)
    assert not empty.passed and "No note was retrieved" in empty.detail and "base arm said" in empty.detail
    session.memory.add(workshop.REFUND_NOTE)
    fixed = check(workshop.MEMORY_ANSWER, session)
    assert fixed.passed, fixed.detail
    assert 'memory arm said "The refund window at Acme Corp is 45 days."' in fixed.detail


def test_memory_answer_credits_the_note_by_leaving_each_out_and_names_a_pinned_rule_as_pinned(session):
    # A student's copy of a lab with a pinned rule: the rule rides in every prompt whatever it scores.
    rule = session.remember("Always answer in one short sentence.", pinned=True)
    note = session.memory.add(workshop.REFUND_NOTE)
    steps = []
    result = run_check(workshop.MEMORY_ANSWER, session, LinkSettings(), {},
                       on_progress=lambda done, total, what: steps.append((done, total, what)))
    assert result.passed, result.detail
    assert f"[{rule.id}] \"Always answer in one short sentence.\" (pinned)" in result.detail
    assert f"[{rule.id}] \"Always answer in one short sentence.\" (score" not in result.detail  # never a score
    assert f"without [{note.id}]" in result.detail and "so that note made the difference" in result.detail
    assert result.detail.count("made the difference") == 1  # the rule is not credited
    # Progress, step by step (Why?'s own leave-one-out: every note, none, then each left out).
    assert [s[2] for s in steps] == ["answering with the memories", "answering without any memory",
                                     f"answering without memory [{rule.id}] (1 of 2)",
                                     f"answering without memory [{note.id}] (2 of 2)"]
    assert all(done < total for done, total, _ in steps)


def test_memory_answer_fails_when_the_note_is_kept_out_by_the_threshold(session):
    session.memory.add(workshop.REFUND_NOTE)
    result = check(workshop.MEMORY_ANSWER, session, threshold=0.95)
    assert not result.passed and "threshold 0.95" in result.detail


# ---- 3. poison the memory and repair it ---------------------------------------------------------


def test_poison_then_repair_passes_only_in_that_order(session):
    state = {}
    clean = check(workshop.POISON_AND_REPAIR, session, state)
    assert not clean.passed and "Stage 1 not seen yet" in clean.detail and "Paris" in clean.detail

    bad = session.memory.add(workshop.POISON_NOTE)
    poisoned = check(workshop.POISON_AND_REPAIR, session, state)
    assert not poisoned.passed and "Stage 1 of 2 done" in poisoned.detail and "Lyon" in poisoned.detail
    assert poisoned.in_progress  # a stage reached, shown as progress rather than a failure
    assert state["poisoned"]["ids"] == [bad.id]

    hidden = check(workshop.POISON_AND_REPAIR, session, state, threshold=0.95)  # hidden is not repaired
    assert not hidden.passed and "still stored" in hidden.detail

    session.memory.delete(bad.id)
    repaired = check(workshop.POISON_AND_REPAIR, session, state)
    assert repaired.passed, repaired.detail
    assert "Lyon" in repaired.detail and "Paris" in repaired.detail
    json.dumps(state)  # the page saves it in the workspace


def test_a_verdict_no_longer_holds_once_the_poison_is_stored_again(session):
    progress, settings = {}, LinkSettings()
    bad = session.memory.add(workshop.POISON_NOTE)
    assert "Stage 1 of 2 done" in run_check(workshop.POISON_AND_REPAIR, session, settings, progress).detail
    session.memory.delete(bad.id)
    assert run_check(workshop.POISON_AND_REPAIR, session, settings, progress).passed
    entry = progress[workshop.POISON_AND_REPAIR.id]
    assert workshop.changed_since(workshop.POISON_AND_REPAIR, entry, workshop.lab_snapshot(session, settings)) == []
    session.memory.add(workshop.POISON_NOTE)  # Remember the wrong note, again: "Repaired" no longer holds
    assert workshop.changed_since(workshop.POISON_AND_REPAIR, entry, workshop.lab_snapshot(session, settings)) == \
        ["memory"]
    session.memory.undo()  # the memory it judged is back, and so is the verdict
    assert workshop.changed_since(workshop.POISON_AND_REPAIR, entry, workshop.lab_snapshot(session, settings)) == []
    other = LinkSettings(k=1)
    assert workshop.changed_since(workshop.POISON_AND_REPAIR, entry, workshop.lab_snapshot(session, other)) == \
        ["settings"]


def test_only_0_pirate_examples_no_longer_holds_once_they_are_added(session):
    progress, settings = {}, LinkSettings()
    result = run_check(workshop.BEHAVIOUR, session, settings, progress)
    assert "Only 0 of the 12 pirate examples" in result.detail
    assert "(Load the pirate examples into memory, above)" in result.detail  # the button is above the verdict
    workshop.remember_pirate_examples(session)
    assert workshop.changed_since(workshop.BEHAVIOUR, progress["behaviour"],
                                  workshop.lab_snapshot(session, settings)) == ["memory"]


def test_a_repair_without_the_poison_being_seen_does_not_pass(session):
    bad = session.memory.add(workshop.POISON_NOTE)
    session.memory.delete(bad.id)  # poisoned and repaired, but never checked in between
    result = check(workshop.POISON_AND_REPAIR, session)
    assert not result.passed and "Stage 1 not seen yet" in result.detail


# ---- 5. predict the wipe test -----------------------------------------------------------------


@pytest.fixture
def tiny_scenario(tmp_path):
    """Two acme facts and one unrelated question: a wipe test in seconds."""
    data = json.loads(load_scenario("acme").path.read_text(encoding="utf-8"))
    data.update(name="tiny", items=data["items"][:2], locality=data["locality"][:1])
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_wipe_prediction_against_a_real_wipe_test(session, tiny_scenario):
    session.memory.add("Our office dog is called Biscuit.")
    mine = lab_state(session)[0]
    state = {}
    assert "No prediction yet" in check(workshop.WIPE_PREDICTION, session, state).detail
    save_prediction(state, {"memory": "loses", "learned": "keeps"})
    assert "now run the wipe test" in check(workshop.WIPE_PREDICTION, session, state).detail

    report = workshop.run_wipe_test(session, tiny_scenario, state)
    assert set(report["before"]) == {"base", "memory"}  # no adapter is active
    assert lab_state(session)[0] == mine and session.memory.snapshots() == []  # the student's memory is back

    right = check(workshop.WIPE_PREDICTION, session, state)
    assert right.passed, right.detail
    assert "memory: you said it loses the improvement, it loses it" in right.detail
    assert "learned (not in the run)" in right.detail

    save_prediction(state, {"memory": "keeps"})
    stale = check(workshop.WIPE_PREDICTION, session, state)
    assert not stale.passed and "ran before your latest prediction" in stale.detail
    state["report_at"] = state["predicted_at"] + 1  # as if run again: same outcome, wrong guess
    wrong = check(workshop.WIPE_PREDICTION, session, state)
    assert not wrong.passed and "✗ memory: you said it keeps" in wrong.detail
    json.dumps(state)


def test_a_prediction_must_be_keeps_or_loses():
    from lab.errors import LabError

    with pytest.raises(LabError):
        save_prediction({}, {"memory": "maybe"})


# ---- 6. the threshold ----------------------------------------------------------------------------


def test_threshold_zero_leaks_the_note_and_a_higher_one_keeps_it_out(session):
    assert "No note about the 45-day refund window" in check(workshop.THRESHOLD, session, {"threshold": 0.5}).detail
    session.memory.add(workshop.REFUND_NOTE)
    leaky = check(workshop.THRESHOLD, session, {"threshold": 0.0})
    assert not leaky.passed and "laptop question still pulls in" in leaky.detail
    too_high = check(workshop.THRESHOLD, session, {"threshold": 0.95})
    assert not too_high.passed and "lower it" in too_high.detail
    right = check(workshop.THRESHOLD, session, {"threshold": 0.5})
    assert right.passed and "45 days" in right.detail, right.detail


# ---- 2 and 4: with a trained adapter -----------------------------------------------------------


def test_forgetting_needs_an_adapter(session):
    result = check(workshop.FORGETTING, session)
    assert not result.passed and "No adapter is active" in result.detail


def test_forgetting_names_a_question_the_learned_arm_now_gets_wrong(trained):
    steps = []
    before = lab_state(trained)
    result = run_check(workshop.FORGETTING, trained, LinkSettings(), {},
                       on_progress=lambda done, total, what: steps.append((done, total, what)))
    assert lab_state(trained) == before
    assert result.passed, result.detail
    total = len(load_scenario("acme").locality[:workshop.MAX_LOCALITY])
    assert steps[2] == (2, total, f"asking unrelated question 3 of {total} (base arm, then learned arm)")
    locality = [p.question for p in load_scenario("acme").locality]
    assert "forgot" in result.detail and any(question in result.detail for question in locality)
    assert "→ learned" in result.detail


def test_behaviour_generalises_with_the_adapter_not_with_memory(trained):
    before = check(workshop.BEHAVIOUR, trained)
    assert not before.passed and "Only 0 of the 12 pirate examples" in before.detail
    assert workshop.remember_pirate_examples(trained) == 12
    assert workshop.remember_pirate_examples(trained) == 0  # no duplicates
    unpinned = check(workshop.BEHAVIOUR, trained)
    assert not unpinned.passed and "The pirate rule is not pinned yet" in unpinned.detail
    assert workshop.pin_pirate_rule(trained).startswith("Pinned the rule:")
    assert workshop.pin_pirate_rule(trained) == "The pirate rule is already pinned."
    result = check(workshop.BEHAVIOUR, trained)
    assert result.passed, result.detail
    retrieved, retrieved_tokens, pinned, pinned_tokens, learned = map(int, re.search(
        r"examples retrieved (\d+)/10 \(\+(\d+) prompt tokens per answer\), rule pinned (\d+)/10 "
        r"\(\+(\d+) tokens\), learned (\d+)/10", result.detail).groups())
    assert learned > max(retrieved, pinned) and "adapter 'pirate'" in result.detail
    assert pinned_tokens >= trained.pinned_tokens() > 0  # the rule rides in every prompt
    # The quoted answers agree with the counts: the one "with the habit" sounds like a pirate.
    pirate = load_scenario("pirate")
    quoted = re.search(r'with the habit: "([^"]+)" learned "([^"]+)"', result.detail)
    assert quoted, result.detail
    probe = next(p for p in pirate.probes if p.question == quoted.group(1))
    assert probe.matches(quoted.group(2).rstrip("…"))
    if learned < 10:
        assert "without it:" in result.detail


# ---- 7. a fact changed --------------------------------------------------------------------------


def test_the_changed_fact_is_changing_facts_kestrel_hotel_item():
    item = next(i for i in load_scenario("changing-facts").items if i.question == workshop.CHANGED_QUESTION)
    assert item.answer == workshop.OLD_FACT and item.update.answer == workshop.NEW_FACT
    assert item.matches(workshop.OLD_FACT) and item.update.matches(workshop.NEW_FACT)
    assert re.search(workshop.OLD_VALUE, workshop.OLD_FACT) and re.search(workshop.NEW_VALUE, workshop.NEW_FACT)


def test_a_fact_changed_passes_once_the_note_is_edited_and_the_adapter_is_stale(session):
    from lab.consolidation import consolidate
    from lab.update_test import default_config

    exercise = workshop.FACT_CHANGED
    assert exercise in workshop.EXERCISES
    assert "remember" in check(exercise, session).detail
    note = workshop.remember_old_fact(session)
    assert workshop.remember_old_fact(session) == note  # once
    assert "still names the old manager" in check(exercise, session).detail
    session.memory.update(note, text=workshop.NEW_FACT)
    assert "No adapter is active" in check(exercise, session).detail
    consolidate(session, name="old-facts", scenario=load_scenario("changing-facts").before_update(),
                config=default_config())
    result = check(exercise, session)
    assert result.passed, result.detail
    assert "edited in place" in result.detail and "Amara Okafor" in result.detail and "Tomasz" in result.detail
    session.memory.add(workshop.OLD_FACT)  # two notes that disagree
    assert "disagree" in check(exercise, session).detail


# ---- 8. consolidate what proved itself ------------------------------------------------------------


def test_consolidate_passes_once_the_proven_note_is_retired_into_an_adapter_that_answers(session):
    from lab.consolidation import consolidate_memories
    from lab.learning import TrainingConfig
    from lab.staging import CandidateRule, candidates

    exercise = workshop.CONSOLIDATE
    assert exercise in workshop.EXERCISES
    assert "press Use the vacation note, above, first" in check(exercise, session).detail  # the button is above the verdict
    assert "was sent into 4 answers" in workshop.prove_vacation_note(session)  # three asks and Why?'s answer
    note = session.memory.find_text(workshop.CONSOLIDATE_NOTE)
    assert "still in memory" in check(exercise, session).detail
    usage = session.memory.usage()[note.id]
    assert usage.retrievals >= 4 and usage.tested == 1  # three asks and Why?'s own answer; one leave-one-out
    if usage.decisive:  # proven, by the rule, once it has gone unedited long enough
        assert [c.memory.id for c in candidates(session.memory, CandidateRule(min_age_days=0))] == [note.id]
    report = consolidate_memories(session, [note], name="vacation", retire=True, config=TrainingConfig(steps=40, replay=False))
    assert report["retired"] == [note.id], report["answers"]
    result = check(exercise, session)
    assert result.passed, result.detail
    assert "adapter 'vacation', with no note" in result.detail and "prompt tokens" in result.detail
