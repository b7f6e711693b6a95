"""The training queue: one at a time, a place and an expected start in line, cancel while queued.

The first tests are pure unit tests of TrainingQueue (blocks of plain Python stand in for
trainings); the last runs real, short trainings through TrainingJob."""

import threading
import time

import pytest

from lab.learning import TrainingCancelled, TrainingConfig
from lab.training_queue import TrainingQueue


def _hold_turn(queue, ticket, entered, release, log):
    with queue.turn(ticket):
        log.append(("in", ticket.label))
        entered.set()
        release.wait(10)
        log.append(("out", ticket.label))


def test_one_at_a_time_first_come_first_served_with_places_in_line():
    queue, log = TrainingQueue(), []
    tickets = [queue.join(label, steps=10) for label in "abc"]
    assert [queue.position(t) for t in tickets] == [1, 2, 3]
    gates = [(threading.Event(), threading.Event()) for _ in tickets]
    threads = [threading.Thread(target=_hold_turn, args=(queue, t, entered, release, log))
               for t, (entered, release) in zip(reversed(tickets), reversed(gates))]  # started in reverse
    for thread in threads:
        thread.start()
    gates[0][0].wait(5)
    time.sleep(0.5)  # b and c had time to cut in, and must not have
    assert log == [("in", "a")] and [queue.position(t) for t in tickets] == [0, 1, 2]
    for entered, release in gates:
        release.set()
    for thread in threads:
        thread.join(10)
    assert log == [("in", "a"), ("out", "a"), ("in", "b"), ("out", "b"), ("in", "c"), ("out", "c")]
    assert [queue.position(t) for t in tickets] == [None, None, None] and queue.waiting == 0


def test_the_expected_start_adds_what_runs_and_what_waits_ahead():
    queue = TrainingQueue()
    running, second, third = queue.join("a", 40), queue.join("b", 40), queue.join("c", 10)
    entered, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=_hold_turn, args=(queue, running, entered, release, []))
    thread.start()
    entered.wait(5)

    class Report:
        step, eta_s = 10, 30.0

    running.report(Report())
    now = time.time()
    assert queue.expected_start(second, now) == pytest.approx(now + 30.0)
    assert queue.expected_start(third, now) == pytest.approx(now + 30.0 + queue.estimate_s(40))
    assert queue.expected_start(running, now) == running.started_at
    release.set()
    thread.join(5)
    queue.leave(second)
    queue.leave(third)
    assert queue.expected_start(second) is None


def test_a_ticket_cancelled_while_queued_leaves_the_line_and_never_runs():
    queue = TrainingQueue()
    first, waiting = queue.join("first", 5), queue.join("waiting", 5)
    entered, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=_hold_turn, args=(queue, first, entered, release, []))
    thread.start()
    entered.wait(5)
    cancel = threading.Event()
    cancel.set()
    ran = []
    with pytest.raises(TrainingCancelled, match="waited in the queue"):
        with queue.turn(waiting, cancel):
            ran.append(True)
    assert ran == [] and queue.position(waiting) is None and queue.position(first) == 0
    release.set()
    thread.join(5)


def test_real_trainings_queue_one_at_a_time_and_a_queued_one_can_be_cancelled(engine, embedder):
    from lab.jobs import TrainingJob
    from lab.session import LabSession

    sessions = [LabSession.open(f"queue-{i}") for i in range(3)]
    for i, session in enumerate(sessions):  # different memories: different trainings, none reused
        session.memory.add(f"Room {i} is on floor {i + 2}.", question=f"Where is room {i}?",
                           answer=f"Room {i} is on floor {i + 2}.")
    quick = TrainingConfig(steps=4, batch_size=1, replay=False)
    jobs = [TrainingJob(session, name="mine", config=quick).start() for session in sessions]
    assert jobs[1].state == "queued" and jobs[1].position in (1, 2) and jobs[2].position in (2, 3)
    assert jobs[2].expected_start is not None and jobs[2].expected_start >= time.time()
    jobs[2].cancel()
    jobs[2].wait(60)
    assert jobs[2].state == "cancelled" and "queue" in jobs[2].error
    assert sessions[2].adapters.list() == [] and jobs[2].progress == []
    for job in jobs[:2]:
        job.wait(300)
        assert job.state == "done", job.error
        assert [p.step for p in job.progress] == [1, 2, 3, 4] and not job.result.reused
    first, second = (j.ticket for j in jobs[:2])
    # The second started only once the first had trained all of its steps.
    assert second.started_at >= first.started_at + jobs[0].result.meta["train_seconds"]
    assert sessions[1].adapters.active_name() == "mine"


def test_a_training_that_prepares_its_data_is_not_expected_to_start_at_once():
    """A training takes its place when asked for, then its base model answers the replay
    questions (a minute or more) before it asks for its turn: the page once said "Expected to
    start in about 0 s" all that time. Its own preparation, and that of those ahead, count."""
    queue = TrainingQueue()
    preparing, behind = queue.join("a", 40), queue.join("b", 40)
    preparing.prepare_s = 90.0
    now = time.time()
    assert preparing.preparing and queue.expected_start(preparing, now) == pytest.approx(preparing.joined_at + 90.0)
    assert queue.expected_start(behind, now) == pytest.approx(
        now + preparing.prepare_left_s(now) + queue.estimate_s(40))
    with queue.turn(preparing):  # it asked: ready, and no longer preparing
        assert preparing.ready_at is not None and not preparing.preparing and preparing.prepare_left_s() == 0
    queue.leave(behind)


def test_what_a_training_is_doing_is_said_with_the_measured_pace():
    """lab.jobs.describe on a job-shaped object in each stage (pure: no model, no training)."""
    from types import SimpleNamespace

    from lab import training_pace
    from lab.jobs import Preparation, describe, stage_of
    from lab.learning import Progress
    from lab.training_queue import Ticket

    training_pace.record_preparation(answers=10, seconds=20.0)  # 2 s an answer, measured
    ticket = Ticket("a", 60, prepare_s=100.0)
    job = SimpleNamespace(state="queued", ticket=ticket, position=1, progress=[], base_converted=True,
                          prepared=Preparation(answers=50, new=50, what="50 replay questions"))
    assert stage_of(job) == "preparing"
    text = describe(job, now=ticket.joined_at + 30)
    assert "answers the 50 replay questions first (50 new answers)" in text and "About 70 s left" in text
    assert "2.0 s an answer, measured on this server" in text
    assert "Taking longer than the 1.7 min expected" in describe(job, now=ticket.joined_at + 130)
    job.prepared = Preparation(answers=50, new=0, what="50 replay questions")
    assert "all in the class's reply cache" in describe(job)
    ticket.ready_at = ticket.joined_at + 1
    assert stage_of(job) == "queued"
    ticket.started_at, job.state = time.time(), "running"
    assert stage_of(job) == "loading" and describe(job).startswith("Loading the base model for training: about")
    job.base_converted = False
    assert describe(job).startswith("Converting the base model for training: the first time on this server only")
    job.progress.append(Progress(step=7, steps=60, loss=1.0, tokens_per_s=100.0, eta_s=50.0))
    assert stage_of(job) == "training"
    job.progress.append(Progress(step=60, steps=60, loss=0.5, tokens_per_s=100.0, eta_s=0.0))
    assert stage_of(job) == "saving" and describe(job).startswith("Saving the adapter")
