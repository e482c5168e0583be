#!/usr/bin/env bash
# Create ./.venv with archlab and its dependencies (idempotent; fast when already set up).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, torchvision, archlab, pytest, optuna, umap" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
fi
