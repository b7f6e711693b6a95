"""The shared model's queue: fair batched rounds (pure, with a stand-in round), then the real
model with concurrent students whose replies must equal the replies each gets alone."""

import threading
import time

import pytest

from lab import prompting
from lab.scheduler import Place, Scheduler


class Rounds:
    """A stand-in for the model: records each round's (group, requests); replies are the
    requests upper-cased. `gate` lets a test hold a round open."""

    def __init__(self, per_round: int = 10, seconds: float = 0.0):
        self.log: list[tuple[str, list[str]]] = []
        self.per_round = per_round
        self.seconds = seconds
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def serve(self, group, requests, admit=None, on_reply=None):
        self.entered.set()
        self.gate.wait(10)
        time.sleep(self.seconds)
        self.log.append((group, list(requests)))
        if any(r == "boom" for r in requests):
            raise ValueError("the round failed")
        return [r.upper() for r in requests]

    def scheduler(self) -> Scheduler:
        return Scheduler(serve=self.serve, cost=len, capacity=self.per_round)


def test_a_lone_question_joins_the_next_round_not_the_end_of_an_evaluation():
    rounds = Rounds(per_round=10)
    scheduler = rounds.scheduler()
    rounds.gate.clear()
    evaluation = scheduler.submit("base", [f"e{i}" for i in range(80)])
    assert rounds.entered.wait(5)  # the first round (ten of the eighty) is running
    question = scheduler.submit("base", ["q"])
    rounds.gate.set()
    assert question.wait() == ["Q"]
    assert evaluation.wait() == [f"E{i}" for i in range(80)]
    served_in = next(n for n, (_, requests) in enumerate(rounds.log) if "q" in requests)
    assert served_in == 1  # the round right after the one that was running
    assert len(rounds.log) == 9  # 81 requests in rounds of at most ten


def test_adapter_groups_take_turns_round_by_round():
    rounds = Rounds(per_round=5)
    scheduler = rounds.scheduler()
    rounds.gate.clear()
    first = scheduler.submit("base", [f"b{i}" for i in range(20)])
    assert rounds.entered.wait(5)
    second = scheduler.submit("adapter-a", [f"a{i}" for i in range(20)])
    rounds.gate.set()
    first.wait(), second.wait()
    groups = [group for group, _ in rounds.log]
    assert groups[:6] == ["base", "adapter-a", "base", "adapter-a", "base", "adapter-a"]
    assert all(len(requests) <= 5 for _, requests in rounds.log)


def test_students_asking_at_once_share_rounds():
    rounds = Rounds(per_round=64)
    scheduler = rounds.scheduler()
    rounds.gate.clear()
    tickets = [scheduler.submit("base", [f"student {i}"]) for i in range(30)]
    rounds.gate.set()
    assert [t.wait() for t in tickets] == [[f"STUDENT {i}"] for i in range(30)]
    assert len(rounds.log) <= 2  # the first round may have started with one student alone


def test_a_waiting_ticket_is_told_its_place():
    rounds = Rounds(per_round=1)
    scheduler = rounds.scheduler()
    rounds.gate.clear()
    running = scheduler.submit("base", ["first"])
    assert rounds.entered.wait(5)
    places: list[Place] = []
    waiter = threading.Thread(target=lambda: scheduler.submit("base", ["second"]).wait(on_wait=places.append))
    waiter.start()
    time.sleep(0.6)
    rounds.gate.set()
    waiter.join(10)
    running.wait()
    assert places and places[0].ahead == 1 and places[0].rounds == 1
    assert "1 request from other sessions ahead of yours" in places[0].describe()
    assert "next round" in places[0].describe()


def test_a_failed_round_fails_only_its_askers_and_the_queue_goes_on():
    rounds = Rounds(per_round=1)
    scheduler = rounds.scheduler()
    with pytest.raises(ValueError, match="the round failed"):
        scheduler.submit("base", ["boom"]).wait()
    assert scheduler.submit("base", ["fine"]).wait() == ["FINE"]


