"""The recall rule (lab/recall.py): which retrieved notes reach the prompt."""

import functools
from pathlib import Path

import pytest

from lab import recall
from lab.evaluate import EVAL_MAX_TOKENS, remember_scenario
from lab.memory import Hit, Memory
from lab.scenario import load_scenario
from lab.session import LabSession

ISLAND = Path(__file__).resolve().parent.parent / "bench" / "data" / "recall" / "island.json"


def hits(*scores):
    """Hits best first as the store returns them, note i saying "note i"."""
    return [Hit(i, f"note {i}", score, Memory(i, f"note {i}", None, None, "user", "t", "t"))
            for i, score in enumerate(scores, start=1)]


def scores(chosen):
    return [h.score for h in chosen]


def test_a_weak_neighbour_is_left_out():
    # The island: the population note at 0.87, the mayor's at 0.53.
    assert scores(recall.choose(hits(0.87, 0.53), k=2, min_score=0.5)) == [0.87]


def test_a_near_tie_keeps_both_notes():
    # Founder vs founding year: the right note is sometimes the second.
    assert scores(recall.choose(hits(0.82, 0.79, 0.70), k=2, min_score=0.5)) == [0.82, 0.79]


@pytest.mark.parametrize("given, k, min_score, expected", [
    ((0.9, 0.8, 0.7), 3, 0.5, [0.9, 0.8, 0.7]),  # all within the margin: k decides
    ((0.9, 0.8, 0.7), 1, 0.5, [0.9]),
    ((0.8, 0.5), 2, 0.5, [0.8, 0.5]),  # exactly MARGIN below the best is kept
    ((0.8, 0.49), 2, 0.0, [0.8]),  # just past it is not, whatever the floor
    ((0.45, 0.40), 2, 0.5, []),  # nothing reaches the floor: no notes, the base arm's prompt
    ((), 2, 0.5, []),
])
def test_k_floor_and_margin_together(given, k, min_score, expected):
    assert scores(recall.choose(hits(*given), k=k, min_score=min_score)) == expected


def test_without_a_margin_it_is_the_old_rule():
    assert scores(recall.choose(hits(0.87, 0.53, 0.52, 0.4), k=3, min_score=0.5, margin=None)) == [0.87, 0.53, 0.52]


def test_hits_come_back_best_first_whatever_order_they_came_in():
    given = list(reversed(hits(0.9, 0.8, 0.7)))
    assert [h.id for h in recall.choose(given, k=3, min_score=0.5)] == [1, 2, 3]


def test_the_rule_never_needs_more_candidates_than_k():
    assert recall.CANDIDATES == recall.DEFAULT_K
    many = hits(0.9, 0.85, 0.8, 0.75)
    assert recall.choose(many, k=2, min_score=0.5) == recall.choose(many[:2], k=2, min_score=0.5)


@pytest.fixture
def session(engine, embedder):
    lab = LabSession.open("recall-test")
    yield lab
    lab.close()


def test_on_the_real_model_the_weak_neighbour_no_longer_answers(session, monkeypatch):
    """Little Vessholm's population, with the island's 15 notes stored (a tuning set of
    bench/recall_rules.py). The old rule also sent Vessholm's population and its mayor, and the
    model answered with the mayor; the rule now sends the right note and the population one."""
    remember_scenario(session, load_scenario(ISLAND))
    question = "How many people live on Little Vessholm?"

    with monkeypatch.context() as old:
        old.setattr(recall, "choose", functools.partial(recall.choose, margin=None))
        before = session.agent.answer(question, "memory", k=3, min_score=0.5, max_tokens=EVAL_MAX_TOKENS)
    assert [h.memory.question for h in before.hits][-1] == "Who is the mayor of Vessholm?"
    assert "260" not in before.answer and "Halvorsen-Bay" in before.answer

    after = session.agent.answer(question, "memory", k=recall.DEFAULT_K, min_score=recall.DEFAULT_MIN_SCORE,
                                 max_tokens=EVAL_MAX_TOKENS)
    assert [h.memory.question for h in after.hits] == ["What is the population of Little Vessholm?",
                                                     "What is the population of Vessholm?"]
    assert "260" in after.answer
