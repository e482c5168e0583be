"""Benchmark: generating TRAIN genotypes with metadata (analytic params, FLOPs, graph nodes).

    /work/venv/bin/python benchmarks/bench_generate.py [--n 3000] [--repeats 3] [--workers 2]

Prints, per configuration, the median over ``--repeats`` runs of generating ``--n`` records and
serialising them to JSON Lines, the rate in archs/s and the projected time for 1,000,000 TRAIN
genotypes with the given number of workers. The one-time cost of computing the reserved VAL/TEST
hashes (once per process) is reported separately.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archlab.space import generate_split, write_split  # noqa: E402
from archlab.space._splits import reserved_hashes  # noqa: E402


def _time_run(n: int, workers: int, seed: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        write_split(generate_split("train", n=n, seed=seed, workers=workers), os.path.join(d, "t.jsonl"))
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    t0 = time.perf_counter()
    reserved_hashes("train")
    setup = time.perf_counter() - t0
    print(f"one-time reserved VAL/TEST hashes: {setup:.2f}s per process  (cpus: {os.cpu_count()})")
    print(f"{'workers':>7} {'N':>7} {'median s':>9} {'archs/s':>9} {'1M projected':>13}")
    for workers in sorted({1, args.workers}):
        n = args.n * workers
        times = [_time_run(n, workers, seed=100 + r) for r in range(args.repeats)]
        med = statistics.median(times)
        rate = n / med
        if workers == 1:
            proj = 1_000_000 / (rate * args.workers) + setup
            label = f"{proj / 60:.1f} min@{args.workers}w*"
        else:
            proj = 1_000_000 / rate
            label = f"{proj / 60:.1f} min@{workers}w"
        print(f"{workers:>7} {n:>7} {med:>9.2f} {rate:>9.0f} {label:>13}")
    print("* single-process rate x workers (ideal scaling)")


if __name__ == "__main__":
    main()
