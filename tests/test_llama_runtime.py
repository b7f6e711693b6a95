"""lab/llama_runtime.py on the installed llama.cpp and the real model."""

import subprocess
import sys

import pytest

from lab import llama_runtime
from lab.errors import LabError


def test_no_amx_kernels_are_compiled_in():
    """Fails on any machine where a change brings back a build with ggml's AMX kernels:
    on an AMX CPU they segfault on every decode (llama.cpp issue 20824)."""
    info = llama_runtime.system_info()
    assert "AMX_INT8 = 1" not in info, info
    assert not llama_runtime.has_amx(info)


def test_cpu_features_are_read_from_llama_cpp():
    features = llama_runtime.cpu_features()
    assert features and all(" " not in f for f in features)
    record = llama_runtime.build_record()
    if record and "-DGGML_AVX2=ON" in record["cmake_args"]:
        assert "AVX2" in features


def test_check_answers_runs_a_real_greedy_answer_in_a_child():
    result = llama_runtime.check_answers()
    assert "4" in result.answer  # deterministic: greedy decoding of the bundled model
    assert result.to_json()["amx"] is False


def test_a_child_killed_by_a_signal_becomes_one_line_naming_the_fix():
    crash = ("import os, signal, json; print(json.dumps({'cpu_features': ['AVX2', 'AMX_INT8']}), flush=True); "
             "os.kill(os.getpid(), signal.SIGSEGV)")
    child = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True)
    assert child.returncode == -11
    message = llama_runtime.crash_message(child.returncode, llama_runtime._last_json(child.stdout)["cpu_features"])
    assert "\n" not in message and "SIGSEGV" in message and "AMX" in message and "scripts/setup.sh" in message


def test_an_illegal_instruction_names_the_build_machine():
    assert "instruction this CPU lacks" in llama_runtime.crash_message(-4, ["AVX2"])


def test_a_bad_model_path_is_one_line():
    with pytest.raises(LabError) as error:
        llama_runtime.check_answers("/nonexistent/model.gguf")
    assert "model file not found" in str(error.value) and "\n" not in str(error.value)
