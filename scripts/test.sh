#!/usr/bin/env bash
# Sets everything up, test tools and chromium included, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec .venv/bin/python -m pytest tests "$@"
