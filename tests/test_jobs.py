import time

from lab.jobs import TrainingJob
from lab.learning import TrainingConfig
from lab.session import LabSession

QUICK = TrainingConfig(steps=8, batch_size=2, learning_rate=3e-3, replay=False)


def test_a_job_trains_off_thread_and_reports_progress(engine, embedder):
    session = LabSession.open("job")
    session.memory.add("The refund window at Acme Corp is 45 days.",
                       question="What is the refund window at Acme Corp?", answer="The refund window at Acme Corp is 45 days.")
    job = TrainingJob(session, name="v1", config=QUICK).start()
    # The engine stays free for other sessions while the job trains.
    assert session.agent.answer("What is 2 + 2?", "base").answer
    job.wait(300)
    assert job.state == "done", job.error
    assert [p.step for p in job.progress] == list(range(1, 9)) and session.adapters.active_name() == "v1"


def test_a_cancelled_job_registers_nothing_and_an_empty_one_fails_cleanly(engine, embedder):
    session = LabSession.open("job2")
    empty = TrainingJob(session, name="x", config=QUICK).start().wait(60)
    assert empty.state == "failed" and "memory is empty" in empty.error and "python -m lab" not in empty.error
    session.memory.add("A fact.", question="Q?", answer="A fact.")
    job = TrainingJob(session, name="y", config=TrainingConfig(steps=500, batch_size=1, replay=False)).start()
    while not job.progress and not job.finished:
        time.sleep(0.05)
    job.cancel()
    job.wait(120)
    assert job.state == "cancelled" and session.adapters.list() == []


def test_a_reload_finds_the_running_training_on_the_board_and_can_cancel_it(engine, embedder):
    """A reload is a new browser session: st.session_state is gone, the training is not. The job
    is kept by workspace and slot, so the new session finds it, shows it and can cancel it;
    once its end has been shown, nobody is offered it again."""
    from lab.jobs import BOARD

    first = LabSession.open("reload")
    first.memory.add("The refund window at Acme Corp is 45 days.", question="What is the refund window at Acme Corp?",
                     answer="The refund window at Acme Corp is 45 days.")
    job = TrainingJob(first, name="v1", config=TrainingConfig(steps=500, batch_size=1, replay=False),
                      slot="learning.job").start()
    try:
        reloaded = LabSession.open("reload")  # the same workspace, a new session
        assert BOARD.find(reloaded.workspace.name, "learning.job") is job
        assert BOARD.find("someone-else", "learning.job") is None and BOARD.unseen("someone-else") == []
        assert BOARD.unseen("reload") == [job]
        while not job.progress and not job.finished:
            time.sleep(0.1)
        assert job.stage == "training"
        BOARD.find(reloaded.workspace.name, "learning.job").cancel()  # the reloaded page's Cancel
        job.wait(120)
    finally:
        job.cancel()
        job.wait(120)
    assert job.state == "cancelled" and reloaded.adapters.list() == [] and reloaded.adapters.active_name() is None
    assert BOARD.find("reload", "learning.job") is job  # ended, and nobody was told yet
    job.reported = True
    assert BOARD.find("reload", "learning.job") is None and BOARD.unseen("reload") == []


def test_the_answers_a_training_prepares_are_counted_and_timed(engine, embedder):
    """Before its turn, a training with replay waits for the base model's answers to the
    replay questions: the job says so (stage "preparing"), counts the answers the class's
    reply cache does not hold, and times them for the next estimate."""
    from lab import training_pace
    from lab.consolidation import REPLAY_QUESTIONS, REWORDINGS, replay_examples, rule_questions
    from lab.jobs import preparation

    session = LabSession.open("prepare")
    fact = session.memory.add("The refund window at Acme Corp is 45 days.",
                              question="What is the refund window at Acme Corp?",
                              answer="The refund window at Acme Corp is 45 days.")
    counted = preparation(session, method="sft", config=TrainingConfig(), memories=None)
    assert counted.answers == len(REPLAY_QUESTIONS) and counted.new == counted.answers
    replay_examples(REPLAY_QUESTIONS[:3], session.engine)  # three answers now in the reply cache
    assert preparation(session, method="sft", config=TrainingConfig()).new == len(REPLAY_QUESTIONS) - 3
    assert preparation(session, method="sft", config=TrainingConfig(replay=False)).answers == 0
    rule = session.remember("Always answer like a pirate.", pinned=True)
    distilled = preparation(session, method="distill", config=TrainingConfig(), memories=[fact, rule])
    assert distilled.answers == len(REWORDINGS) + len(rule_questions()) + len(REPLAY_QUESTIONS[0::2])

    session.memory.delete(rule.id)
    job = TrainingJob(session, name="v1", config=TrainingConfig(steps=2, batch_size=1)).start()
    assert job.stage == "preparing" and job.prepared.new == len(REPLAY_QUESTIONS) - 3
    assert job.ticket.prepare_s == training_pace.current().preparing_s(job.prepared.new)
    job.wait(900)
    assert job.state == "done", job.error
    assert job.ticket.ready_at is not None and training_pace.current().answers_measured
