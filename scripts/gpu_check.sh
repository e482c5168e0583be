#!/usr/bin/env bash
# Issue 20's GPU figures in one call (an estimated 12 minutes on one H100, 8 of them training):
#   1. training throughput at meta-batch 8, batch 64 with the time split and the share of the
#      eager floor (benchmarks/bench_train.py),
#   2. an 8-minute GHN-2 training run on CIFAR-10 (the GHN is kept in OUT for the analyses),
#   3. held-out mean top-1 of its predicted parameters on 100 unseen test architectures.
#
#   bash scripts/gpu_check.sh CIFAR10 OUT
#
# CIFAR10: a CIFAR-10 folder (ImageFolder tree or torchvision's python batches) or the .tar.gz
# of one (unpacked into OUT). Environment: DEVICE (default cuda), MINUTES (8), META_BATCH (8),
# BATCH_SIZE (64), BENCH_STEPS (10), BENCH_RUNS (3), ARCHS (100), MAX_IMAGES (1000), PYTHON.
# Each step's output is also written under OUT; a failed step stops the script. A finished GHN
# already in OUT is never replaced (archlab train refuses): give a new OUT for a new run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then
  echo "usage: bash scripts/gpu_check.sh CIFAR10_DIR_OR_TARBALL OUT_DIR" >&2
  exit 2
fi
data=$1
out=$2
PY=${PYTHON:-python3}
device=${DEVICE:-cuda}
mb=${META_BATCH:-8}
bs=${BATCH_SIZE:-64}
mkdir -p "$out"
if [ -f "$data" ]; then
  case "$data" in
    *.tar.gz|*.tgz) ;;
    *) echo "gpu_check: $data is a file but not a .tar.gz of a CIFAR-10 folder" >&2; exit 2 ;;
  esac
  top=$( (tar -tzf "$data" 2>/dev/null || true) | head -1 | cut -d/ -f1)  # tar stops early on SIGPIPE
  if [ -z "$top" ]; then
    echo "gpu_check: $data is not a readable .tar.gz" >&2
    exit 2
  fi
  [ -d "$out/$top" ] || tar -xzf "$data" -C "$out"
  data="$out/$top"
elif [ ! -d "$data" ]; then
  echo "gpu_check: no CIFAR-10 folder or tarball at $data" >&2
  exit 2
fi
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

echo "== 1/3 throughput (meta-batch $mb, batch $bs, $device)"
"$PY" benchmarks/bench_train.py --device "$device" --dataset cifar10 --data-dir "$data" \
  --meta-batch "$mb" --batch-size "$bs" --steps "${BENCH_STEPS:-10}" --runs "${BENCH_RUNS:-3}" \
  | tee "$out/bench_train.txt"

echo "== 2/3 training for ${MINUTES:-8} minutes"
"$PY" -m archlab train --ghn ghn2 --dataset cifar10 --data-dir "$data" --minutes "${MINUTES:-8}" \
  --meta-batch "$mb" --batch-size "$bs" --device "$device" --out "$out/ghn2_cifar10_gpu.pt" \
  --no-progress 2>&1 | tee "$out/train.log"

echo "== 3/3 held-out: ${ARCHS:-100} test architectures"
"$PY" -m archlab evaluate --ckpt "$out/ghn2_cifar10_gpu.pt" --split test --limit "${ARCHS:-100}" \
  --dataset cifar10 --data-dir "$data" --max-images "${MAX_IMAGES:-1000}" --device "$device" \
  --json "$out/heldout.json" --no-progress | tee "$out/evaluate.txt"
