"""Generation speed: the agent's base arm against raw llama-cpp-python on the same prompts.

The lab wraps llama.cpp in a lock, a chat template and a streaming loop; this checks the
wrapping costs (almost) nothing. Target: tokens/s ratio (agent / raw) >= 0.95.

    python -m bench.generation [--rounds 5]
"""

from __future__ import annotations

import os

# This measures generation itself: the class's reply cache (lab/reply_cache.py) would answer the
# repeated rounds from disk.
os.environ.setdefault("LAB_REPLY_CACHE", "0")  # noqa: E402

import argparse
import statistics
import time

import llama_cpp

from bench.common import write_results
from lab.decoder import MICRO_BATCH
from lab.engine import DEFAULT_MAX_TOKENS, DEFAULT_STOP
from lab.session import LabSession

QUESTIONS = [
    "What is the capital of France?", "Explain photosynthesis in simple words.",
    "What is the refund window at Acme Corp?", "Write a sentence about the sea.",
    "Who wrote Romeo and Juliet?", "Why is the sky blue?", "Name three primary colours.",
    "How do vaccines work?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    session = LabSession.open("bench-generation")
    session.memory.wipe()
    engine = session.engine
    # The raw baseline: a second Llama on the same file, with the decoder's attention settings
    # (flash attention, micro-batches of 32: lab/decoder.py), so both give the same replies.
    raw = llama_cpp.Llama(model_path=str(engine.path), n_ctx=2048, n_batch=512, n_ubatch=MICRO_BATCH,
                          flash_attn=True, seed=0, n_threads=engine._llm.context_params.n_threads, verbose=False)

    agent_rates, raw_rates = [], []
    agent_tokens = raw_tokens = 0
    agent_seconds = raw_seconds = 0.0
    for _ in range(args.rounds):
        for question in QUESTIONS:
            # The agent's base arm, timed from the caller's side: validation, prompt, lock, streaming.
            start = time.perf_counter()
            answer = session.agent.answer(question, "base")
            seconds = time.perf_counter() - start
            agent_rates.append(answer.completion_tokens / seconds)
            agent_tokens += answer.completion_tokens
            agent_seconds += seconds

            # Raw llama-cpp-python on the exact same prompt text, stop sequences and token limit.
            start = time.perf_counter()
            out = raw.create_completion(answer.prompt, max_tokens=DEFAULT_MAX_TOKENS, temperature=0.0, top_k=1,
                                        repeat_penalty=1.0, stop=list(DEFAULT_STOP))
            seconds = time.perf_counter() - start
            n = out["usage"]["completion_tokens"]
            raw_rates.append(n / seconds)
            raw_tokens += n
            raw_seconds += seconds
            if out["choices"][0]["text"].strip() != answer.answer:
                raise SystemExit(f"outputs differ for {question!r}: the comparison would be unfair")

    result = {
        "rounds": args.rounds, "questions": len(QUESTIONS), "max_tokens": DEFAULT_MAX_TOKENS,
        "agent_tokens_per_s": agent_tokens / agent_seconds, "raw_tokens_per_s": raw_tokens / raw_seconds,
        "agent_median_tokens_per_s": statistics.median(agent_rates),
        "raw_median_tokens_per_s": statistics.median(raw_rates),
    }
    result["ratio"] = result["agent_tokens_per_s"] / result["raw_tokens_per_s"]
    result["target"] = ">= 0.95"
    result["passed"] = result["ratio"] >= 0.95
    print(f"agent {result['agent_tokens_per_s']:.1f} tok/s, raw {result['raw_tokens_per_s']:.1f} tok/s, "
          f"ratio {result['ratio']:.3f} (target >= 0.95)")
    write_results("generation", result)
    session.close()


if __name__ == "__main__":
    main()
