"""GHN-2 vs MLP-GHN vs random init on the embedded digits data (the issue's quality target).

    python analyses/ghn_digits/run.py [--minutes 10 | --steps N] [--archs 100] [--meta-batch 8]
        [--seed 0 [1 2]] [--out DIR] [--lr-milestones 0.667 0.833] [--lr-warmup 0.1]
        [--widths 16 24 32] [--no-augment] [--max-images N]

For each seed, trains a GHN-2 and an MLP-GHN for the same wall-clock budget on digits with
DeepNets-1M training architectures, then evaluates the first ``--archs`` held-out DeepNets-1M TEST
architectures with parameters from each (and with random initialisation). Writes, under
``DIR/seed<S>/`` (default DIR: this study's ``results/``), ``results.csv`` (per architecture),
``summary.csv``, ``summary.md``, ``accuracy.png``, both GHNs' training curves (``*.metrics.csv``)
and ``manifest.json``; then ``DIR/summary.md`` and ``DIR/summary.csv``, one row per seed folder
under DIR (paired GHN-2 minus MLP-GHN differences included), and ``DIR/manifest.json``.
Re-running resumes/reuses the trainings (checkpoints ``*.pt``, not committed).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # analyses/: the shared manifest helper

from _manifest import MANIFEST, provenance, write_manifest  # noqa: E402

from archlab._device import resolve_device  # noqa: E402
from archlab._io import atomic_write_text  # noqa: E402
from archlab.engine import TrainConfig, evaluate, format_summary, summarize, train_ghn  # noqa: E402
from archlab.plots import plot_methods  # noqa: E402

STUDY = "ghn_digits"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=None, help="training budget per GHN (default 10)")
    budget.add_argument("--steps", type=int, default=None,
                        help="train each GHN for this many updates instead of a time budget (smoke runs)")
    ap.add_argument("--archs", type=int, default=100, help="held-out test architectures")
    ap.add_argument("--max-images", type=int, default=None,
                    help="evaluate on a fixed random subset of this many test images (default: all)")
    ap.add_argument("--out", default=str(HERE / "results"),
                    help="results folder; each seed writes DIR/seed<S>/ (default: this study's results/)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more seeds, run one after another")
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
    args = ap.parse_args(argv)
    if args.minutes is None and args.steps is None:
        args.minutes = 10.0
    info = provenance(STUDY, args, args.seed, argv=None if argv is None else [sys.argv[0], *argv])
    device = str(resolve_device(args.device))
    out = Path(args.out)
    for seed in args.seed:
        run_seed(args, seed, out / f"seed{seed}", info, device)
    table = combine(out)
    write_manifest(out, info, device=device, combined=combined_sources(out))
    print(table)
    return 0


def run_seed(args, seed: int, out: Path, info: dict, device: str) -> None:
    """Train both GHNs with ``seed``, evaluate them, write ``out``'s tables, plot and manifest."""
    out.mkdir(parents=True, exist_ok=True)
    ckpt, training = {}, {}
    for kind in ("ghn2", "mlp"):
        ckpt[kind] = out / f"{kind}.pt"
        r = train_ghn(TrainConfig(ghn=kind, dataset="digits", minutes=args.minutes, steps=args.steps,
                                  out=str(ckpt[kind]), meta_batch=args.meta_batch, device=args.device,
                                  seed=seed, lr_milestones=tuple(args.lr_milestones),
                                  lr_warmup=args.lr_warmup, widths=tuple(args.widths),
                                  augment=args.augment, resume=True))
        print(f"seed {seed}, {kind}: {r.steps} steps, {r.archs_seen} architectures in "
              f"{r.elapsed_s / 60:.1f} min, mean loss {r.loss_avg:.3f}, skipped {r.skipped}", flush=True)
        if r.interrupted:
            raise SystemExit(f"{kind} training interrupted; its checkpoint is saved: re-run to resume")
        training[kind] = {"steps": r.steps, "archs_seen": r.archs_seen, "elapsed_s": round(r.elapsed_s, 1),
                          "skipped": r.skipped}
    df = evaluate(str(ckpt["ghn2"]), split="test", dataset="digits", baseline=str(ckpt["mlp"]),
                  limit=args.archs, max_images=args.max_images, device=args.device, seed=seed)
    summary = summarize(df)
    atomic_write_text(df.to_csv(index=False), out / "results.csv")
    atomic_write_text(summary.to_csv(index=False), out / "summary.csv")
    table = format_summary(summary)
    notes = "\n".join(f"- {n}" for n in df.attrs.get("notes", []))
    trained = f"{args.minutes:g} min" if args.steps is None else f"{args.steps} steps"
    atomic_write_text(
        f"Digits test top-1/top-5 (%) of {args.archs} held-out DeepNets-1M TEST architectures "
        f"(C=32), GHNs trained {trained} each on this machine, seed {seed} "
        f"(meta-batch {args.meta_batch}, image batch 64, widths {'/'.join(map(str, args.widths))}, learning rate 1e-3"
        f"{f' after a linear warm-up over {args.lr_warmup:g} of the budget' if args.lr_warmup else ''}, dropping 10x at "
        f"{', '.join(f'{m:g}' for m in args.lr_milestones)} of the budget).\n\n```\n{table}\n```\n\n{notes}\n",
        out / "summary.md")
    plot_methods(summary, out / "accuracy.png", chance=10.0,
                 title=f"{args.archs} unseen DeepNets-1M architectures on digits "
                       f"(GHNs trained {trained}, seed {seed})")
    print(table, flush=True)
    outputs = sorted(p.name for p in out.iterdir() if p.is_file() and p.suffix != ".pt"
                     and p.name != MANIFEST and not p.name.startswith("."))
    write_manifest(out, {**info, "seeds": [seed]}, device=device, outputs=outputs, training=training)


