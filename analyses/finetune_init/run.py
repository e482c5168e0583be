"""Random init vs. GHN init vs. GHN init + noise, fine-tuned on 100-shot CIFAR-10.

Writes ``results/curves_<model>.png`` (test accuracy and training loss per epoch, one per
model), ``results/results.csv`` / ``results/results.md`` (accuracy at init and after fine-tuning)
and per-run curves under ``results/runs/``, then ``results/manifest.json`` (command, git commit,
date, seed, machine). See README.md for the command; ``--dataset digits --models resnet18 --steps 1
--n-per-class 2 --max-test-images 32`` with any 10-class GHN checkpoint is a quick offline check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # analyses/: the shared manifest helper

from _manifest import provenance, write_manifest  # noqa: E402

MODELS = {"resnet18": "resnet18", "convnext": f"{HERE / 'models.py'}:ConvNeXtMini"}
INITS = [("random", "random", "none"), ("ghn", "ghn", "none"), ("ghn+noise", "ghn", "noise")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True, help="trained GHN checkpoint (10 classes, 32 px)")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 folder (omit with --dataset digits)")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--n-per-class", type=int, default=100)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=float, default=None, help="fine-tuning epochs (default 3)")
    budget.add_argument("--steps", type=int, default=None,
                        help="fine-tune for this many SGD steps instead (quick checks)")
    p.add_argument("--models", default="resnet18,convnext", help=f"from {list(MODELS)}")
    p.add_argument("--noise-eps", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=0.025)
    p.add_argument("--max-test-images", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    if args.epochs is None and args.steps is None:
        args.epochs = 3.0
    keys = args.models.split(",")
    for key in keys:
        if key not in MODELS:
            p.error(f"unknown model {key!r}; choose from {list(MODELS)}")
    info = provenance("finetune_init", args, [args.seed],
                      argv=None if argv is None else [sys.argv[0], *argv])

    import pandas as pd

    from archlab._device import resolve_device
    from archlab._io import atomic_write_text
    from archlab.engine import FinetuneConfig, finetune
    from archlab.ghn import load_ghn
    from archlab.plots import plot_curves

    ghn = load_ghn(args.ckpt)
    out = Path(args.out)
    budget = f"{args.epochs:g} epochs" if args.steps is None else f"{args.steps} steps"
    rows, curves = [], {}
    for key in keys:
        curves[key] = {}
        for label, init, post in INITS:
            cfg = FinetuneConfig(
                model=MODELS[key], init=init, ckpt=args.ckpt, post=post, noise_eps=args.noise_eps,
                epochs=args.epochs, steps=args.steps, dataset=args.dataset, data_dir=args.data_dir,
                n_per_class=args.n_per_class, lr=args.lr, max_test_images=args.max_test_images,
                device=args.device, seed=args.seed, out=str(out / "runs" / f"{key}-{label}"))
            res = finetune(cfg, ghn=ghn if init == "ghn" else None)
            curves[key][label] = res.history
            rows.append({"model": key, "init": label, "top1_at_init": res.init_top1,
                         "top1_final": res.final_top1, "epochs": args.epochs, "steps": args.steps,
                         "train_images": args.n_per_class * 10})
            print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(table.to_csv(index=False), out / "results.csv")
    note = (f"{args.dataset}, {args.n_per_class} images/class, {budget}, SGD lr "
            f"{args.lr} cosine; test top-1 on {args.max_test_images} test images, BatchNorm on batch "
            f"statistics; GHN: {args.ckpt}")
    atomic_write_text(note + "\n\n" + _markdown(table) + "\n", out / "results.md")
    for key, hist in curves.items():
        plot_curves(hist, out / f"curves_{key}.png",
                    title=f"{key}: {args.n_per_class}-shot {args.dataset}")
    write_manifest(out, info, device=str(resolve_device(args.device)))
    print(table.to_string(index=False))
    return 0


def _markdown(table) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in table.to_dict("records"):
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in r.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
