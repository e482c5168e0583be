"""Does a GHN-scored search find better architectures than random search at equal cost?

    OMP_NUM_THREADS=1 python analyses/search/run.py --ckpt GHN.pt [--budget 240] [--seeds 0,1,2]
        [--epochs 5] [--ft-steps 10] [--ft-post noise] [--reserve 0.25] [--methods ghn-ft,random-ft,random] [--out DIR]

On the embedded digits, for each seed and each method (see ``methods.py``): a ``ghn-ft`` TPE
search, a ``random-ft`` TPE search (each followed by full training of its finalists, best proxy
first) and random search with no proxy (random genotypes trained fully), every run on the same
budget of ``--budget`` CPU seconds of one core, finalists' training included. Writes, in ``DIR``
(default: this study's ``results/``):

- ``runs.csv``: one row per (method, seed): budget, CPU and wall seconds spent, candidates scored,
  candidates per CPU hour, best candidate by proxy, best fully-trained top-1 (digits test split);
- ``retrained.csv``: every finalist (proxy top-1 on val, fully-trained top-1 on test);
- ``tau.csv``: each proxy's Kendall τ against full training on its finalists (pooled over seeds)
  and, outside the budget, on the random method's architectures (``random_proxies.csv``);
- ``best.png`` (best-so-far fully-trained top-1 against CPU time, and the final bars),
  ``proxy_vs_truth.png``, ``summary.md`` (with the target's verdict) and ``manifest.json``.

Each run lives in ``DIR/cache/<settings>/<method>-s<seed>/`` (journal, ground-truth cache,
finalists' ledger; not committed), so a rerun continues where a killed one stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # analyses/: the shared manifest helper
sys.path.insert(0, str(HERE))  # this study's modules

import pandas as pd  # noqa: E402
from _manifest import provenance, write_manifest  # noqa: E402
from methods import METHODS, RunConfig, proxies_of_random_run, run_method  # noqa: E402
from report import (  # noqa: E402
    plot_best,
    plot_scatter,
    retrained_frame,
    runs_frame,
    summary_md,
    taus,
)
from tqdm.auto import tqdm  # noqa: E402

from archlab._io import atomic_write_text  # noqa: E402
from archlab.engine import proxy_data  # noqa: E402
from archlab.errors import UsageError  # noqa: E402
from archlab.ghn import fingerprint, load_ghn  # noqa: E402

STUDY = "search"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True, help="a GHN trained on digits (see README)")
    ap.add_argument("--budget", type=float, default=240.0, help="CPU seconds per (method, seed) (240)")
    ap.add_argument("--seeds", default="0,1,2", help="search seeds (0,1,2)")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of the full training (5)")
    ap.add_argument("--ft-steps", type=int, default=10, help="fine-tuning steps of the proxies (10)")
    ap.add_argument("--ft-post", default="noise", choices=("noise", "orth", "none"),
                    help="ghn-ft's post-processing of the predicted parameters (noise, the issue's default)")
    ap.add_argument("--reserve", type=float, default=0.25,
                    help="fraction of the budget a proxy search leaves for training its finalists (0.25)")
    ap.add_argument("--batch-size", type=int, default=64, help="proxy batch size (64)")
    ap.add_argument("--max-eval-images", type=int, default=None, help="proxy validation images (all)")
    ap.add_argument("--no-random-tau", action="store_true",
                    help="skip scoring the random method's architectures with every proxy (outside the budget)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--device", default="cpu", help="cpu (the budget is CPU time)")
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise UsageError(f"unknown method(s) {bad}; choose from {', '.join(METHODS)}")
    if not 0 < args.reserve < 1:
        raise UsageError(f"--reserve must be in (0, 1), got {args.reserve}")
    args.method_list = methods
    args.seed_list = [int(s) for s in args.seeds.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    info = provenance(STUDY, args, args.seed_list, argv=None if argv is None else [__file__, *argv])
    out = Path(args.out)
    cfg = RunConfig(budget_s=args.budget, reserve=args.reserve, ft_steps=args.ft_steps, epochs=args.epochs,
                    batch_size=args.batch_size, max_eval_images=args.max_eval_images, device=args.device,
                    ft_post=args.ft_post)
    cache = out / "cache" / cfg.tag()
    cache.mkdir(parents=True, exist_ok=True)
    ghn = load_ghn(args.ckpt, map_location=args.device).eval()
    fp = fingerprint(ghn)
    results, random_rows = [], []
    jobs = [(s, m) for s in args.seed_list for m in args.method_list]
    for seed, method in tqdm(jobs, desc="runs", unit="run"):
        data = proxy_data("digits", None, cfg.batch_size, cfg.max_eval_images, seed)
        root = cache / cfg.folder(method, seed)
        r = run_method(method, seed, cfg, root, ghn, data, fp)
        results.append(r)
        tqdm.write(f"{method:>9} seed {seed}: best trained {r['best_trained_top1']:.2f}% "
                   f"({r['best_trained_id']}), {r['candidates_scored']} candidates, "
                   f"{r['full_trainings']} full trainings, {r['cpu_s']:.0f} CPU s, {r['wall_s']:.0f} wall s")
        if method == "random" and not args.no_random_tau:
            random_rows += proxies_of_random_run(root, seed, cfg, ghn, data)

    runs = runs_frame(results)
    retrained = retrained_frame(results)
    random_proxies = pd.DataFrame(random_rows) if random_rows else None
    tau = taus(retrained, random_proxies)
    atomic_write_text(runs.to_csv(index=False, float_format="%.4f"), out / "runs.csv")
    atomic_write_text(retrained.to_csv(index=False, float_format="%.4f"), out / "retrained.csv")
    atomic_write_text(tau.to_csv(index=False, float_format="%.4f"), out / "tau.csv")
    outputs = ["runs.csv", "retrained.csv", "tau.csv", "summary.md", "best.png", "proxy_vs_truth.png"]
    if random_proxies is not None:
        atomic_write_text(random_proxies.to_csv(index=False, float_format="%.4f"), out / "random_proxies.csv")
        outputs.append("random_proxies.csv")
    atomic_write_text(json.dumps({"curves": {f"{r['method']}-s{r['seed']}": r["curve"] for r in results}}) + "\n",
                      out / "curves.json")
    outputs.append("curves.json")
    title = (f"digits, {cfg.budget_s:g} CPU s per run, full training {cfg.epochs} epochs, "
             f"proxies {cfg.ft_steps} steps, ghn-ft post {cfg.ft_post}, seeds {args.seeds}")
    plot_best(results, runs, out / "best.png", title)
    if len(retrained):
        plot_scatter(retrained, random_proxies, tau, out / "proxy_vs_truth.png", title)
    else:
        outputs.remove("proxy_vs_truth.png")
    summary = summary_md(runs, tau, cfg)
    atomic_write_text(summary, out / "summary.md")
    print(summary)
    write_manifest(out, info, device=args.device, outputs=sorted(outputs), settings=cfg.tag())
    return 0


if __name__ == "__main__":
    sys.exit(main())