def _seed_dirs(out: Path) -> list[Path]:
    dirs = [d for d in out.glob("seed*") if d.is_dir() and d.name[4:].isdigit()
            and (d / "results.csv").is_file()]
    return sorted(dirs, key=lambda d: int(d.name[4:]))


def combined_sources(out: Path) -> list[dict]:
    """Per seed folder under ``out``: its commit and whether its manifest was reconstructed."""
    rows = []
    for d in _seed_dirs(out):
        m = json.loads((d / MANIFEST).read_text()) if (d / MANIFEST).is_file() else {}
        rows.append({"folder": d.name, "commit": m.get("git", {}).get("commit"),
                     "reconstructed": bool(m.get("reconstructed", False))})
    return rows


def combine(out: Path) -> str:
    """Write ``out/summary.csv`` and ``out/summary.md``: one row per ``out/seed<S>/`` folder and
    their mean. Returns the markdown table."""
    import pandas as pd

    rows = []
    for d in _seed_dirs(out):
        df = pd.read_csv(d / "results.csv")
        key = "id" if "id" in df.columns else "arch"  # runs before candidates named it "arch"
        wide = df.pivot_table(index=key, columns="method", values=["top1", "top5"])
        row = {"seed": int(d.name[4:])}
        m = json.loads((d / MANIFEST).read_text()) if (d / MANIFEST).is_file() else {}
        for kind, method in (("ghn2", "ghn"), ("mlp", "mlp-ghn")):
            row[f"{method}_updates"] = m.get("training", {}).get(kind, {}).get("steps")
        for method in ("ghn", "mlp-ghn", "random"):
            if ("top1", method) not in wide.columns:
                continue
            col = wide["top1"][method]
            row[f"{method}_top1"] = float(col.mean())
            row[f"{method}_top1_se"] = float(col.std(ddof=1) / math.sqrt(len(col))) if len(col) > 1 else 0.0
            row[f"{method}_top5"] = float(wide["top5"][method].mean())
        if ("top1", "ghn") in wide.columns and ("top1", "mlp-ghn") in wide.columns:
            diff = (wide["top1"]["ghn"] - wide["top1"]["mlp-ghn"]).dropna()
            row["paired_diff"] = float(diff.mean())
            row["paired_diff_se"] = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
            row["ghn_better"] = int((diff > 0).sum())
            row["n_archs"] = len(diff)
        rows.append(row)
    table = pd.DataFrame(rows)
    atomic_write_text(table.to_csv(index=False), out / "summary.csv")
    md = _markdown(table)
    atomic_write_text(
        "Digits test top-1 (%) per seed folder under this one (mean ± standard error over the "
        "held-out architectures; GHN-2 − MLP is the paired difference on the same architectures). "
        f"Each seed's own `summary.md` and `manifest.json` give its settings.\n\n{md}\n", out / "summary.md")
    return md


def _markdown(t) -> str:
    def pm(r, k):
        v = r.get(k)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        se = r.get(f"{k}_se")
        return f"{v:.2f} ± {se:.2f}" if se is not None and not math.isnan(se) else f"{v:.2f}"

    def num(v):
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{int(v)}"

    lines = ["| seed | GHN-2 updates | GHN-2 top-1 % | MLP-GHN updates | MLP-GHN top-1 % | random % "
             "| GHN-2 − MLP | GHN-2 better on |", "|---|---|---|---|---|---|---|---|"]
    recs = t.to_dict("records")
    for r in recs:
        better = f"{num(r.get('ghn_better'))}/{num(r.get('n_archs'))}" if "ghn_better" in r else ""
        diff = pm(r, "paired_diff")
        lines.append(f"| {r['seed']} | {num(r.get('ghn_updates'))} | {pm(r, 'ghn_top1')} "
                     f"| {num(r.get('mlp-ghn_updates'))} | {pm(r, 'mlp-ghn_top1')} "
                     f"| {pm(r, 'random_top1').split(' ±')[0]} | {'+' if diff and not diff.startswith('-') else ''}{diff} "
                     f"| {better} |")
    if len(recs) > 1:
        def mean(k):
            vals = [r[k] for r in recs if k in r and r[k] is not None and not math.isnan(r[k])]
            return f"{sum(vals) / len(vals):.2f}" if vals else ""
        d = mean("paired_diff")
        lines.append(f"| mean | | **{mean('ghn_top1')}** | | {mean('mlp-ghn_top1')} | {mean('random_top1')} "
                     f"| {'+' if d and not d.startswith('-') else ''}{d} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
