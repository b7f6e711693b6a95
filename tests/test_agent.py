"""The four arms on the real model, embedder and memory store."""

import threading

import pytest

from lab.errors import LabError
from lab.session import LabSession
from lora_factory import random_adapter

REFUND_Q = "What is the refund window at Acme Corp?"
REFUND_FACT = "The refund window at Acme Corp is 45 days."


@pytest.fixture
def session(engine, embedder):
    lab = LabSession.open("agent-test")
    yield lab
    lab.close()


def test_memory_fixes_the_answer_and_a_wipe_takes_the_fix_away(session):
    agent = session.agent
    base = agent.answer(REFUND_Q, "base")
    assert "45" not in base.answer and base.hits == []
    session.memory.add(REFUND_FACT)

    fixed = agent.answer(REFUND_Q, "memory")
    assert "45 days" in fixed.answer
    assert [h.text for h in fixed.hits] == [REFUND_FACT] and fixed.hits[0].score > 0.6
    assert REFUND_FACT in fixed.messages[-1]["content"] and REFUND_FACT in fixed.prompt
    assert fixed.prompt_tokens > base.prompt_tokens and fixed.retrieval_ms > 0

    session.memory.wipe()
    after = agent.answer(REFUND_Q, "memory")
    assert after.hits == [] and after.answer == base.answer  # exactly the base arm again


def test_unrelated_memories_stay_out_of_the_prompt(session):
    session.memory.add(REFUND_FACT)
    session.memory.add("Our office dog is called Biscuit.")
    base = session.agent.answer("What is the capital of Australia?", "base")
    with_memory = session.agent.answer("What is the capital of Australia?", "memory")
    assert with_memory.hits == [] and with_memory.answer == base.answer


def test_k_and_threshold_control_what_is_retrieved(session):
    for i, city in enumerate(["Oslo", "Lima", "Quito", "Hanoi"]):
        session.memory.add(f"Acme Corp office number {i} is in {city}.")
    many = session.agent.answer("Where are the Acme Corp offices?", "memory", k=4, min_score=0.0)
    few = session.agent.answer("Where are the Acme Corp offices?", "memory", k=2, min_score=0.0)
    none = session.agent.answer("Where are the Acme Corp offices?", "memory", k=4, min_score=0.99)
    assert len(many.hits) == 4 and len(few.hits) == 2 and none.hits == []
    assert [h.score for h in many.hits] == sorted((h.score for h in many.hits), reverse=True)


def test_learned_arm_without_adapter_says_how_to_train(session):
    for arm in ("learned", "both"):
        with pytest.raises(LabError, match="python -m lab train") as error:
            session.agent.answer(REFUND_Q, arm)
        assert "\n" not in str(error.value)


def test_learned_and_both_arms_use_the_active_adapter(session, tmp_path):
    base = session.agent.answer(REFUND_Q, "base")
    session.adapters.register("random", random_adapter(tmp_path / "r.gguf", seed=3, scale=0.1), {})
    session.adapters.activate("random")
    learned = session.agent.answer(REFUND_Q, "learned")
    assert learned.adapter and learned.answer != base.answer and learned.hits == []
    session.memory.add(REFUND_FACT)
    both = session.agent.answer(REFUND_Q, "both")
    assert both.adapter == learned.adapter and [h.text for h in both.hits] == [REFUND_FACT]
    session.adapters.deactivate()
    assert session.agent.answer(REFUND_Q, "base").answer == base.answer


@pytest.mark.parametrize("question, message", [
    ("", "empty"), ("   ", "empty"), ("x" * 100_000, "too long"), ("what\x00is", "control characters"),
])
def test_bad_questions_are_refused(session, question, message):
    with pytest.raises(LabError, match=message):
        session.agent.answer(question, "memory")


def test_bad_arm_and_k(session):
    with pytest.raises(LabError, match="unknown arm"):
        session.agent.answer(REFUND_Q, "magic")
    with pytest.raises(LabError, match="k must be"):
        session.agent.answer(REFUND_Q, "memory", k=0)


def test_json_shape_is_the_cli_contract(session):
    session.memory.add(REFUND_FACT)
    data = session.agent.answer(REFUND_Q, "memory").to_json()
    assert set(data) == {"answer", "arm", "hits", "prompt_tokens", "completion_tokens", "latency_ms"}
    # The fields it had, plus the kind (pinned or retrieved) and the tokens the note took.
    assert set(data["hits"][0]) == {"id", "text", "score", "pinned", "tokens"}
    assert data["hits"][0]["pinned"] is False and data["hits"][0]["tokens"] > 0


def test_concurrent_asks_from_threads_each_see_their_own_memory(engine, embedder):
    facts = {f"student{i}": f"The secret code of student{i}'s locker is {1000 + i * 111}." for i in range(4)}
    sessions = {name: LabSession.open(name) for name in facts}
    for name, fact in facts.items():
        sessions[name].memory.add(fact)
    results, errors = {}, []

    def ask(name):
        try:
            answer = sessions[name].agent.answer(f"What is the secret code of {name}'s locker?", "memory")
            results[name] = answer
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(name,)) for name in facts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for name, fact in facts.items():
        assert [h.text for h in results[name].hits] == [fact]
    for s in sessions.values():
        s.close()


def test_prepare_shows_what_answer_will_send_without_generating(session):
    session.memory.add(REFUND_FACT)
    prepared = session.agent.prepare(REFUND_Q, "memory")
    assert [h.text for h in prepared.hits] == [REFUND_FACT]
    answer = session.agent.answer(REFUND_Q, "memory")
    assert answer.messages == prepared.messages
    assert answer.prompt == session.engine.format_prompt(prepared.messages)


def test_answer_many_matches_answer_one_by_one(session):
    questions = [REFUND_Q, "What is the capital of Australia?"]
    many = session.agent.answer_many(questions, "base", max_tokens=12)
    assert [a.answer for a in many] == [session.agent.answer(q, "base", max_tokens=12).answer for q in questions]


def test_notes_in_prompt_order_is_the_order_the_prompt_holds_them(session):
    """Pinned rules first, then the retrieved notes worst to best: the best match sits last,
    beside the question. `hits` stays by score (the CLI's JSON); the app lists prompt_order."""
    from lab.agent import prompt_order

    session.memory.add("Always answer in one sentence.", pinned=True)
    session.memory.add("Acme Corp refunds take 45 days to reach your card.")
    session.memory.add(REFUND_FACT)
    prepared = session.agent.prepare(REFUND_Q, "memory", k=3, min_score=0.3)
    retrieved = [h for h in prepared.hits if not h.pinned]
    assert len(retrieved) == 2 and retrieved[0].score >= retrieved[1].score  # by score, best first
    ordered = prompt_order(prepared.hits)
    assert ordered[0].pinned and ordered[-1] is retrieved[0] and ordered[1] is retrieved[1]
    content = prepared.messages[-1]["content"]
    places = [content.index(h.text) for h in ordered]
    assert places == sorted(places) and content.index(REFUND_Q) > places[-1]
