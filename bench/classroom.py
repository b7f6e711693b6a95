"""A class at once: 10 and 30 simulated students on one machine, through the real stack.

Each student is a thread with its own workspace (LabSession.open), as a browser session is
in the app. The experiments:

1. burst     every student asks its question on the base arm and then on the memory arm
             (one remembered fact each), all at once, with the reply cache off, so only
             the scheduler is measured. Against (a) the same prompts as one `chat_many`
             batch and (b) the lock as it was: one generation at a time, in turn.
2. journey   the acme wipe test: one student alone, then every student at once (the class's
             wall time against the one); then every student does the lesson at once, with
             the reply cache on (a real class): ask on all four arms (the learned arms use
             the acme adapter), remember a correction, ask again, run the acme wipe test.
             p50/p95 per step and the class's wall time. Each on a cold reply cache.
3. process   a second process runs the same wipe test on another workspace after the class.
4. lone      one student's single question (never cached) during a 30-student burst and
             during a training, p95.

    python -m bench.classroom [--students 10,30] [--skip-lock]

Writes bench/results/classroom.json; the README's "A class at once" table quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def spread(values: list[float]) -> dict:
    return {"p50_s": round(pct(values, 50), 2), "p95_s": round(pct(values, 95), 2),
            "max_s": round(max(values), 2), "n": len(values)}


def run_threads(n: int, work) -> tuple[float, list]:
    """Start n threads on work(i) at once; the class's wall time and each one's result."""
    results: list = [None] * n
    errors: list = []
    start = threading.Barrier(n + 1)

    def student(i):
        try:
            start.wait()
            results[i] = work(i)
        except Exception as exc:  # a failure must not pass silently as a fast run
            errors.append(exc)

    threads = [threading.Thread(target=student, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if errors:
        raise errors[0]
    return wall, results


def students(n: int, tag: str, scenario):
    """n sessions, each remembering one of the scenario's corrections and asking its question."""
    from lab.session import LabSession

    sessions = []
    for i in range(n):
        item = scenario.items[i % len(scenario.items)]
        session = LabSession.open(f"{tag}-{i}")
        session.memory.wipe()
        session.memory.add(item.correction_text, question=item.question, answer=item.answer)
        sessions.append((session, item))
    return sessions


def burst(engine, scenario, n: int, *, lock_too: bool) -> dict:
    """Experiment 1: base then memory, all at once; the reply cache off."""
    engine.use_reply_cache = False
    class_ = students(n, f"burst{n}", scenario)

    def asks(i, guard=None):
        session, item = class_[i]
        took = []
        for arm in ("base", "memory"):
            began = time.perf_counter()
            if guard is None:
                session.agent.answer(item.question, arm)
            else:
                with guard:  # the lock as it was: one generation at a time
                    session.agent.answer(item.question, arm)
            took.append(time.perf_counter() - began)
        return took, sum(took)

    result = {}
    rounds_before, joined_before = engine.scheduler.rounds, engine.scheduler.joined_late
    wall, per_student = run_threads(n, asks)
    result["scheduler"] = {"class_wall_s": round(wall, 2), **spread([total for _, total in per_student]),
                           "rounds": engine.scheduler.rounds - rounds_before,
                           "joined_a_running_round": engine.scheduler.joined_late - joined_before}
    if lock_too:
        guard = threading.Lock()
        wall, per_student = run_threads(n, lambda i: asks(i, guard))
        result["lock"] = {"class_wall_s": round(wall, 2), **spread([total for _, total in per_student])}
    prepared = [s.agent.prepare(item.question, arm) for s, item in class_ for arm in ("base", "memory")]
    began = time.perf_counter()
    engine.chat_many([p.messages for p in prepared], use_cache=False)
    result["one_batch_s"] = round(time.perf_counter() - began, 2)
    result["wall_vs_batch"] = round(result["scheduler"]["class_wall_s"] / result["one_batch_s"], 2)
    if lock_too:
        result["lock_vs_batch"] = round(result["lock"]["class_wall_s"] / result["one_batch_s"], 2)
    for session, _ in class_:
        session.close()
    engine.use_reply_cache = True
    return result


