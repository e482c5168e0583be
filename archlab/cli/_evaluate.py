"""``archlab evaluate``: accuracy of networks with GHN-predicted parameters, with baselines."""

from __future__ import annotations

import argparse

from archlab.cli._args import add_ckpt, add_examples, add_input_size, resolve_ckpt


def configure(p: argparse.ArgumentParser) -> None:
    add_ckpt(p, required=True, help="trained GHN checkpoint", dataset=True)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--split", help="shipped architecture split: val, test, wide, deep, dense, bnfree")
    what.add_argument("--models", help="comma-separated model specs, e.g. resnet50,convnext_tiny,vit_b_16")
    what.add_argument("--genotypes", help="a JSON Lines genotype file (archlab generate / search export)")
    p.add_argument("--baseline-ckpt", default=None,
                   help="a trained MLP GHN (the mlp-ghn row; other kinds are refused)")
    p.add_argument("--dataset", default="digits", help="digits (default), cifar10, imagenet")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N architectures")
    p.add_argument("--max-images", type=int, default=None, help="use only N test images (a fixed subset)")
    p.add_argument("--width", type=int, default=None,
                   help="channel width C of genotype networks (default: the split's own, 32; wide: 128)")
    p.add_argument("--no-adapt", action="store_true",
                   help="keep torchvision stems unchanged on small images")
    add_input_size(p)
    p.add_argument("--json", default=None, help="write per-architecture rows and the aggregate")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    add_examples(p, "archlab evaluate --ckpt ghn.pt --split test --baseline-ckpt mlp.pt --limit 50",
                 "archlab evaluate --ckpt ghn.pt --models resnet18,vgg11 --max-images 500 --json eval.json")


def run(args: argparse.Namespace) -> int:
    from archlab._io import atomic_write_text
    from archlab.cli._args import check_at_least, check_input_size, check_output_file, json_text
    from archlab.engine._evaluate import evaluate, format_summary, summarize

    check_at_least(args, 1, "limit", "max_images", "width")
    check_input_size(args.input_size)
    if args.json:
        check_output_file(args.json, "--json", {"--ckpt": args.ckpt, "--baseline-ckpt": args.baseline_ckpt,
                                                "--genotypes": args.genotypes})
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    df = evaluate(resolve_ckpt(args), split=args.split, models=models, genotypes=args.genotypes,
                  dataset=args.dataset, data_dir=args.data_dir, baseline=resolve_ckpt(args, "baseline_ckpt"),
                  download=args.download, limit=args.limit, max_images=args.max_images, width=args.width,
                  adapt=not args.no_adapt,
                  device=args.device, progress=not args.no_progress, input_size=args.input_size)
    summary = summarize(df)
    what = (f"split {args.split!r}" if args.split else f"genotypes {args.genotypes}" if args.genotypes
            else f"models {', '.join(models)}")
    print(f"{args.dataset} test set, {what} ({df['id'].nunique()} architectures); "
          "mean ± standard error over architectures")
    print(format_summary(summary))
    for note in df.attrs.get("notes", []):
        print(f"note: {note}")
    if args.json:
        doc = {"dataset": args.dataset, "ckpt": args.ckpt, "baseline_ckpt": args.baseline_ckpt,
               "split": args.split, "models": models, "notes": df.attrs.get("notes", []),
               "rows": df.to_dict("records"), "aggregate": summary.to_dict("records")}
        atomic_write_text(json_text(doc), args.json)
        print(f"wrote {args.json}")
    return 0
