"""``archlab finetune``: fine-tune a model from GHN-predicted (or random) parameters."""

from __future__ import annotations

import argparse

from archlab.cli._args import add_ckpt, add_examples, add_input_size, resolve_ckpt


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="torchvision name or path/file.py:ClassName")
    p.add_argument("--init", choices=["ghn", "random"], default="ghn")
    add_ckpt(p, help="GHN checkpoint (needed for --init ghn)", dataset=True)
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
    p.add_argument("--n-per-class", type=int, default=None,
                   help="few-shot: N training images per class")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.025, help="SGD learning rate, cosine schedule")
    p.add_argument("--wd", type=float, default=3e-4)
    p.add_argument("--max-test-images", type=int, default=None)
    p.add_argument("--no-adapt", action="store_true", help="keep torchvision stems on small images")
    add_input_size(p)
    p.add_argument("--out", required=True, help="folder for curve.csv, curve.png, summary.json")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    add_examples(p, "archlab finetune --model resnet18 --ckpt ghn.pt --epochs 1 --out runs/ft_ghn",
                 "archlab finetune --model resnet18 --init random --steps 200 --out runs/ft_random")


def run(args: argparse.Namespace) -> int:
    from archlab.cli import UsageError
    from archlab.cli._args import check_at_least, check_input_size, check_output_dir, check_positive
    from archlab.engine._finetune import FinetuneConfig, finetune

    if args.init == "ghn" and not args.ckpt:
        raise UsageError("--init ghn needs --ckpt")
    if args.init == "random" and args.post != "none":
        raise UsageError(f"--post {args.post} needs --init ghn")
    check_at_least(args, 1, "steps", "n_per_class", "batch_size", "max_test_images")
    check_at_least(args, 0, "from_layer", "noise_eps", "wd")
    check_positive(args, "epochs", "lr")
    check_input_size(args.input_size)
    check_output_dir(args.out)
    cfg = FinetuneConfig(
        model=args.model, init=args.init, ckpt=resolve_ckpt(args), post=args.post,
        from_layer=args.from_layer, noise_eps=args.noise_eps, epochs=args.epochs,
        steps=args.steps, dataset=args.dataset, data_dir=args.data_dir, download=args.download,
        n_per_class=args.n_per_class, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.wd, adapt=not args.no_adapt, max_test_images=args.max_test_images,
        device=args.device, seed=args.seed, out=args.out, progress=not args.no_progress,
        input_size=args.input_size)
    res = finetune(cfg)
    print(f"test top-1: {res.init_top1:.2f}% at init -> {res.final_top1:.2f}% after fine-tuning "
          f"({len(res.postprocessed)} tensors post-processed)")
    print(f"wrote {args.out}/curve.csv, curve.png, summary.json")
    return 0
