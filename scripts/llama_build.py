"""Builds and installs llama-cpp-python for this machine, without ggml's AMX kernels.

Why not pip's own build: pip compiles llama.cpp with GGML_NATIVE=ON (-march=native). On
an Intel CPU with AMX (Sapphire Rapids and later) that compiles ggml's AMX backend in,
and every decode segfaults in ggml_backend_amx_mul_mat (upstream llama.cpp issue 20824).
So on x86-64 we read the CPU's features from /proc/cpuinfo and turn each ggml instruction
set on by hand (GGML_NATIVE=OFF): the machine keeps AVX2/AVX-512/VNNI and its speed, and
AMX stays off whatever the CPU has. On any other CPU (an ARM laptop, an aarch64 server)
there is no AMX to avoid, so ggml's native build is kept and no x86 flag is passed.

Why a wheel folder of our own: pip's wheel cache is keyed by the source, not by
CMAKE_ARGS, so a wheel built earlier with other flags would be reused without a word.
The wheel goes in .wheels/<flags hash>/ and is installed from there with --no-index;
afterwards the installed library's own system info is checked against the flags.

Stdlib only: it runs before anything else is installed.

    python scripts/llama_build.py install   build the wheel if this flag set has none, install it
    python scripts/llama_build.py verify    check the installed library against the flags
    python scripts/llama_build.py --print   print the CMake arguments for this machine
"""
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

VERSION = "0.3.36"  # keep in step with requirements-llama.txt
ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / ".wheels"

# cpuinfo flag(s) -> the ggml option that compiles kernels for it. AVX-512 foundation
# is all five of F/CD/VL/DQ/BW together: ggml passes all five -m flags for GGML_AVX512.
X86_OPTIONS = [
    ("GGML_SSE42", ["sse4_2"]),
    ("GGML_AVX", ["avx"]),
    ("GGML_AVX2", ["avx2"]),
    ("GGML_BMI2", ["bmi2"]),
    ("GGML_FMA", ["fma"]),
    ("GGML_F16C", ["f16c"]),
    ("GGML_AVX_VNNI", ["avx_vnni"]),
    ("GGML_AVX512", ["avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"]),
    ("GGML_AVX512_VBMI", ["avx512vbmi"]),
    ("GGML_AVX512_VNNI", ["avx512_vnni"]),
    ("GGML_AVX512_BF16", ["avx512_bf16"]),
]
# Never on, even where /proc/cpuinfo lists amx_tile/amx_int8/amx_bf16: see the docstring.
AMX_OPTIONS = ["GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"]
# The lab uses neither the multimodal library nor the server; dropping llava saves
# about half the build.
COMMON_ARGS = ["-DLLAVA_BUILD=OFF"]

# What llama_print_system_info() calls each option's feature ("AVX512 = 1").
SYSTEM_INFO_NAMES = {
    "GGML_SSE42": "SSE3", "GGML_AVX": "AVX", "GGML_AVX2": "AVX2", "GGML_BMI2": "BMI2",
    "GGML_FMA": "FMA", "GGML_F16C": "F16C", "GGML_AVX_VNNI": "AVX_VNNI",
    "GGML_AVX512": "AVX512", "GGML_AVX512_VBMI": "AVX512_VBMI",
    "GGML_AVX512_VNNI": "AVX512_VNNI", "GGML_AVX512_BF16": "AVX512_BF16",
}


def is_x86_64(machine: str) -> bool:
    return machine.lower() in ("x86_64", "amd64", "x64")


def read_cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of the first CPU in a /proc/cpuinfo text.

    >>> sorted(read_cpu_flags("processor : 0\\nflags\\t\\t: fpu avx2 fma\\n"))
    ['avx2', 'fma', 'fpu']
    """
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def cmake_args(machine: str, cpu_flags: set[str]) -> list[str]:
    """The CMake arguments for llama.cpp on this CPU: its own instruction sets, never AMX.

    >>> cmake_args("aarch64", set())
    ['-DLLAVA_BUILD=OFF']
    >>> cmake_args("x86_64", {"avx", "avx2", "amx_int8"})[:4]
    ['-DLLAVA_BUILD=OFF', '-DGGML_NATIVE=OFF', '-DGGML_SSE42=OFF', '-DGGML_AVX=ON']
    """
    if not is_x86_64(machine):
        return list(COMMON_ARGS)
    args = COMMON_ARGS + ["-DGGML_NATIVE=OFF"]
    for option, needs in X86_OPTIONS:
        on = all(flag in cpu_flags for flag in needs)
        args.append(f"-D{option}={'ON' if on else 'OFF'}")
    args += [f"-D{option}=OFF" for option in AMX_OPTIONS]
    return args


def expected_features(args: list[str]) -> dict[str, bool]:
    """What the installed library's system info must say for these arguments."""
    expected = {"AMX_INT8": False}
    for arg in args:
        option, _, value = arg[2:].partition("=")
        if option in SYSTEM_INFO_NAMES and option != "GGML_SSE42":
            expected[SYSTEM_INFO_NAMES[option]] = value == "ON"
    return expected


