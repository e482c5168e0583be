"""``archlab generate``: write a DeepNets-1M-style split as JSON Lines (no torch import)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", required=True,
                        help="train, val, test, wide, deep, dense, bnfree, search, "
                             "or 'eval' for all six evaluation splits")
    parser.add_argument("-n", type=int, default=None,
                        help="number of genotypes (default: the split's size; not with --split eval)")
    parser.add_argument("--out", required=True,
                        help="output folder (writes <split>.jsonl) or a .jsonl / .jsonl.gz file path")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the split's documented seed)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (output is identical)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _target(out: str, split: str, several: bool) -> Path:
    p = Path(out)
    if p.name.endswith((".jsonl", ".jsonl.gz")):
        if several:
            from archlab.cli import UsageError

            raise UsageError(f"--split eval writes several files; --out must be a folder, got {out!r}")
        return p
    return p / f"{split}.jsonl"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from archlab.cli import UsageError
    from archlab.space import EVAL_SPLITS, SPLITS, generate_split, write_split

    if args.split == "eval":
        if args.n is not None or args.seed is not None:
            raise UsageError("--split eval regenerates the shipped splits; -n and --seed are not allowed")
        splits = list(EVAL_SPLITS)
    elif args.split not in SPLITS or "models" in SPLITS[args.split]:
        names = [s for s in SPLITS if "models" not in SPLITS[s]]
        raise UsageError(f"unknown split {args.split!r}; choose from {', '.join(names)}, eval")
    else:
        splits = [args.split]
    if args.n is not None and args.n < 0:
        raise UsageError(f"-n must be >= 0; got {args.n}")
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1; got {args.workers}")
    for split in splits:
        n = SPLITS[split]["n"] if args.n is None else args.n
        path = _target(args.out, split, len(splits) > 1)
        start = time.perf_counter()
        records = generate_split(split, n=n, seed=args.seed, workers=args.workers)
        bar = tqdm(records, total=n, desc=split, unit="arch", disable=args.quiet)
        try:
            count = write_split(bar, path)
        except ValueError as e:
            raise UsageError(str(e)) from None
        finally:
            bar.close()
        dt = time.perf_counter() - start
        print(f"wrote {count} {split} genotypes to {path} in {dt:.1f}s")
    return 0
