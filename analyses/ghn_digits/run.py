"""GHN-2 vs MLP-GHN vs random init on the embedded digits data (the issue's quality target).

    python analyses/ghn_digits/run.py [--minutes 10] [--archs 100] [--meta-batch 8] [--out DIR]
        [--lr-milestones 0.667 0.833] [--lr-warmup 0.1] [--widths 16 24 32] [--no-augment]

Trains a GHN-2 and an MLP-GHN for the same wall-clock budget on digits with DeepNets-1M training
architectures, then evaluates the first ``--archs`` held-out DeepNets-1M TEST architectures with
parameters from each (and with random initialisation). Writes ``results.csv`` (per architecture),
``summary.csv``, ``summary.md`` and ``accuracy.png``. Re-running resumes/reuses the trainings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from archlab.engine import evaluate, format_summary, summarize
from archlab.ghn import TrainConfig, train_ghn
from archlab.plots import plot_methods


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per GHN")
    ap.add_argument("--archs", type=int, default=100, help="held-out test architectures")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--meta-batch", type=int, default=8,
                    help="architectures per step for both GHNs (GHN-2 default 8)")
    ap.add_argument("--lr-milestones", type=float, nargs="+", default=list(TrainConfig.lr_milestones),
                    help="fractions of the budget where the learning rate drops 10x "
                         "(default: GHN-2's 2/3 and 5/6)")
    ap.add_argument("--lr-warmup", type=float, default=TrainConfig.lr_warmup,
                    help="fraction of the budget over which the learning rate ramps up (default 0)")
    ap.add_argument("--widths", type=int, nargs="+", default=list(TrainConfig.widths),
                    help="channel widths sampled per training architecture (default 16 24 32)")
    ap.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None,
                    help="train on the images as they are (default: random crops, pad 2)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = {}
    for kind in ("ghn2", "mlp"):
        ckpt[kind] = out / f"{kind}.pt"
        r = train_ghn(TrainConfig(ghn=kind, dataset="digits", minutes=args.minutes, out=str(ckpt[kind]),
                                  meta_batch=args.meta_batch, device=args.device, seed=args.seed,
                                  lr_milestones=tuple(args.lr_milestones), lr_warmup=args.lr_warmup, widths=tuple(args.widths),
                                  augment=args.augment,
                                  resume=True))
        print(f"{kind}: {r.steps} steps, {r.archs_seen} architectures in {r.elapsed_s / 60:.1f} min, "
              f"mean loss {r.loss_avg:.3f}, skipped {r.skipped}")
        if r.interrupted:
            raise SystemExit(f"{kind} training interrupted; its checkpoint is saved: re-run to resume")
    df = evaluate(str(ckpt["ghn2"]), split="test", dataset="digits", baseline=str(ckpt["mlp"]),
                  limit=args.archs, device=args.device, seed=args.seed)
    summary = summarize(df)
    df.to_csv(out / "results.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    table = format_summary(summary)
    notes = "\n".join(f"- {n}" for n in df.attrs.get("notes", []))
    (out / "summary.md").write_text(
        f"Digits test top-1/top-5 (%) of {args.archs} held-out DeepNets-1M TEST architectures "
        f"(C=32), GHNs trained {args.minutes:g} min each on this machine "
        f"(meta-batch {args.meta_batch}, image batch 64, widths {'/'.join(map(str, args.widths))}, learning rate 1e-3"
        f"{f' after a linear warm-up over {args.lr_warmup:g} of the budget' if args.lr_warmup else ''}, dropping 10x at "
        f"{', '.join(f'{m:g}' for m in args.lr_milestones)} of the budget).\n\n```\n{table}\n```\n\n{notes}\n")
    plot_methods(summary, out / "accuracy.png", chance=10.0,
                 title=f"{args.archs} unseen DeepNets-1M architectures on digits "
                       f"(GHNs trained {args.minutes:g} min on CPU)")
    print(table)


if __name__ == "__main__":
    main()