def test_an_abandoned_wait_withdraws_what_has_not_started():
    rounds = Rounds(per_round=1)
    scheduler = rounds.scheduler()
    rounds.gate.clear()
    ticket = scheduler.submit("base", ["a", "b", "c"])
    assert rounds.entered.wait(5)  # "a" is running
    ticket.events.put(("text", 0, "x"))  # a piece for the page to draw...

    def drawn(i, piece):
        raise KeyboardInterrupt  # ...and the page's rerun stops the waiting script right there

    with pytest.raises(KeyboardInterrupt):
        ticket.wait(on_text=drawn)
    rounds.gate.set()
    assert scheduler.submit("base", ["next"]).wait() == ["NEXT"]
    assert [r for _, requests in rounds.log for r in requests] == ["a", "next"]
    assert scheduler.pending == 0


class Stepping:
    """A stand-in round that admits newcomers between two steps and delivers as it goes."""

    def __init__(self):
        self.first_step = threading.Event()
        self.go_on = threading.Event()
        self.delivered_first = threading.Event()
        self.finish = threading.Event()
        self.finish.set()

    def serve(self, group, requests, admit=None, on_reply=None):
        requests = list(requests)
        self.first_step.set()
        assert self.go_on.wait(5)
        requests += admit(100, 10)
        on_reply(0, requests[0].upper())  # the first sequence ends early...
        self.delivered_first.set()
        assert self.finish.wait(5)  # ...while the others are still generating
        return [r.upper() for r in requests]


def test_a_request_arriving_during_a_round_of_its_adapter_joins_it():
    round_ = Stepping()
    scheduler = Scheduler(serve=round_.serve, cost=len, capacity=10)
    first = scheduler.submit("base", ["a"])
    assert round_.first_step.wait(5)
    second = scheduler.submit("base", ["b"])
    round_.go_on.set()
    assert first.wait() == ["A"] and second.wait() == ["B"]
    assert scheduler.rounds == 1 and scheduler.joined_late == 1


def test_nothing_joins_while_another_adapter_waits_its_turn():
    round_ = Stepping()
    scheduler = Scheduler(serve=round_.serve, cost=len, capacity=10)
    first = scheduler.submit("base", ["a"])
    assert round_.first_step.wait(5)
    other = scheduler.submit("adapter", ["x"])
    late = scheduler.submit("base", ["b"])
    round_.go_on.set()
    assert first.wait() == ["A"] and other.wait() == ["X"] and late.wait() == ["B"]
    assert scheduler.joined_late == 0 and scheduler.rounds == 3


def test_a_reply_is_handed_back_as_soon_as_its_sequence_ends():
    round_ = Stepping()
    round_.finish.clear()
    scheduler = Scheduler(serve=round_.serve, cost=len, capacity=10)
    short = scheduler.submit("base", ["short"])
    assert round_.first_step.wait(5)
    long_ = scheduler.submit("base", ["long"])
    round_.go_on.set()
    assert short.wait() == ["SHORT"]  # while the round is still running
    assert not long_.events.qsize() and scheduler.busy
    round_.finish.set()
    assert long_.wait() == ["LONG"]


def test_streamed_text_reaches_the_askers_own_thread():
    seen = []

    class Streaming:
        def __init__(self, text):
            self.text = text
            self.on_text = lambda piece: None

    def serve(group, requests, admit=None, on_reply=None):
        for request in requests:
            for word in request.text.split():
                request.on_text(word)
        return [r.text for r in requests]

    scheduler = Scheduler(serve=serve, cost=len, capacity=10,
                          stream=lambda request, push: setattr(request, "on_text", push))
    reply = scheduler.submit("base", [Streaming("one two three")]).wait(
        on_text=lambda i, piece: seen.append((piece, threading.current_thread().name)))
    assert reply == ["one two three"]
    assert [piece for piece, _ in seen] == ["one", "two", "three"]
    assert {thread for _, thread in seen} == {threading.current_thread().name}


