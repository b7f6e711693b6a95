"""What pinned memory and usage signals cost a plain ask: the memory arm's retrieval before and after.

Issue #13 asks that an ask not get slower (within 1 ms) now that the memory arm also reads
the pinned memories, counts what it sent, prices each note in tokens and checks the class's
embedding cache. Measured in one run, interleaved question by question, so the machine's
noise falls on both sides alike:

    before   the retrieval as it was: embed the question (no disk cache), search, choose
    after    Agent.prepare as it is now, with no pinned memory, and with two pinned ones

Each question is new to its side (never embedded before), as a student's question is.

    python -m bench.retrieval_overhead [--memories 200] [--questions 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from bench.common import summary, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memories", type=int, default=200)
    parser.add_argument("--questions", type=int, default=60, help="new questions per side")
    args = parser.parse_args()
    os.environ["LAB_HOME"] = tempfile.mkdtemp(prefix="bench-retrieval-overhead-")

    from lab import prompting, recall
    from lab.agent import DEFAULT_K, DEFAULT_MIN_SCORE
    from lab.session import LabSession

    session = LabSession.open("bench")
    facts = [{"text": f"Meeting room {i} on floor {i % 9} seats {4 + i % 11} people."} for i in range(args.memories)]
    session.memory.add_many(facts)
    agent, store = session.agent, session.memory
    embedder = store.embedder.load()
    # 3 sides x N new questions, each a different wording of a room question.
    questions = [f"How many people fit in meeting room {i} ({side})?" for i in range(args.questions)
                 for side in ("a", "b", "c")]
    agent.prepare("warm-up question", "memory")

    def before(question: str) -> float:
        os.environ["LAB_EMBEDDING_CACHE"] = "0"  # the code before had no disk cache
        try:
            started = time.perf_counter()
            hits = store.search(question, k=DEFAULT_K, min_score=DEFAULT_MIN_SCORE)
            hits = recall.choose(hits, DEFAULT_K, DEFAULT_MIN_SCORE)
            prompting.memory_messages(question, [h.text for h in reversed(hits)])
            return (time.perf_counter() - started) * 1000
        finally:
            os.environ.pop("LAB_EMBEDDING_CACHE", None)

    def after(question: str) -> float:
        started = time.perf_counter()
        prepared = agent.prepare(question, "memory")
        agent._count_sent([prepared])  # what answering adds after the reply: the usage counts
        return (time.perf_counter() - started) * 1000

    sides = {"before": [], "after": [], "after_two_pinned": []}
    pinned_ids: list[int] = []
    for i in range(args.questions):
        q_before, q_after, q_pinned = questions[3 * i:3 * i + 3]
        sides["before"].append(before(q_before))
        for memory_id in pinned_ids:
            store.set_pinned(memory_id, False)
        sides["after"].append(after(q_after))
        if not pinned_ids:
            pinned_ids = [store.add("Always answer in one short sentence.").id,
                          store.add("The user prefers metric units.").id]
        for memory_id in pinned_ids:
            store.set_pinned(memory_id, True)
        sides["after_two_pinned"].append(after(q_pinned))
    parts = added_parts(store, agent.engine, embedder, pinned_ids)
    result = {"memories": args.memories, "questions_per_side": args.questions, "added_parts_ms": parts,
              **{side: summary(values) for side, values in sides.items()},
              "added_p50_ms": round(statistics.median(sides["after"]) - statistics.median(sides["before"]), 3),
              "added_p50_ms_two_pinned": round(statistics.median(sides["after_two_pinned"])
                                               - statistics.median(sides["before"]), 3),
              "target": "added p50 within 1 ms"}
    result["passed"] = abs(result["added_p50_ms"]) <= 1.0
    for side in sides:
        print(f"{side:18} p50 {result[side]['p50_ms']:6.2f} ms  p90 {result[side]['p90_ms']:6.2f} ms")
    print("what the new steps cost alone (p50, ms): " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    print(f"added p50: {result['added_p50_ms']:+.2f} ms (two pinned: {result['added_p50_ms_two_pinned']:+.2f} ms); "
          "target within 1 ms")
    write_results("retrieval_overhead", result)
    session.close()


def added_parts(store, engine, embedder, pinned_ids, rounds: int = 300) -> dict:
    """Each step the ask gained, timed alone many times: small and steady, so noise that swamps
    a 20 ms embedding cannot hide them."""
    from lab import embedding_cache
    from lab.pinned import note_tokens

    vector = embedder.embed_one("How many people fit in meeting room 7?")
    hits = store.search_vector(vector, k=3)
    cache = embedding_cache.shared_cache()

    def timed(step) -> float:
        values = []
        for n in range(rounds):
            started = time.perf_counter()
            step(n)
            values.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(values), 4)

    return {"pinned_hits_two_pinned": timed(lambda n: store.pinned_hits(vector)),
            "note_tokens_three_notes": timed(lambda n: [note_tokens(engine, h.text) for h in hits]),
            "embedding_cache_miss_and_store": timed(lambda n: (cache.get(f"bench-{n}", embedder.dim),
                                                               cache.put(f"bench-{n}", vector[None, :]))),
            "usage_count": timed(lambda n: store.record_use(sent=[h.id for h in hits]))}


if __name__ == "__main__":
    main()