def journey(engine, scenario, n: int, adapter_dir: Path) -> dict:
    """Experiment 2: the whole lesson at once, with the reply cache on."""
    from lab.agent import ARMS
    from lab.evaluate import wipe_test

    class_ = students(n, f"journey{n}", scenario)
    for session, _ in class_:
        target = session.adapters.directory / "acme"
        shutil.copytree(adapter_dir, target, dirs_exist_ok=True)
        session.adapters.activate("acme")
        session.memory.wipe()

    def lesson(i):
        session, item = class_[i]
        steps = {}
        began = time.perf_counter()
        for arm in ARMS:
            session.agent.answer(item.question, arm)
        steps["ask"] = time.perf_counter() - began
        began = time.perf_counter()
        session.memory.add(item.correction_text, question=item.question, answer=item.answer)
        steps["remember"] = time.perf_counter() - began
        began = time.perf_counter()
        for arm in ARMS:
            session.agent.answer(item.question, arm)
        steps["ask_again"] = time.perf_counter() - began
        began = time.perf_counter()
        wipe_test(session, scenario)
        steps["wipe_test"] = time.perf_counter() - began
        return steps

    wall, per_student = run_threads(n, lesson)
    report = {"class_wall_s": round(wall, 2)}
    for step in ("ask", "remember", "ask_again", "wipe_test"):
        report[step] = spread([s[step] for s in per_student])
    for session, _ in class_:
        session.close()
    return report


def wipe_tests_at_once(engine, scenario, adapter_dir: Path, n: int) -> float:
    """n students start the acme wipe test in the same second; the class's wall time."""
    from lab.evaluate import wipe_test
    from lab.session import LabSession

    class_ = []
    for i in range(n):
        session = LabSession.open(f"wipe{n}-{i}")
        shutil.copytree(adapter_dir, session.adapters.directory / "acme", dirs_exist_ok=True)
        session.adapters.activate("acme")
        class_.append(session)
    wall, _ = run_threads(n, lambda i: wipe_test(class_[i], scenario))
    for session in class_:
        session.close()
    return wall


def one_wipe_test(engine, scenario, adapter_dir: Path, name: str) -> float:
    """One student's acme wipe test alone, on a cold reply cache (the reference for 30 at once)."""
    from lab.evaluate import wipe_test
    from lab.session import LabSession

    session = LabSession.open(name)
    shutil.copytree(adapter_dir, session.adapters.directory / "acme", dirs_exist_ok=True)
    session.adapters.activate("acme")
    began = time.perf_counter()
    wipe_test(session, scenario)
    seconds = time.perf_counter() - began
    session.close()
    return seconds


def second_process(home: Path, adapter_dir: Path) -> dict:
    """Experiment 3: another process, another workspace, the same wipe test."""
    from lab.workspace import Workspace

    workspace = Workspace.open("second-process", root=home)
    shutil.copytree(adapter_dir, workspace.adapters_dir / "acme", dirs_exist_ok=True)
    (workspace.adapters_dir / "active.json").write_text(json.dumps({"active": "acme"}))
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lab", "wipe-test", "--scenario", "acme", "--adapter", "acme",
                           "--workspace", "second-process", "--json"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "LAB_HOME": str(home)})
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-500:])
    report = json.loads(done.stdout)
    return {"wipe_test_s": report["seconds"], "process_wall_s": round(wall, 2)}