# ---- the real model: thirty-odd students at once ------------------------------------------

FACTS = [
    ("What is the refund window at Acme Corp?", "The refund window at Acme Corp is 45 days."),
    ("What colour is the Zorblax logo?", "The Zorblax logo is bright orange."),
    ("Who founded Quillmoor Bakery?", "Quillmoor Bakery was founded by Edda Rask."),
    ("How tall is the Fenwick lighthouse?", "The Fenwick lighthouse is 38 metres tall."),
    ("What is the capital of France?", "Paris is the capital of France."),
    ("What does the island of Vell export?", "The island of Vell exports salted kelp."),
]


@pytest.fixture()
def no_reply_cache(engine, monkeypatch):
    """These tests compare real generations: a cached reply would prove nothing."""
    monkeypatch.setattr(engine, "use_reply_cache", False)
    return engine


def test_concurrent_students_get_the_replies_they_get_alone(no_reply_cache, tmp_path):
    from lab.session import LabSession
    from lora_factory import random_adapter

    engine = no_reply_cache
    adapter = random_adapter(tmp_path / "adapter.gguf", seed=3, scale=0.1)
    students = []
    for n in range(12):
        session = LabSession.open(f"student-{n}")
        question, fact = FACTS[n % len(FACTS)]
        session.memory.add(fact, question=question, answer=fact)
        students.append((session, question))
    jobs = [(s, q, arm) for s, q in students for arm in ("base", "memory", "learned", "both")]

    def ask(session, question, arm):
        return session.agent.answer(question, arm, adapter_file=adapter if arm in ("learned", "both") else None,
                                    max_tokens=32).answer

    alone = [ask(*job) for job in jobs]
    rounds_before = engine.scheduler.rounds
    together: list = [None] * len(jobs)
    errors = []

    def student(indexes):
        try:
            for i in indexes:
                together[i] = ask(*jobs[i])
        except Exception as exc:  # collected: a failure in a thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=student, args=(range(n * 4, n * 4 + 4),)) for n in range(len(students))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert together == alone
    # Batched for real: far fewer rounds than requests, and some round held many students.
    assert engine.scheduler.rounds - rounds_before < len(jobs)
    assert engine.scheduler.largest_round > 1
    for session, _ in students:
        session.close()


def test_a_question_asked_during_anothers_reply_joins_its_round_and_gets_its_own_answer(no_reply_cache):
    engine = no_reply_cache
    story = prompting.question_messages("Tell me a long story about a lighthouse keeper and a storm.")
    question = prompting.question_messages("What is the capital of Italy?")
    alone_story, alone_question = engine.chat(story, max_tokens=160).text, engine.chat(question).text
    joined_before = engine.scheduler.joined_late
    box = {}
    worker = threading.Thread(target=lambda: box.update(story=engine.chat(story, max_tokens=160).text))
    worker.start()
    time.sleep(0.5)  # the story's round is generating
    box["question"] = engine.chat(question).text
    worker.join()
    assert (box["story"], box["question"]) == (alone_story, alone_question)
    assert engine.scheduler.joined_late > joined_before


def test_a_question_during_an_evaluation_is_answered_before_the_evaluation_ends(no_reply_cache):
    engine = no_reply_cache
    questions = [prompting.question_messages(f"Name a fact about the number {n}.") for n in range(80)]
    lone = prompting.question_messages("What is the capital of France?")
    expected = engine.chat(lone, max_tokens=16).text
    finished = {}

    def evaluation():
        engine.chat_many(questions, max_tokens=24)
        finished["evaluation"] = time.monotonic()

    worker = threading.Thread(target=evaluation)
    worker.start()
    time.sleep(1.0)  # the evaluation's first round is running
    reply = engine.chat(lone, max_tokens=16)
    finished["question"] = time.monotonic()
    worker.join()
    assert reply.text == expected
    assert finished["question"] < finished["evaluation"]
