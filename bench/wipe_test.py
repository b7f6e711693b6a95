"""The whole wipe test of the bundled facts scenario: four arms, before and after a wipe.

Training is excluded: the adapter is trained (or reused) before the clock starts.
Target: <= 30 s on the 2-core machine.

It also records where the time goes: llama.cpp evaluates prompt tokens in batches (the
prompt after the beginning it shares with the previous one) and reply tokens one at a
time; both are counted by wrapping the model's `eval`.

    python -m bench.wipe_test
"""

from __future__ import annotations

import time
from collections import Counter

from bench.common import write_results
from lab.consolidation import consolidate
from lab.evaluate import table, wipe_test
from lab.scenario import load_scenario
from lab.session import LabSession


def main() -> None:
    session = LabSession.open("bench-wipe-test")
    scenario = load_scenario("acme")
    names = [a.name for a in session.adapters.list()]
    adapter = (session.adapters.get("acme-auto").path if "acme-auto" in names
               else consolidate(session, name="acme-auto", scenario=scenario, activate=False).path)
    session.agent.answer("warm up", "memory")  # model and embedder loaded before timing
    llm = session.engine._llm
    spent: Counter = Counter()
    evaluate = llm.eval

    def counted_eval(tokens):
        kind = "reply" if len(tokens) == 1 else "prompt"
        start = time.perf_counter()
        evaluate(tokens)
        spent[f"{kind}_tokens"] += len(tokens)
        spent[f"{kind}_seconds"] += time.perf_counter() - start

    llm.eval = counted_eval
    try:
        report = wipe_test(session, scenario, adapter_file=adapter)
    finally:
        llm.eval = evaluate
    print(table(report))
    questions = len(scenario.items) + sum(len(i.paraphrases) + len(i.reverse) for i in scenario.items) \
        + len(scenario.locality)
    write_results("wipe_test", {"scenario": scenario.name, "questions_per_arm": questions,
                                "seconds": report["seconds"], "target": "<= 30 s",
                                "passed": report["seconds"] <= 30,
                                "llama_cpp": {k: round(v, 2) for k, v in sorted(spent.items())},
                                "report": report})
    session.close()


if __name__ == "__main__":
    main()
