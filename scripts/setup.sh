#!/usr/bin/env bash
# Create ./.venv with archlab and its dependencies (idempotent; fast when already set up).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, torchvision, archlab, pytest, optuna, umap, pyarrow" >/dev/null 2>&1; then
  # torch's CUDA build and its nvidia packages take about 6 GB installed, plus the downloads (not cached, to keep the peak low).
  need_kb=$((8 * 1024 * 1024))
  free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
  if [ "$free_kb" -lt "$need_kb" ]; then
    echo "setup: only $((free_kb / 1024)) MB free on $(df -P . | awk 'NR==2 {print $6}');" \
         "installing torch==2.14.1 + torchvision==0.29.1 needs about 8 GB. Free some space and re-run." >&2
    exit 1
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-cache-dir torch==2.14.1 torchvision==0.29.1
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
fi
