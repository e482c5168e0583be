"""``archlab finetune``: fine-tune a model from GHN-predicted (or random) parameters."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="torchvision name or path/file.py:ClassName")
    p.add_argument("--init", choices=["ghn", "random"], default="ghn")
    p.add_argument("--ckpt", default=None, help="GHN checkpoint (needed for --init ghn)")
    p.add_argument("--post", choices=["none", "noise", "orth"], default="none",
                   help="post-process predicted weights (never the classifier)")
    p.add_argument("--from-layer", type=int, default=0,
                   help="post-process weight layers K, K+1, ... (0-based, conv/linear order)")
    p.add_argument("--noise-eps", type=float, default=0.1, help="noise: w + eps*std(w)*N(0,1)")
    b = p.add_mutually_exclusive_group(required=True)
    b.add_argument("--epochs", type=float)
    b.add_argument("--steps", type=int)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--download", action="store_true",
                   help="download the dataset into --data-dir when missing (needs internet)")
    p.add_argument("--n-per-class", type=int, default=None, help="few-shot: N training images per class")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.025, help="SGD learning rate, cosine schedule")
    p.add_argument("--wd", type=float, default=3e-4)
    p.add_argument("--max-test-images", type=int, default=None)
    p.add_argument("--no-adapt", action="store_true", help="keep torchvision stems on small images")
    p.add_argument("--out", required=True, help="folder for curve.csv, curve.png, summary.json")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import os

    from archlab.cli import UsageError
    from archlab.engine._finetune import FinetuneConfig, finetune

    if args.init == "ghn" and not args.ckpt:
        raise UsageError("--init ghn needs --ckpt")
    if args.ckpt and not os.path.exists(args.ckpt):
        raise UsageError(f"checkpoint not found: {args.ckpt!r}")
    if args.init == "random" and args.post != "none":
        raise UsageError(f"--post {args.post} needs --init ghn")
    cfg = FinetuneConfig(
        model=args.model, init=args.init, ckpt=args.ckpt, post=args.post,
        from_layer=args.from_layer, noise_eps=args.noise_eps, epochs=args.epochs,
        steps=args.steps, dataset=args.dataset, data_dir=args.data_dir, download=args.download,
        n_per_class=args.n_per_class, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.wd, adapt=not args.no_adapt, max_test_images=args.max_test_images,
        device=args.device, seed=args.seed, out=args.out, progress=not args.no_progress)
    try:
        res = finetune(cfg)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"test top-1: {res.init_top1:.2f}% at init -> {res.final_top1:.2f}% after fine-tuning "
          f"({len(res.postprocessed)} tensors post-processed)")
    print(f"wrote {args.out}/curve.csv, curve.png, summary.json")
    return 0
