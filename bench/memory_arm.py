"""Added latency of the memory arm: what retrieval and the injected notes cost per question.

Both arms answer the same questions with max_tokens=1, so the time is everything up to
the first token: for the base arm, the prompt; for the memory arm, embedding the
question, the index search and the longer prompt. The difference is the added latency.
Generation after the first token runs at the same speed in both arms.
Target: <= 30 ms per question. Measured twice: with the default threshold, and with
every question given a note (threshold 0) (threshold 0: the worst case). Each injected token must be read by the
model before it answers (prefill, about 3 ms a token for this model on 2 cores), so the
added latency splits into retrieval (embedding + search) and prefill.

    python -m bench.memory_arm [--memories 200] [--rounds 3]
"""

from __future__ import annotations

import os

# This measures generation itself: the class's reply cache (lab/reply_cache.py) would answer the
# repeated rounds from disk, and its embedding cache (lab/embedding_cache.py) the query's vector.
os.environ.setdefault("LAB_REPLY_CACHE", "0")  # noqa: E402
os.environ.setdefault("LAB_EMBEDDING_CACHE", "0")  # noqa: E402

import argparse
import statistics

from bench.common import summary, write_results
from bench.prompt_formats import INVENTED, UNRELATED
from lab.agent import DEFAULT_K, DEFAULT_MIN_SCORE
from lab.session import LabSession


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memories", type=int, default=200, help="store size (filler memories added)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    session = LabSession.open("bench-memory-arm")
    session.memory.wipe()
    facts = [{"text": f[0]} for f in INVENTED]
    filler = [{"text": f"Meeting room {i} on floor {i % 9} seats {4 + i % 11} people."}
              for i in range(max(0, args.memories - len(facts)))]
    session.memory.add_many(facts + filler)
    questions = [f[1] for f in INVENTED] + [f[2] for f in INVENTED] + [q for q, _ in UNRELATED]
    agent = session.agent
    for q in questions[:3]:  # warm-up: model, embedder, index
        agent.answer(q, "memory", max_tokens=1)

    def measure(min_score: float) -> dict:
        base_ms, memory_ms, retrieval_ms, added_ms, extra_tokens = [], [], [], [], []
        for _ in range(args.rounds):
            for q in questions:
                base = agent.answer(q, "base", max_tokens=1)
                agent.memory.embedder.clear_cache()  # time it as a new question: embedded, not cached
                memory = agent.answer(q, "memory", max_tokens=1, min_score=min_score)
                base_ms.append(base.latency_ms)
                memory_ms.append(memory.latency_ms)
                retrieval_ms.append(memory.retrieval_ms)
                added_ms.append(memory.latency_ms - base.latency_ms)
                extra_tokens.append(memory.prompt_tokens - base.prompt_tokens)
        extra = statistics.fmean(extra_tokens)
        prefill_ms = statistics.fmean(added_ms) - statistics.fmean(retrieval_ms)
        return {"min_score": min_score, "k": DEFAULT_K, "base_first_token": summary(base_ms),
                "memory_first_token": summary(memory_ms), "retrieval": summary(retrieval_ms),
                "added": summary(added_ms), "extra_prompt_tokens_mean": extra,
                "prefill_ms_per_extra_token": prefill_ms / extra if extra else None}

    # The defaults (threshold 0.5: unrelated questions get no note) and the worst case (threshold 0).
    default, worst = measure(DEFAULT_MIN_SCORE), measure(0.0)
    result = {"memories": len(session.memory), "questions": len(questions), "rounds": args.rounds,
              "default_settings": default, "always_a_note": worst,
              "target": "added p50 <= 30 ms",
              "passed": {"retrieval_only": default["retrieval"]["p50_ms"] <= 30,
                         "default_settings": default["added"]["p50_ms"] <= 30,
                         "always_a_note": worst["added"]["p50_ms"] <= 30}}
    for label, r in (("default settings", default), ("a note for every question", worst)):
        print(f"{label}: added p50 {r['added']['p50_ms']:.1f} ms = retrieval p50 {r['retrieval']['p50_ms']:.1f} ms "
              f"+ {r['extra_prompt_tokens_mean']:.0f} extra prompt tokens at "
              f"{r['prefill_ms_per_extra_token'] or 0:.1f} ms each (target <= 30 ms)")
    write_results("memory_arm", result)
    session.memory.wipe()
    session.close()


if __name__ == "__main__":
    main()
