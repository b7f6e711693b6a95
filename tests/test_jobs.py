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
