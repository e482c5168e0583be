"""``archlab embed``: graph embeddings of candidate architectures from a GHN, as Parquet."""

from __future__ import annotations

import argparse

from archlab.cli._args import add_ckpt, add_examples, add_input_size, resolve_ckpt


def configure(p: argparse.ArgumentParser) -> None:
    add_ckpt(p, required=True, help="GHN checkpoint written by `archlab train` / save_ghn")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--models", help="comma-separated torchvision names or file.py:ClassName specs")
    src.add_argument("--split", help="a DeepNets-1M split name (e.g. test), built with the GHN's classes")
    src.add_argument("--genotypes", help="a JSON Lines genotype file (archlab generate / search export)")
    src.add_argument("--train", type=int, metavar="N",
                     help="the first N architectures of the train stream")
    p.add_argument("--seed", type=int, default=0, help="train-stream seed for --train (default 0)")
    p.add_argument("--limit", type=int, default=None,
                   help="only the first N architectures of a split/file")
    p.add_argument("--out", required=True, help="output Parquet file (id, source, embedding, metadata)")
    p.add_argument("--batch-size", type=int, default=4, help="architectures per GHN pass (4)")
    add_input_size(p)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-progress", action="store_true")
    add_examples(p, "archlab embed --ckpt ghn.pt --split test --out test.parquet",
                 "archlab embed --ckpt ghn.pt --models resnet18,my_net.py:Net --out mine.parquet")


def run(args: argparse.Namespace) -> int:
    from archlab._device import resolve_device
    from archlab.analysis import embed_to_file
    from archlab.cli import UsageError
    from archlab.cli._args import check_at_least, check_input_size, check_output_file
    from archlab.engine import from_genotype_file, from_models, from_split, from_train_stream
    from archlab.engine._evaluate import open_ghn

    check_at_least(args, 1, "batch_size", "limit", "train")
    if not args.out.endswith(".parquet"):
        raise UsageError(f"--out {args.out!r}: embeddings are written as Parquet; name the file *.parquet")
    check_input_size(args.input_size)
    check_output_file(args.out, "--out", {"--ckpt": args.ckpt, "--genotypes": args.genotypes})
    ghn = open_ghn(resolve_ckpt(args), map_location=resolve_device(args.device))
    if args.models:
        cands, total = from_models(args.models.split(",")), None
    elif args.split:
        cands, total = from_split(args.split, limit=args.limit), None
    elif args.genotypes:
        cands, total = from_genotype_file(args.genotypes, limit=args.limit), None
    else:
        cands, total = from_train_stream(args.train, seed=args.seed), args.train
    total = len(cands) if total is None else total
    n = embed_to_file(ghn, cands, args.out, total=total, batch_size=args.batch_size,
                      progress=not args.no_progress, input_size=args.input_size)
    print(f"embedded {n} architectures ({ghn.config.hid}-d) with {args.ckpt}; written to {args.out}")
    return 0
