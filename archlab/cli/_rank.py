"""``archlab rank``: rank candidate architectures by GHN-based and zero-cost predictors."""

from __future__ import annotations

import argparse

from archlab.cli._args import add_ckpt, add_examples, add_ft_post, resolve_ckpt

DEFAULT_METHODS = "ghn,ghn-loss,ghn-ft,random-ft,synflow,snip,grasp,fisher,grad_norm,jacov,naswot,params,flops"


def configure(p: argparse.ArgumentParser) -> None:
    add_ckpt(p, help="GHN checkpoint (needed for ghn and ghn-ft)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--split", help="a DeepNets-1M split, e.g. test")
    what.add_argument("--genotypes", help="a JSON Lines genotype file (archlab generate / search export)")
    what.add_argument("--models", help="comma-separated torchvision names or file.py:ClassName specs")
    p.add_argument("--limit", type=int, default=None, help="only the first N candidates")
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default: all: {DEFAULT_METHODS})")
    p.add_argument("--ft-steps", type=int, default=50, help="SGD steps of ghn-ft and random-ft (50)")
    add_ft_post(p)
    p.add_argument("--ground-truth", action="store_true",
                   help="train each candidate (cached per id in OUT/ground_truth/, resumable, shared by workers); "
                        "also writes OUT/properties.csv, the labels of `archlab properties`")
    p.add_argument("--epochs", type=int, default=10, help="ground-truth training epochs (10)")
    p.add_argument("--gt-train-images", type=int, default=None,
                   help="ground truth trains on a fixed subset of this many training images (default: all)")
    p.add_argument("--gt-test-images", type=int, default=None,
                   help="ground truth scores on a fixed subset of this many test images (default: all)")
    p.add_argument("--dataset", default="digits", help="digits (default), cifar10, ...")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--max-eval-images", type=int, default=None,
                   help="validation images the ghn/ft scores use (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--out", required=True, help="output folder: ranking.csv, correlations.csv, figures")
    p.add_argument("--no-progress", action="store_true")
    add_examples(p, "archlab rank --ckpt ghn.pt --split test --limit 100 --ground-truth --epochs 10 --out rank/",
                 "archlab rank --ckpt ghn.pt --models resnet18,vgg11,my_net.py:Net --methods ghn,synflow --out r/")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab._device import resolve_device
    from archlab._io import atomic_write_text
    from archlab.analysis import (
        GroundTruthSpec,
        correlations,
        ground_truth,
        markdown_table,
        properties_frame,
        rank,
    )
    from archlab.analysis._rank import check_methods
    from archlab.cli._args import check_at_least, check_output_dir
    from archlab.engine import from_genotype_file, from_models, from_split
    from archlab.engine._evaluate import open_ghn
    from archlab.engine._short_ft import proxy_data
    from archlab.plots import plot_rank_grid, plot_tau_cost

    check_at_least(args, 1, "limit", "epochs", "max_eval_images")
    check_at_least(args, GroundTruthSpec.batch_size, "gt_train_images", "gt_test_images")  # one batch at least
    check_at_least(args, 0, "ft_steps")
    check_output_dir(args.out)
    spec = GroundTruthSpec(dataset=args.dataset, epochs=args.epochs, seed=args.seed,  # refused before any work
                           train_images=args.gt_train_images, test_images=args.gt_test_images)
    dev = resolve_device(args.device)
    ghn = open_ghn(resolve_ckpt(args), dev) if args.ckpt else None
    methods = check_methods(args.methods.split(","), ghn)
    if args.split:
        cands = from_split(args.split, limit=args.limit)
    elif args.genotypes:
        cands = from_genotype_file(args.genotypes, limit=args.limit)
    else:
        cands = from_models(args.models.split(","))[: args.limit]
    data = proxy_data(args.dataset, args.data_dir, max_eval_images=args.max_eval_images, seed=args.seed)
    if ghn is not None and ghn.num_classes != data.num_classes:
        from archlab.errors import UsageError

        raise UsageError(f"{args.ckpt} predicts {ghn.num_classes}-class classifiers but {args.dataset} "
                         f"has {data.num_classes} classes")
    out = Path(args.out)
    table = rank(cands, methods, ghn, data, out, ft_steps=args.ft_steps, seed=args.seed, device=dev,
                 ft_post=args.ft_post,
                 progress=not args.no_progress)
    if args.ground_truth:
        truth = ground_truth(cands, out, spec, args.data_dir, dev, progress=not args.no_progress)
        table["ground_truth"] = [truth[c.id]["top1"] for c in cands]
        labels = properties_frame({c.id: truth[c.id] for c in cands}, {c.id: c.source for c in cands})
        atomic_write_text(labels.to_csv(index=False), out / "properties.csv")  # exact parameter counts
    atomic_write_text(table[["id", "source", *methods, *(["ground_truth"] if args.ground_truth else [])]]
                      .to_csv(index=False, float_format="%.6g"), out / "ranking.csv")
    print(f"ranked {len(cands)} candidates with {', '.join(methods)} -> {out / 'ranking.csv'}")
    if args.ground_truth:
        corr = correlations(table, methods)
        atomic_write_text(corr.to_csv(index=False, float_format="%.4f"), out / "correlations.csv")
        md = markdown_table(corr)
        atomic_write_text(md, out / "correlations.md")
        plot_rank_grid(table, corr, out / "scatter.png")
        plot_tau_cost(corr, out / "tau_vs_cost.png")
        print(md)
        print(f"wrote correlations.csv, correlations.md, scatter.png, tau_vs_cost.png, properties.csv in {out}")
    return 0
