"""Questions while a training runs: ask latency on the base arm, and the thread split it chose.

On the class server (2 cores) one training (torch) and thirty students' questions
(llama.cpp) share the cores. For each split, torch's threads (LAB_TRAINING_THREADS, read
by lab/learning.py) by llama.cpp's n_threads, it measures in one process, as the app runs:

- the ask latency of `LabSession.open(...).agent.answer(question, "base")` with nothing
  else running (idle), one question at a time, greedy, up to 48 tokens;
- the same while a real training of `acme` runs on a TrainingJob's worker thread (only
  asks made while its steps run are counted, not its start-up);
- how long that training took, and how long it takes with no questions asked.

Every training gets its own seed, so none is reused from the shared cache, under a
temporary LAB_HOME. llama.cpp's threads are set on an Engine built here (the app's engine
uses os.cpu_count(); this script does not change lab/engine.py).

    python -m bench.training_contention [--steps 40] [--idle-questions 12]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time

from bench.common import summary, write_results
from lab.consolidation import REPLAY_QUESTIONS
from lab.jobs import TrainingJob
from lab.learning import TRAINING_THREADS_ENV, TrainingConfig, load_base
from lab.scenario import load_scenario

QUESTIONS = [q for q, _ in REPLAY_QUESTIONS]  # 50 different questions: no reply is ever reused


def ask_ms(session, questions) -> float:
    question = next(questions)
    start = time.perf_counter()
    session.agent.answer(question, "base")
    return (time.perf_counter() - start) * 1000


def train_and_ask(session, scenario, config, questions, *, ask: bool) -> tuple[list[float], dict]:
    """Run one training; while its steps run, ask questions back to back (if `ask`)."""
    job = TrainingJob(session, name=f"seed-{config.seed}", scenario=scenario, config=config).start()
    latencies = []
    while not job.finished:
        if ask and job.progress:  # steps are running: the start-up (loading, prefix) is not counted
            latencies.append(ask_ms(session, questions))
        else:
            time.sleep(0.05)
    assert job.state == "done" and not job.result.reused, job.error
    meta = job.result.meta
    return latencies, {"seconds": meta["seconds"], "train_seconds": meta["train_seconds"],
                       "torch_threads": meta["torch_threads"]}


def alternate_idle(thread_counts, rounds: int) -> None:
    """Idle ask latency for each llama.cpp thread count, taking turns question by question."""
    import json

    from bench.common import RESULTS
    from lab.engine import Engine
    from lab.session import LabSession

    os.environ["LAB_HOME"] = tempfile.mkdtemp(prefix="bench-contention-")
    sessions = {}
    for threads in thread_counts:
        sessions[threads] = LabSession.open(f"bench-llama-{threads}")
        sessions[threads].__dict__["engine"] = Engine(None, n_threads=threads)
    questions = QUESTIONS[:rounds]
    for session in sessions.values():
        ask_ms(session, iter(QUESTIONS[-3:]))  # warm-up
    times = {threads: [] for threads in sessions}
    for question in questions:
        for threads, session in sessions.items():
            times[threads].append(ask_ms(session, iter([question])))  # the same question for each
    found = {str(t): {k: round(v, 1) for k, v in summary(ms).items()} for t, ms in times.items()}
    print(found)
    path = RESULTS / "training_contention.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["idle_alternating_by_llama_threads"] = {"rounds": rounds, "ms": found,
                                                 "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--idle-questions", type=int, default=12)
    parser.add_argument("--llama-threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--torch-threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--alternate-idle", type=int, metavar="ROUNDS",
                        help="only compare llama.cpp's thread counts with nothing training, alternating them "
                             "question by question (fair on a machine whose load changes), and add the figures "
                             "to the results file")
    args = parser.parse_args()
    if args.alternate_idle:
        return alternate_idle(args.llama_threads, args.alternate_idle)

    os.environ["LAB_HOME"] = tempfile.mkdtemp(prefix="bench-contention-")
    from lab.engine import Engine
    from lab.models import resolve_model_path
    from lab.session import LabSession

    scenario = load_scenario("acme")
    questions = itertools.cycle(QUESTIONS)
    seeds = itertools.count(100)
    load_base(resolve_model_path(None))  # the one-time dequantization, not counted
    rows, alone = [], {}
    for llama_threads in args.llama_threads:
        session = LabSession.open(f"bench-llama-{llama_threads}")
        session.__dict__["engine"] = engine = Engine(None, n_threads=llama_threads)  # the agent's engine too
        for _ in range(3):
            ask_ms(session, questions)  # warm-up
        idle = summary([ask_ms(session, questions) for _ in range(args.idle_questions)])
        for torch_threads in args.torch_threads:
            os.environ[TRAINING_THREADS_ENV] = str(torch_threads)
            config = TrainingConfig(steps=args.steps, seed=next(seeds))
            if torch_threads not in alone:
                _, alone[torch_threads] = train_and_ask(session, scenario, config, questions, ask=False)
                config = TrainingConfig(steps=args.steps, seed=next(seeds))
            latencies, training = train_and_ask(session, scenario, config, questions, ask=True)
            during = summary(latencies)
            row = {"llama_threads": llama_threads, "torch_threads": torch_threads,
                   "idle_ms": {k: round(v, 1) for k, v in idle.items()},
                   "during_training_ms": {k: round(v, 1) for k, v in during.items()},
                   "p50_ratio_to_idle": round(during["p50_ms"] / idle["p50_ms"], 2),
                   "training_s": training["train_seconds"], "training_alone_s": alone[torch_threads]["train_seconds"],
                   "training_slowdown": round(training["train_seconds"] / alone[torch_threads]["train_seconds"], 2)}
            rows.append(row)
            print(row, flush=True)
            write_results("training_contention", _result(args, rows, complete=False))  # kept if stopped early
        session.close()
        engine.close()

    result = _result(args, rows, complete=True)
    print(result["lowest_ask_p50_during_training"])
    write_results("training_contention", result)


def _result(args, rows, *, complete: bool) -> dict:
    best = min(rows, key=lambda r: (r["during_training_ms"]["p50_ms"], r["training_s"]))
    return {"scenario": "acme", "steps": args.steps, "cpu_count": os.cpu_count(), "complete": complete,
            "splits": rows,
            "lowest_ask_p50_during_training": {"llama_threads": best["llama_threads"],
                                               "torch_threads": best["torch_threads"]},
            "note": "one process, as in the app: the training on a TrainingJob thread, the asks on the main "
                    "thread, back to back while the training's steps run; the machine is shared with other "
                    "work, so compare rows measured in the same run"}


if __name__ == "__main__":
    main()