def build_key(args: list[str]) -> str:
    """Names the wheel folder: a wheel built with other flags never matches."""
    text = json.dumps([VERSION, platform.machine(), sys.version_info[:2], args])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def this_machine_args() -> list[str]:
    flags = set()
    if Path("/proc/cpuinfo").exists():
        flags = read_cpu_flags(Path("/proc/cpuinfo").read_text())
    return cmake_args(platform.machine(), flags)


def pip(*args: str, env: dict | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env=env)


def ensure_wheel(args: list[str]) -> Path:
    folder = WHEELS / f"llama_cpp_python-{VERSION}-{build_key(args)}"
    wheels = sorted(folder.glob(f"llama_cpp_python-{VERSION}-*.whl"))
    if wheels:
        return wheels[-1]
    print(f"building llama-cpp-python {VERSION} with {' '.join(args)} (a few minutes, once)",
          flush=True)
    env = dict(os.environ, CMAKE_ARGS=" ".join(args))
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
    staging = folder.with_name(folder.name + ".partial")
    started = time.monotonic()
    # --no-cache-dir: never take a wheel pip built before with other flags.
    pip("wheel", "--no-cache-dir", "--no-deps", "--no-binary", "llama-cpp-python",
        "-w", str(staging), f"llama-cpp-python=={VERSION}", env=env)
    (staging / "build.json").write_text(json.dumps(
        {"cmake_args": args, "seconds": round(time.monotonic() - started, 1)}))
    staging.rename(folder)
    return sorted(folder.glob(f"llama_cpp_python-{VERSION}-*.whl"))[-1]


def installed_system_info() -> str:
    out = subprocess.run(
        [sys.executable, "-c",
         "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
        capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"error: llama_cpp does not import after install: {out.stderr.strip()[-300:]}")
    return out.stdout


def check_features(system_info: str, expected: dict[str, bool]) -> list[str]:
    """Mismatches between the library's system info and the flags it was built with.

    >>> check_features("CPU : AVX2 = 1 | AMX_INT8 = 1 |", {"AVX2": True, "AMX_INT8": False})
    ['AMX_INT8 is compiled in but should be off']
    """
    problems = []
    for name, want in expected.items():
        has = f" {name} = 1 " in f" {system_info.replace('|', ' | ')} "
        if has and not want:
            problems.append(f"{name} is compiled in but should be off")
        elif want and not has:
            problems.append(f"{name} is missing from the build")
    return problems


def install(args: list[str]) -> None:
    wheel = ensure_wheel(args)
    # --no-deps: its few pure-Python dependencies come with requirements.txt next.
    pip("install", "--no-index", "--no-deps", "--force-reinstall", str(wheel))
    record = {"wheel": wheel.name, "folder": wheel.parent.name, "cmake_args": args}
    (Path(sys.prefix) / "llama-cpp-build.json").write_text(json.dumps(record, indent=1))


def verify(args: list[str]) -> None:
    problems = check_features(installed_system_info(), expected_features(args))
    if problems:
        raise SystemExit("error: the installed llama.cpp does not match its build flags ("
                         + "; ".join(problems) + "); delete .wheels/ and run set-up again")


def main() -> None:
    args = this_machine_args()
    command = sys.argv[1] if len(sys.argv) > 1 else "--print"
    if command == "--print":
        print(" ".join(args))
    elif command == "install":
        install(args)
    elif command == "verify":
        verify(args)
    else:
        raise SystemExit("usage: python scripts/llama_build.py [--print | install | verify]")


if __name__ == "__main__":
    main()
