"""The lab's portable llama.cpp build against pip's native one: does leaving out AMX cost speed?

scripts/llama_build.py builds llama.cpp with GGML_NATIVE=OFF and this CPU's instruction
sets named one by one (never AMX). This builds pip's default native wheel too
(GGML_NATIVE=ON, -march=native; once, into bench/cache/), then generates the same greedy
replies with each, alternating the two in fresh processes so machine noise falls on both.
Target: the portable build keeps >= 0.95 of the native build's tokens/s.

Run it only on a CPU without AMX: there the native build crashes on decode (that is the
point of the portable build), so there is nothing to compare.

    python -m bench.llama_build [--rounds 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / "cache"
ROOT = Path(__file__).resolve().parent.parent
MAX_TOKENS = 48


def native_site() -> Path:
    """pip's native build of the same version, installed into a folder of its own."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import llama_build

    site = CACHE / f"llama-native-{llama_build.VERSION}-site"
    if not (site / "llama_cpp").exists():
        wheels = CACHE / f"llama-native-{llama_build.VERSION}-wheel"
        print("building pip's native llama-cpp-python once (a few minutes)", flush=True)
        env = dict(os.environ, CMAKE_ARGS="-DLLAVA_BUILD=OFF")  # only llava off, as in the lab's build
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "--no-binary",
                        "llama-cpp-python", "-w", str(wheels), f"llama-cpp-python=={llama_build.VERSION}"],
                       check=True, env=env)
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site),
                        *map(str, wheels.glob("*.whl"))], check=True)
    return site


def child(model: str) -> None:
    """One measurement: generate every question's reply greedily, print tokens/s as JSON."""
    import llama_cpp

    from bench.generation import QUESTIONS

    llm = llama_cpp.Llama(model_path=model, n_ctx=2048, n_batch=512, n_threads=os.cpu_count(), seed=0,
                          verbose=False)
    prompts = [f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n" for q in QUESTIONS]
    llm.create_completion(prompts[0], max_tokens=4)  # warm-up
    tokens, seconds, replies = 0, 0.0, []
    for prompt in prompts:
        start = time.perf_counter()
        out = llm.create_completion(prompt, max_tokens=MAX_TOKENS, temperature=0.0, top_k=1, repeat_penalty=1.0,
                                    stop=["<|im_end|>"])
        seconds += time.perf_counter() - start
        tokens += out["usage"]["completion_tokens"]
        replies.append(out["choices"][0]["text"])
    print(json.dumps({"tokens_per_s": tokens / seconds, "tokens": tokens, "replies": replies,
                      "system_info": llama_cpp.llama_print_system_info().decode(),
                      "library": llama_cpp.__file__}))


def measure(model: str, pythonpath: str | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, str(ROOT)) if p)
    out = subprocess.run([sys.executable, "-m", "bench.llama_build", "--child", model], env=env,
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"a measurement died ({out.returncode}): {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)

    from bench.common import write_results
    from lab.llama_runtime import cpu_features
    from lab.models import default_model_path

    if "amx_int8" in Path("/proc/cpuinfo").read_text():
        raise SystemExit("this CPU has AMX: pip's native build crashes on it, so there is nothing to compare")
    model, site = str(default_model_path()), str(native_site())
    portable, native = [], []
    for _ in range(args.rounds):  # alternate, so a slow patch of the machine hits both builds
        portable.append(measure(model, None))
        native.append(measure(model, site))
    if portable[0]["replies"] != native[0]["replies"]:
        print("note: the two builds' replies differ in places (different kernels round differently)")
    p = statistics.median(r["tokens_per_s"] for r in portable)
    n = statistics.median(r["tokens_per_s"] for r in native)
    result = {
        "rounds": args.rounds, "questions_per_round": len(portable[0]["replies"]), "max_tokens": MAX_TOKENS,
        "portable_tokens_per_s": p, "native_tokens_per_s": n, "ratio": p / n,
        "portable_runs": [r["tokens_per_s"] for r in portable], "native_runs": [r["tokens_per_s"] for r in native],
        "portable_features": cpu_features(portable[0]["system_info"]),
        "native_features": cpu_features(native[0]["system_info"]),
        "native_library": native[0]["library"],
        "same_replies": portable[0]["replies"] == native[0]["replies"],
        "target": ">= 0.95",
    }
    result["passed"] = result["ratio"] >= 0.95
    print(f"portable {p:.1f} tok/s, native {n:.1f} tok/s, ratio {p / n:.3f} (target >= 0.95)")
    print("portable features:", " ".join(result["portable_features"]))
    print("native features:  ", " ".join(result["native_features"]))
    write_results("llama_build", result)


if __name__ == "__main__":
    main()
