#!/usr/bin/env bash
# Set up ./.venv if needed, then run the whole test suite (zoo-wide tests included).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"` for a quick pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/system-packages.sh
set +e
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # one torch thread per test worker: two workers on two cores never oversubscribe
.venv/bin/python -m pytest -n 2 --dist loadfile -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
