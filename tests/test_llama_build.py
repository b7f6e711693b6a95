"""scripts/llama_build.py: the CMake flags chosen per CPU, and the wheel folder keyed by them.

Pure functions, so a Sapphire Rapids flag line stands in for a CPU this machine may not
have: it shows from the flags alone that AMX stays off where the CPU offers it.
"""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("llama_build", ROOT / "scripts" / "llama_build.py")
llama_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(llama_build)

# /proc/cpuinfo flags of an Intel Xeon (Sapphire Rapids) with AMX, trimmed of unrelated ones.
SAPPHIRE_RAPIDS = ("fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma bmi1 bmi2 avx2 avx512f avx512dq avx512cd "
                   "avx512bw avx512vl avx512ifma avx512vbmi avx512_vbmi2 avx512_vnni avx512_bitalg "
                   "avx512_vpopcntdq avx_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8")
# An older AVX2-only server (Haswell).
HASWELL = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma bmi1 bmi2 avx2"


def as_dict(args):
    return dict(a[2:].split("=", 1) for a in args)


def test_an_amx_cpu_gets_every_instruction_set_but_amx():
    flags = as_dict(llama_build.cmake_args("x86_64", set(SAPPHIRE_RAPIDS.split())))
    assert flags["GGML_NATIVE"] == "OFF"  # -march=native would turn AMX back on
    assert {flags[o] for o in ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")} == {"OFF"}
    for option in ("GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_AVX512", "GGML_AVX512_VNNI",
                   "GGML_AVX512_BF16", "GGML_AVX512_VBMI", "GGML_AVX_VNNI"):
        assert flags[option] == "ON", option
    assert flags["LLAVA_BUILD"] == "OFF"


def test_an_avx2_cpu_gets_no_avx512():
    flags = as_dict(llama_build.cmake_args("x86_64", set(HASWELL.split())))
    assert flags["GGML_AVX2"] == "ON" and flags["GGML_AVX512"] == "OFF" and flags["GGML_AVX_VNNI"] == "OFF"


def test_avx512_needs_all_five_foundation_flags():
    partial = set(HASWELL.split()) | {"avx512f", "avx512cd"}
    assert as_dict(llama_build.cmake_args("x86_64", partial))["GGML_AVX512"] == "OFF"


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "ppc64le", "riscv64"])
def test_other_cpus_get_no_x86_flag(machine):
    args = llama_build.cmake_args(machine, set(SAPPHIRE_RAPIDS.split()))
    assert args == ["-DLLAVA_BUILD=OFF"]  # ggml's own native build: there is no AMX there


def test_the_wheel_folder_changes_with_the_flags():
    amx = llama_build.cmake_args("x86_64", set(SAPPHIRE_RAPIDS.split()))
    avx2 = llama_build.cmake_args("x86_64", set(HASWELL.split()))
    assert llama_build.build_key(amx) != llama_build.build_key(avx2)
    assert llama_build.build_key(amx) == llama_build.build_key(list(amx))


def test_expected_features_always_forbid_amx():
    expected = llama_build.expected_features(llama_build.cmake_args("x86_64", set(SAPPHIRE_RAPIDS.split())))
    assert expected["AMX_INT8"] is False and expected["AVX512"] is True


def test_check_features_reports_each_mismatch():
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 |"
    problems = llama_build.check_features(info, {"AVX2": True, "AVX512": True, "AMX_INT8": False})
    assert problems == ["AVX512 is missing from the build", "AMX_INT8 is compiled in but should be off"]
    assert llama_build.check_features(info.replace("AMX_INT8 = 1", "AMX_INT8 = 0"), {"AMX_INT8": False}) == []


def test_cpuinfo_parsing_reads_the_flags_line():
    text = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx2 amx_int8\nbugs\t\t: spectre_v1\n"
    assert llama_build.read_cpu_flags(text) == {"fpu", "avx2", "amx_int8"}


def test_the_installed_library_matches_this_machines_flags():
    """What set-up verified stays true: the installed llama.cpp has the flags chosen here."""
    import llama_cpp

    args = llama_build.this_machine_args()
    info = llama_cpp.llama_print_system_info().decode()
    assert llama_build.check_features(info, llama_build.expected_features(args)) == []
