"""The whole wipe test of the bundled facts scenario: four arms, before and after a wipe.

Training is excluded: the adapter is trained (or reused) before the clock starts.
Target: <= 30 s on the 2-core machine.

It also records where the time goes, from the decoder's counters (lab/decoder.py): prompt
rows (each token of the prompts' trie, evaluated once), reply rows (one per sequence per
step) and padding rows, and the seconds llama.cpp spent on each.

    python -m bench.wipe_test
"""

from __future__ import annotations

import os

# This measures generation itself: the class's reply cache (lab/reply_cache.py) would answer the
# repeated rounds from disk.
os.environ.setdefault("LAB_REPLY_CACHE", "0")  # noqa: E402

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
    session.agent.answer("warm up", "memory")  # model, embedder and decoder ready before timing
    spent = session.engine._decoder.spent
    spent.clear()
    report = wipe_test(session, scenario, adapter_file=adapter)
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
