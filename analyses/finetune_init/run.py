"""Random init vs. GHN init vs. GHN init + noise, fine-tuned on 100-shot CIFAR-10.

Writes ``results/curves.png`` (test accuracy and training loss per epoch, one panel pair per
model), ``results/results.csv`` / ``results/results.md`` (accuracy at init and after fine-tuning)
and per-run curves under ``results/runs/``. See README.md for the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {"resnet18": "resnet18", "convnext": f"{HERE / 'models.py'}:ConvNeXtMini"}
INITS = [("random", "random", "none"), ("ghn", "ghn", "none"), ("ghn+noise", "ghn", "noise")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True, help="trained GHN checkpoint (10 classes, 32 px)")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 folder (omit with --dataset digits)")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--n-per-class", type=int, default=100)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--models", default="resnet18,convnext", help=f"from {list(MODELS)}")
    p.add_argument("--noise-eps", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=0.025)
    p.add_argument("--max-test-images", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)

    import pandas as pd

    from archlab.engine import FinetuneConfig, finetune, plot_curves
    from archlab.ghn import load_ghn

    ghn = load_ghn(args.ckpt)
    out = Path(args.out)
    rows, curves = [], {}
    for key in args.models.split(","):
        if key not in MODELS:
            p.error(f"unknown model {key!r}; choose from {list(MODELS)}")
        curves[key] = {}
        for label, init, post in INITS:
            cfg = FinetuneConfig(
                model=MODELS[key], init=init, ckpt=args.ckpt, post=post, noise_eps=args.noise_eps,
                epochs=args.epochs, dataset=args.dataset, data_dir=args.data_dir,
                n_per_class=args.n_per_class, lr=args.lr, max_test_images=args.max_test_images,
                device=args.device, seed=args.seed, out=str(out / "runs" / f"{key}-{label}"))
            res = finetune(cfg, ghn=ghn if init == "ghn" else None)
            curves[key][label] = res.history
            rows.append({"model": key, "init": label, "top1_at_init": res.init_top1,
                         "top1_final": res.final_top1, "epochs": args.epochs,
                         "train_images": args.n_per_class * 10})
            print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "results.csv", index=False)
    note = (f"{args.dataset}, {args.n_per_class} images/class, {args.epochs:g} epochs, SGD lr "
            f"{args.lr} cosine; test top-1 on {args.max_test_images} test images, BatchNorm on batch "
            f"statistics; GHN: {args.ckpt}")
    (out / "results.md").write_text(note + "\n\n" + _markdown(table) + "\n")
    for key, hist in curves.items():
        plot_curves(hist, out / f"curves_{key}.png",
                    title=f"{key}: {args.n_per_class}-shot {args.dataset}")
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