def lone_question(engine, scenario, background, label: str, count: int = 12) -> dict:
    """Experiment 4: a student's single, never-cached question while `background` runs."""
    from lab import prompting

    stop = threading.Event()
    runner = threading.Thread(target=lambda: background(stop))
    runner.start()
    took = []
    try:
        time.sleep(2.0)
        for n in range(count):
            began = time.perf_counter()
            engine.chat(prompting.question_messages(f"In one sentence, what is special about the number {n}?"),
                        use_cache=False)
            took.append(time.perf_counter() - began)
            if not runner.is_alive():
                break
    finally:
        stop.set()
        runner.join()
    return {"during": label, **spread(took)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", default="10,30")
    parser.add_argument("--skip-lock", action="store_true", help="leave out the one-at-a-time baseline")
    parser.add_argument("--only", help="a quick look at one experiment (burst, journey, process, lone); "
                                       "writes no results file unless --update")
    parser.add_argument("--update", action="store_true",
                        help="with --only: put that experiment's figures into bench/results/classroom.json")
    args = parser.parse_args()
    sizes = [int(n) for n in args.students.split(",")]
    wanted = {args.only} if args.only else {"burst", "journey", "process", "lone"}

    home = Path(tempfile.mkdtemp(prefix="lab-classroom-"))
    os.environ["LAB_HOME"] = str(home)
    sys.path.insert(0, str(ROOT))
    from bench.common import write_results
    from lab.consolidation import consolidate
    from lab.engine import get_engine
    from lab.learning import TrainingConfig
    from lab.scenario import load_scenario
    from lab.session import LabSession

    engine = get_engine()
    scenario = load_scenario("acme")
    teacher = LabSession.open("teacher")
    results = {"students": sizes, "burst": {}, "journey": {}}
    if "burst" in wanted:
        for n in sizes:
            results["burst"][str(n)] = burst(engine, scenario, n, lock_too=not args.skip_lock)
            print(f"burst {n}: {results['burst'][str(n)]}", flush=True)
    if wanted == {"burst"}:
        return
    began = time.perf_counter()
    consolidate(teacher, name="acme", scenario=scenario, config=TrainingConfig())
    results["training_s"] = round(time.perf_counter() - began, 1)
    adapter_dir = teacher.adapters.get("acme").path.parent
    print(f"trained the acme adapter in {results['training_s']:.0f} s", flush=True)

    from lab import reply_cache

    if "journey" in wanted:
        # One student's wipe test alone, then the class's at once, then the whole lesson: each on
        # a cold reply cache of its own.
        reply_cache.shared_cache().clear()
        results["one_wipe_test_s"] = round(one_wipe_test(engine, scenario, adapter_dir, "alone"), 2)
        print(f"one wipe test alone: {results['one_wipe_test_s']} s", flush=True)
        results["wipe_tests_at_once"] = {}
        for n in sizes:
            reply_cache.shared_cache().clear()
            wall = wipe_tests_at_once(engine, scenario, adapter_dir, n)
            results["wipe_tests_at_once"][str(n)] = {"class_wall_s": round(wall, 2),
                                                     "vs_one": round(wall / results["one_wipe_test_s"], 2)}
            print(f"{n} wipe tests at once: {results['wipe_tests_at_once'][str(n)]}", flush=True)
        for n in sizes:
            reply_cache.shared_cache().clear()
            results["journey"][str(n)] = journey(engine, scenario, n, adapter_dir)
            print(f"journey {n}: {results['journey'][str(n)]}", flush=True)
    if "process" in wanted:
        if "journey" not in wanted:
            one_wipe_test(engine, scenario, adapter_dir, "warm-the-cache")
        results["second_process"] = second_process(home, adapter_dir)
        print(f"second process: {results['second_process']}", flush=True)
    if "lone" in wanted:
        biggest = max(sizes)
        class_ = students(biggest, "lone-burst", scenario)

        def class_asking(stop):
            def asks(i):
                session, item = class_[i]
                while not stop.is_set():
                    session.agent.answer(item.question + " Explain.", "base", max_tokens=48)
            engine.use_reply_cache = False
            run_threads(biggest, asks)

        def training(stop):
            from lab.jobs import TrainingJob

            job = TrainingJob(teacher, name="background", scenario=scenario, config=TrainingConfig(steps=40, seed=7)).start()  # not acme's: it would be reused
            while not job.finished and not stop.is_set():
                time.sleep(0.2)
            job.cancel()
            job.wait()

        results["lone_question"] = [lone_question(engine, scenario, class_asking, f"a {biggest}-student burst"),
                                    lone_question(engine, scenario, training, "a training")]
        engine.use_reply_cache = True
        print(f"lone question: {results['lone_question']}", flush=True)
    if args.only and not args.update:
        return
    if args.only:  # the other experiments' figures stay as they were measured
        import json

        from bench.common import RESULTS

        previous = json.loads((RESULTS / "classroom.json").read_text())
        previous.pop("benchmark", None), previous.pop("measured_at", None), previous.pop("machine", None)
        fresh = {name: value for name, value in results.items() if name not in ("students", "burst", "journey")
                 or value}
        results = {**previous, **fresh, "updated_alone": sorted({*previous.get("updated_alone", []), args.only})}
    write_results("classroom", results)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
