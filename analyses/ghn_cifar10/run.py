"""GHN-2 on real CIFAR-10: archlab's training curve step by step beside the reference's, and
held-out accuracy of predicted parameters on unseen test-split architectures.

    python analyses/ghn_cifar10/run.py --data-dir ../shared/data/cifar10/cifar10-jpeg.tar.gz \\
        [--steps 200] [--eval-at 100,200] [--meta-batch 8] [--lr 1e-3] [--archs 30] \\
        [--max-images 1000] [--reference results/reference_ppuda.csv] [--out DIR]

Trains archlab's GHN-2 on CIFAR-10 (45k/5k split, batch 64, Adam, weight decay 1e-5, clip 5,
widths 16/24/32, a constant learning rate: the first epochs of GHN-2's 300-epoch schedule)
and, at every ``--eval-at`` step, evaluates the first ``--archs`` DeepNets-1M TEST architectures
(C=32) with predicted parameters on a fixed subset of ``--max-images`` test images (random
initialisation as the floor). ``--data-dir`` is a CIFAR-10 folder (ImageFolder tree or
torchvision's python batches) or the ``.tar.gz`` of one (unpacked once into results/cache/).

``--reference CSV`` adds the reference implementation's curve (columns ``step, loss, acc``; a
``<stem>.eval.json`` beside it, ``{step: [mean top-1, standard error]}``, adds its held-out
points): the reference (facebookresearch/ppuda) cannot run inside the project, so its run is
made outside it on the same machine and stream (see README.md). ``--replot`` only redraws the
figure and table from the files of a finished run (no training, no images read). Writes ``curves.csv``,
``heldout.csv``, ``curves.png``, ``summary.md`` and ``manifest.json`` under DIR (default:
this study's ``results/``); the GHN (``ghn2_cifar10.pt``) stays there, git-ignored. Re-running
resumes the training and reuses finished evaluations.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # analyses/: the shared manifest helper

from _data import dataset_folder  # noqa: E402
from _manifest import provenance, write_manifest  # noqa: E402

from archlab._device import resolve_device  # noqa: E402
from archlab._io import atomic_write_text  # noqa: E402
from archlab.engine import TrainConfig, evaluate, train_ghn  # noqa: E402
from archlab.plots import plot_training_runs  # noqa: E402

STUDY = "ghn_cifar10"
CKPT = "ghn2_cifar10.pt"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="CIFAR-10 folder or .tar.gz (required: no hidden default)")
    ap.add_argument("--steps", type=int, default=200, help="training updates (default 200)")
    ap.add_argument("--eval-at", default=None, help="comma-separated steps to evaluate at (default: --steps)")
    ap.add_argument("--meta-batch", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--widths", type=int, nargs="+", default=list(TrainConfig.widths))
    ap.add_argument("--archs", type=int, default=30, help="held-out test architectures (default 30)")
    ap.add_argument("--max-images", type=int, default=1000, help="test images per evaluation (default 1000)")
    ap.add_argument("--reference", default=None, help="the reference run's per-step CSV (step, loss, acc)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--replot", action="store_true",
                    help="no training or evaluation: redraw curves.png and summary.md from the run's "
                         "metrics file, heldout.csv and --reference (e.g. after a new reference run, "
                         "when the GHN itself is not on this machine)")
    args = ap.parse_args(argv)
    try:
        eval_at = sorted({int(v) for v in (args.eval_at or str(args.steps)).split(",")})
    except ValueError:
        ap.error(f"--eval-at must be comma-separated step numbers; got {args.eval_at!r}")
    if not eval_at or eval_at[0] < 1 or eval_at[-1] > args.steps:
        ap.error(f"--eval-at steps must lie in 1..{args.steps}; got {args.eval_at!r}")
    if args.reference and not Path(args.reference).is_file():
        ap.error(f"--reference {args.reference}: no such file")
    info = provenance(STUDY, args, [args.seed], argv=None if argv is None else [sys.argv[0], *argv])
    device = str(resolve_device(args.device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # --replot reads no images: the data folder only names the run's config
    data_dir = Path(args.data_dir) if args.replot else dataset_folder(Path(args.data_dir), out / "cache")

    import pandas as pd

    held_path = out / "heldout.csv"
    held = pd.read_csv(held_path) if held_path.is_file() else pd.DataFrame(columns=["step", "method", "top1", "sem", "n_archs"])
    cfg = TrainConfig(ghn="ghn2", dataset="cifar10", data_dir=str(data_dir), steps=args.steps, out=str(out / CKPT),
                      meta_batch=args.meta_batch, batch_size=args.batch_size, lr=args.lr, lr_milestones=(),
                      widths=tuple(args.widths), device=args.device, seed=args.seed, log_every=1, resume=True)
    result = None
    if args.replot:
        missing = [s for s in eval_at if not ((held["step"] == s) & (held["method"] == "ghn")).any()]
        metrics = Path(cfg.metrics_path)
        if missing or not metrics.is_file():
            raise SystemExit(f"--replot needs {metrics} and held-out results at steps {eval_at} in "
                             f"{held_path}; missing: {[str(metrics)] if not metrics.is_file() else missing}")
    for step in ([] if args.replot else eval_at):
        done = steps_done(cfg)
        if done < step or step == args.steps:  # the last one always runs: it writes the final GHN
            result = train_ghn(dataclasses.replace(cfg, stop_after=None if step == args.steps else step - done))
            if result.interrupted:
                raise SystemExit("training interrupted; its checkpoint is saved: re-run to resume")
            done = result.steps
        if ((held["step"] == step) & (held["method"] == "ghn")).any():
            continue
        if done != step:
            print(f"step {step}: not evaluated (the run is already at step {done})", flush=True)
            continue
        df = evaluate(str(out / CKPT), split="test", dataset="cifar10", data_dir=str(data_dir), limit=args.archs,
                      max_images=args.max_images, device=args.device, seed=args.seed)
        rows = []
        for method, g in df.groupby("method"):
            rows.append({"step": step, "method": method, "top1": g["top1"].mean(),
                         "sem": g["top1"].std(ddof=1) / math.sqrt(len(g)) if len(g) > 1 else 0.0, "n_archs": len(g)})
        held = pd.concat([held, pd.DataFrame(rows)], ignore_index=True)
        atomic_write_text(held.to_csv(index=False), held_path)
        print(f"step {step}: held-out top-1 " + ", ".join(f"{r['method']} {r['top1']:.2f} ± {r['sem']:.2f}%"
                                                           for r in rows), flush=True)
    curves = pd.read_csv(out / Path(CKPT).with_suffix(".metrics.csv"))[["step", "loss", "acc", "elapsed_s"]]
    atomic_write_text(curves.to_csv(index=False), out / "curves.csv")
    runs = {"archlab GHN-2": curves}
    heldout = {"archlab GHN-2": held[held["method"] == "ghn"]}
    reference = load_reference(Path(args.reference)) if args.reference else None
    if reference is not None:
        runs["reference GHN-2 (ppuda)"], ref_held = reference
        if ref_held is not None:
            heldout["reference GHN-2 (ppuda)"] = ref_held
    heldout["random init"] = held[held["method"] == "random"]
    plot_training_runs(runs, out / "curves.png", heldout=heldout,
                       title=f"GHN-2 on CIFAR-10: meta-batch {args.meta_batch}, batch {args.batch_size}, "
                             f"lr {args.lr:g}, {args.archs} unseen test architectures")
    table = summary_table(runs, heldout, eval_at)
    atomic_write_text(f"GHN-2 on CIFAR-10 ({args.steps} steps, meta-batch {args.meta_batch}, batch "
                      f"{args.batch_size}, lr {args.lr:g} constant, widths {'/'.join(map(str, args.widths))}; "
                      f"held-out: {args.archs} test-split architectures at C=32 on {args.max_images} test "
                      f"images).\n\n{table}\n", out / "summary.md")
    print(table)
    if result is not None:  # --replot keeps the manifest of the run that trained and evaluated
        write_manifest(out, info, device=device, training={"steps": result.steps,
                                                           "elapsed_s": round(result.elapsed_s, 1),
                                                           "skipped": result.skipped})
    return 0


def steps_done(cfg: TrainConfig) -> int:
    """Steps the resumable run at ``cfg.out`` has done (0 when it has not started)."""
    import torch

    state = Path(cfg.state_path)
    return int(torch.load(state, map_location="cpu", weights_only=True)["state"]["step"]) if state.is_file() else 0


def load_reference(path: Path):
    """The reference run's per-step curve and, when ``<stem>.eval.json`` exists, its held-out points."""
    import pandas as pd

    curve = pd.read_csv(path)
    missing = {"step", "loss", "acc"} - set(curve.columns)
    if missing:
        raise SystemExit(f"--reference {path}: missing columns {sorted(missing)}")
    ev = path.with_suffix(".eval.json")
    held = None
    if ev.is_file():
        pts = json.loads(ev.read_text())
        held = pd.DataFrame([{"step": int(k), "top1": v[0], "sem": v[1]} for k, v in sorted(pts.items(), key=lambda kv: int(kv[0]))])
    return curve, held


def summary_table(runs: dict, heldout: dict, eval_at: list[int], window: int = 50) -> str:
    """Markdown: per run, mean training loss / batch accuracy over the ``window`` steps up to
    each evaluation step, and held-out top-1 at it."""
    lines = ["| run | step | loss (last 50 steps) | batch top-1 % (last 50) | held-out top-1 % |",
             "|---|---|---|---|---|"]
    for label in dict.fromkeys([*runs, *heldout]):
        for step in eval_at:
            cur = runs.get(label)
            w = cur[(cur["step"] > step - window) & (cur["step"] <= step)] if cur is not None else None
            h = heldout.get(label)
            hv = h[h["step"] == step] if h is not None else None
            loss = f"{w['loss'].mean():.3f}" if w is not None and len(w) else ""
            acc = f"{100 * w['acc'].mean():.2f}" if w is not None and len(w) else ""
            top = f"{hv['top1'].iloc[0]:.2f} ± {hv['sem'].iloc[0]:.2f}" if hv is not None and len(hv) else ""
            if loss or top:
                lines.append(f"| {label} | {step} | {loss} | {acc} | {top} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
