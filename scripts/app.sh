#!/usr/bin/env bash
# Sets everything up (first run: ~15 min, mostly building llama.cpp) and serves the app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python server.py "$@"
