"""The llama.cpp build the lab runs on: its CPU features, and a check that it really answers.

On an Intel CPU with AMX, a llama.cpp compiled with ggml's AMX kernels (pip's default
native build there) segfaults on every decode (upstream llama.cpp issue 20824).
scripts/llama_build.py builds without them; this module is how the lab sees the result:

- `cpu_features()` reads llama.cpp's own system info ("AVX2 = 1 | ... | AMX_INT8 = 1").
- `check_answers()` runs one real greedy answer of the model in a child process, so a
  crash becomes one line that names the cause and the fix instead of a bare
  "Segmentation fault" that takes the caller down with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

CHECK_QUESTION = "What is 2 + 2?"
REBUILD_FIX = "fix: delete .venv/ and .wheels/, then run bash scripts/setup.sh (it builds llama.cpp without AMX)"


def system_info() -> str:
    """llama.cpp's own line of compiled-in features, e.g. 'CPU : SSE3 = 1 | AVX2 = 1 | ...'."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace")


def cpu_features(info: str | None = None) -> list[str]:
    """The features a system-info line reports as on.

    >>> cpu_features("CPU : SSE3 = 1 | AVX2 = 1 | AMX_INT8 = 0 | LLAMAFILE = 1 |")
    ['SSE3', 'AVX2', 'LLAMAFILE']
    """
    info = system_info() if info is None else info
    features = []
    for part in info.split("|"):
        name, _, value = part.rpartition(":")[2].partition("=")
        if value.strip() == "1" and name.strip() not in features:
            features.append(name.strip())
    return features


def has_amx(info: str | None = None) -> bool:
    """True when ggml's AMX kernels are compiled in (the build that crashes)."""
    return any(f.startswith("AMX") for f in cpu_features(info))


def build_record() -> dict | None:
    """What scripts/llama_build.py recorded in the venv: the wheel and its CMake arguments."""
    path = Path(sys.prefix) / "llama-cpp-build.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def refuse_amx_build() -> None:
    """Raise a one-line LabError before loading a model on a build that would segfault."""
    if has_amx() and not os.environ.get("LAB_ALLOW_AMX"):
        raise LabError("this llama.cpp was built with ggml's AMX kernels, which crash on decode "
                       f"(llama.cpp issue 20824); {REBUILD_FIX}")


def describe() -> dict:
    """The `llama_cpp` part of `python -m lab status`."""
    import llama_cpp

    record = build_record() or {}
    info = system_info()
    return {"version": llama_cpp.__version__, "cpu_features": cpu_features(info), "amx": has_amx(info),
            "cmake_args": record.get("cmake_args")}


@dataclass
class CheckResult:
    answer: str
    cpu_features: list[str]
    seconds: float

    def to_json(self) -> dict:
        return {"ok": True, "question": CHECK_QUESTION, "answer": self.answer,
                "cpu_features": self.cpu_features, "amx": any(f.startswith("AMX") for f in self.cpu_features),
                "seconds": round(self.seconds, 2)}


def crash_message(returncode: int, features: list[str] | None) -> str:
    """One line for a child that died by a signal: what it means here, and what to do.

    >>> print(crash_message(-11, ["AVX2", "AMX_INT8"]).split(";")[0])
    llama.cpp crashed (SIGSEGV) answering a test question: ggml's AMX kernels are compiled in (llama.cpp issue 20824)
    """
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    if features and any(f.startswith("AMX") for f in features):
        cause = "ggml's AMX kernels are compiled in (llama.cpp issue 20824)"
    elif name == "SIGILL":
        cause = "it uses an instruction this CPU lacks (was it built on another machine?)"
    else:
        cause = "the native library failed inside the model's first decode"
    return f"llama.cpp crashed ({name}) answering a test question: {cause}; {REBUILD_FIX}"


def check_answers(model_path: str | os.PathLike | None = None, *, timeout_s: float = 300) -> CheckResult:
    """Answer CHECK_QUESTION greedily in a child process; raise one LabError line if it cannot."""
    command = [sys.executable, "-m", "lab.llama_runtime"]
    if model_path:
        command.append(str(model_path))
    started = time.monotonic()
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                               env={**os.environ, "LAB_ALLOW_AMX": "1"})
    except subprocess.TimeoutExpired:
        raise LabError(f"llama.cpp did not answer a test question within {timeout_s:.0f} s; "
                       "is the machine overloaded? Try again, or pass --model PATH to a smaller GGUF")
    seconds = time.monotonic() - started
    report = _last_json(child.stdout)
    if child.returncode < 0:
        raise LabError(crash_message(child.returncode, (report or {}).get("cpu_features")))
    if child.returncode != 0 or report is None or "answer" not in report:
        last = (report or {}).get("error") or (child.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabError(f"llama.cpp could not answer a test question: {last}")
    if not report["answer"].strip():
        raise LabError("the model gave an empty answer to a test question: the GGUF may be damaged; "
                       "reinstall with bash scripts/setup.sh, or pass --model PATH to another GGUF")
    return CheckResult(answer=report["answer"], cpu_features=report["cpu_features"], seconds=seconds)


def _last_json(text: str) -> dict | None:
    for line in reversed(text.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _child(model_path: str | None) -> int:
    """The child side of check_answers: report the features first, so a crash still names them."""
    print(json.dumps({"cpu_features": cpu_features()}), flush=True)
    from lab.engine import Engine

    try:
        engine = Engine(model_path)
        reply = engine.chat([{"role": "user", "content": CHECK_QUESTION}], max_tokens=16)
    except LabError as error:
        print(json.dumps({"error": str(error)}), flush=True)
        return 1
    print(json.dumps({"cpu_features": cpu_features(), "answer": reply.text}), flush=True)
    os._exit(0)  # skip llama.cpp's teardown: the answer is what was being checked


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1] if len(sys.argv) > 1 else None))
