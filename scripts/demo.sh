#!/usr/bin/env bash
# Set up ./.venv if needed, then run archlab's main job end to end on the embedded digits data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/archlab demo "$@"
