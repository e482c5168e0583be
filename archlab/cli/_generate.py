"""``archlab generate``: write a DeepNets-1M-style split as JSON Lines (no torch import)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from archlab.cli._args import add_examples


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", required=True,
                        help="train, val, test, wide, deep, dense, bnfree, search, "
                             "or 'eval' for all six evaluation splits")
    parser.add_argument("-n", type=int, default=None,
                        help="number of genotypes (default: the split's size; not with --split eval)")
    parser.add_argument("--out", required=True,
                        help="output folder (writes <split>.jsonl) or a .jsonl / .jsonl.gz file path")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the split's documented seed)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (output is identical)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_examples(parser, "archlab generate --split eval --out splits/",
                 "archlab generate --split train -n 1000 --seed 3 --out train1k.jsonl.gz")


def _target(out: str, split: str, several: bool) -> Path:
    """The file to write: ``out`` itself (a .jsonl / .jsonl.gz path) or ``out/<split>.jsonl``;
    checked before any genotype is generated."""
    from archlab.cli import UsageError
    from archlab.cli._args import check_output_dir, check_output_file

    p = Path(out)
    if p.name.endswith((".jsonl", ".jsonl.gz")):
        if several:
            raise UsageError(f"--split eval writes several files; --out must be a folder, got {out!r}")
        return check_output_file(p, "--out")
    if p.is_file():
        raise UsageError(f"--out {out!r} is an existing file that is not JSON Lines; give a folder "
                         "or a .jsonl / .jsonl.gz file path")
    return check_output_dir(p, "--out") / f"{split}.jsonl"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from archlab.cli import UsageError
    from archlab.cli._args import check_at_least
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
    check_at_least(args, 0, "n")
    check_at_least(args, 1, "workers")
    paths = {split: _target(args.out, split, len(splits) > 1) for split in splits}
    for split, path in paths.items():
        n = SPLITS[split]["n"] if args.n is None else args.n
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
