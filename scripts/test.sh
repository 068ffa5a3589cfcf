#!/usr/bin/env bash
# The test command: unit and integration tests, then the smoke-profile book (notebooks executed + HTML).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
bash scripts/setup.sh
.venv/bin/python -m pytest -q -p no:cacheprovider tests
.venv/bin/rrgkit book --profile smoke
