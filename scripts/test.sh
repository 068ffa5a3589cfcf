#!/usr/bin/env bash
# The test command: unit and integration tests (the workflow lint included), the smoke-profile book
# (notebooks executed + HTML), then every page of that book checked in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
bash scripts/setup.sh
bash scripts/ensure-chromium.sh
.venv/bin/python -m pytest -q -p no:cacheprovider -m "not browser" tests
.venv/bin/rrgkit book --profile smoke
start=$(date +%s)
RRGKIT_BOOK_HTML=book/_build/html .venv/bin/python -m pytest -q -p no:cacheprovider -m browser tests/test_book_browser.py
echo "browser check: $(( $(date +%s) - start )) s; a screenshot of every page is in book/_build/screenshots/"
