"""Which candidate is worth training? GHN-based rankings against zero-cost proxies and ground truth.

    python analyses/ranking/run.py --ckpt GHN.pt [--test 100] [--val 40] [--epochs 4]
        [--ft-steps 5,10,20] [--ft-post noise|orth|none] [--cost-candidates 500] [--out DIR] [--seed 0] [--gt-only]
        [--dataset cifar10 --data-dir DIR [--gt-train-images N] [--gt-test-images N]]

With a GHN trained on digits (the documented command is in this study's README), or on CIFAR-10
with ``--dataset cifar10`` (the ground truth then on fixed subsets of the CIFAR-10 splits, sized
for a CPU by ``--gt-train-images`` / ``--gt-test-images``), scores the first
``--test`` DeepNets-1M test-split architectures with every ranking method of ``archlab rank``
(``ghn``, ``ghn-ft``/``random-ft`` at each K of ``--ft-steps``, the seven zero-cost proxies,
``params``, ``flops``), trains each of them (and the first ``--val`` validation-split ones, the
training part of the property regression) for ``--epochs`` epochs with the ground-truth recipe,
and reports in ``DIR`` (default: this study's ``results/``):

- ``ranking.csv`` (a column per method, ``ground_truth``), ``correlations.csv`` / ``.md``
  (Kendall τ, Spearman ρ, top-10 hits, seconds per candidate), ``scatter.png``, ``tau_vs_cost.png``;
- ``ft_steps.csv`` / ``ft_steps.png``: τ of ``ghn-ft`` and ``random-ft`` at each K;
- ``stability.csv``: τ between the accuracy after each epoch and the final one (is the ground
  truth's ranking settled?);
- ``cost.csv``: wall-clock and CPU seconds of ``ghn`` on ``--cost-candidates`` test architectures;
- ``properties.csv`` (the ground-truth properties of every trained candidate) and
  ``embeddings.parquet`` (their GHN embeddings), the inputs of ``archlab properties``; and
  ``property_prediction.csv``/``.png``: Kendall τ of each property regressed from the embeddings
  (fit on the val candidates, scored on the test ones) against parameter count alone;
- ``summary.md`` and ``manifest.json``.

Every stage is cached in ``DIR/cache/`` (scores per K, ground truth per candidate id), so a killed
run continues; ``--gt-only`` runs only the ground truth, so a second process can share that work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # analyses/: the shared manifest helper

import pandas as pd  # noqa: E402
from _data import add_data_args, resolve_data_dir  # noqa: E402
from _manifest import provenance, write_manifest  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

from archlab._device import resolve_device  # noqa: E402
from archlab._io import atomic_write_text  # noqa: E402
from archlab.analysis import (  # noqa: E402
    GroundTruthSpec,
    correlations,
    embed_to_file,
    ground_truth,
    markdown_table,
    predict_properties,
    properties_frame,
    properties_markdown,
    rank,
    read_embeddings,
)
from archlab.analysis._proxies import PROXIES as ZERO_COST  # noqa: E402
from archlab.cli._args import add_ft_post  # noqa: E402
from archlab.engine import from_split  # noqa: E402
from archlab.engine._short_ft import proxy_data  # noqa: E402
from archlab.ghn import load_ghn  # noqa: E402
from archlab.plots import plot_property_taus, plot_rank_grid, plot_tau_cost  # noqa: E402
from archlab.plots._figure import pyplot, save_figure  # noqa: E402

STUDY = "ranking"
BASE_METHODS = ("ghn", "ghn-loss", *ZERO_COST, "params", "flops")
#: Published reference points (GHN-2 on CIFAR-10, from ppuda's results; NAS-Bench-201 proxies).
REFERENCE_TAU = {"test": 0.26, "wide": 0.50, "deep": 0.27, "dense": 0.27, "bnfree": 0.36}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", required=True, help="GHN checkpoint (trained on --dataset)")
    p.add_argument("--test", type=int, default=100, help="test-split candidates to rank (100)")
    p.add_argument("--val", type=int, default=40,
                   help="val-split candidates trained for the property regression (40; 0: no property regression)")
    p.add_argument("--epochs", type=int, default=4, help="ground-truth epochs per candidate (4)")
    p.add_argument("--ft-steps", default="5,10,20", help="K values of ghn-ft / random-ft (5,10,20)")
    add_ft_post(p)
    p.add_argument("--cost-candidates", type=int, default=500, help="candidates of the ghn cost benchmark")
    p.add_argument("--max-eval-images", type=int, default=None, help="validation images of ghn/ft scores")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gt-only", action="store_true", help="only train ground truth (a helper worker)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--gt-train-images", type=int, default=None, help="ground truth: training images (all)")
    p.add_argument("--gt-test-images", type=int, default=None, help="ground truth: test images (all)")
    add_data_args(p)
    args = p.parse_args(argv)
    args.data_dir = resolve_data_dir(p, args, Path(args.out) / "cache")
    return args


def scored(cands, ghn, data, out: Path, ks: list[int], seed: int, dev, progress: bool,
           ft_post: str = "noise") -> tuple[pd.DataFrame, list[str]]:
    """All method columns for ``cands``: the base methods once, ghn-ft/random-ft at each K
    (``ghn-ft`` post-processed with ``ft_post``; each post-processing has its own cache)."""
    table = rank(cands, BASE_METHODS, ghn, data, out / "cache" / "base", seed=seed, device=dev, progress=progress)
    methods = list(BASE_METHODS)
    for k in ks:
        for m, folder in (("ghn-ft", f"ghn-ft-{ft_post}"), ("random-ft", "random-ft")):  # random-ft: any ft_post
            part = rank(cands, [m], ghn, data, out / "cache" / f"k{k}" / folder, ft_steps=k, seed=seed,
                        device=dev, progress=progress, ft_post=ft_post if m == "ghn-ft" else "noise")
            table[f"{m}@{k}"], table[f"{m}@{k}_s"] = part[m].to_numpy(), part[f"{m}_s"].to_numpy()
            methods.append(f"{m}@{k}")
    return table, methods


def stability(results: dict, cands, epochs: int) -> pd.DataFrame:
    """Kendall τ between the test accuracy after each epoch and the final accuracy."""
    final = [results[c.id]["top1"] for c in cands]
    per_epoch = [[top1 for _, top1 in results[c.id]["history"][1:]] for c in cands]  # evaluated once an epoch
    rows = []
    for e in range(1, epochs):
        at = [h[e - 1] for h in per_epoch]
        rows.append({"epoch": e, "kendall_tau_vs_final": kendalltau(at, final).statistic})
    return pd.DataFrame(rows)


def ghn_cost(ghn, data, out: Path, n: int, seed: int, dev) -> pd.DataFrame:
    """Seconds for ``ghn`` to score ``n`` test candidates (wall-clock and this process's CPU time)."""
    cands = from_split("test", limit=n)
    cache = out / "cache" / f"cost{n}"
    for f in cache.glob("scores.csv"):
        f.unlink()  # a benchmark: always measured afresh
    wall, cpu = time.perf_counter(), time.process_time()
    rank(cands, ["ghn"], ghn, data, cache, seed=seed, device=dev, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return pd.DataFrame([{"method": "ghn", "candidates": len(cands), "wall_s": wall, "cpu_s": cpu,
                          "wall_s_per_candidate": wall / len(cands)}])


def plot_ft_steps(ft: pd.DataFrame, path: Path, ft_post: str = "noise") -> Path:
    """τ of ghn-ft (post-processed with ``ft_post``) and random-ft (y) against K (x)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, part in ft.groupby("method"):
        ax.plot(part["k"], part["kendall_tau"], marker="o", label=f"{m} ({ft_post})" if m == "ghn-ft" else m)
    ax.set_xlabel("fine-tuning steps K")
    ax.set_ylabel("Kendall τ against ground truth")
    ax.set_xscale("log")
    ax.minorticks_off()  # only the K values are labelled
    ax.set_xticks(sorted(ft["k"].unique()), [str(k) for k in sorted(ft["k"].unique())])
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def summary(corr: pd.DataFrame, ft: pd.DataFrame, stab: pd.DataFrame, cost: pd.DataFrame, args) -> str:
    """The study's headline in markdown, each target with met / not met."""
    tau = dict(zip(corr["method"], corr["kendall_tau"]))
    ghn_based = {m: t for m, t in tau.items() if m in ("ghn", "ghn-loss") or m.startswith("ghn-ft")}
    best_ghn = max(ghn_based, key=ghn_based.get)
    best_zc = max(ZERO_COST, key=lambda m: tau[m])
    wide = ft.pivot(index="k", columns="method", values="kendall_tau")
    beats = [int(k) for k in wide.index if wide.loc[k, "ghn-ft"] > wide.loc[k, "random-ft"]]
    c = cost.iloc[0]
    per500 = 500 * c["wall_s_per_candidate"]
    subset = "".join(f", {n} {what} images" for n, what in ((args.gt_train_images, "training"),
                                                              (args.gt_test_images, "test")) if n)
    lines = [f"# Ranking on {args.dataset}: {int(corr['n'].iloc[0])} test-split candidates, "
             f"{args.epochs}-epoch ground truth{subset}", "", markdown_table(corr), "",
             *(f"- `{m}` τ = {tau[m]:.3f} ({what} of the predicted parameters; target ≥ 0.26, published "
               f"GHN-2 on CIFAR-10: 0.26): **{'met' if tau[m] >= 0.26 else 'not met'}**."
               for m, what in (("ghn", "top-1"), ("ghn-loss", "minus the loss")) if m in tau),
             f"- `ghn-ft` (post-processing {args.ft_post}) beats `random-ft` at K = {beats or 'none'} of {list(map(int, wide.index))}: "
             f"**{'met' if len(beats) == len(wide.index) else 'not met'}**.",
             f"- Best GHN-based method `{best_ghn}` τ = {ghn_based[best_ghn]:.3f}; best zero-cost proxy "
             f"`{best_zc}` τ = {tau[best_zc]:.3f}: "
             f"**{'met' if ghn_based[best_ghn] > tau[best_zc] else 'not met'}**.",
             f"- Cost: `ghn` scored {int(c['candidates'])} candidates in {c['wall_s']:.0f} s wall-clock "
             f"({c['cpu_s']:.0f} s CPU; {per500:.0f} s per 500) (target ≤ 120 s per 500 on 2 cores): "
             f"**{'met' if per500 <= 120 else 'not met'}**.",
             "- Ground-truth stability (τ of accuracy after epoch e against the final one): "
             + ", ".join(f"epoch {int(r.epoch)}: {r.kendall_tau_vs_final:.2f}" for r in stab.itertuples()) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    info = provenance(STUDY, args, [args.seed], argv=None if argv is None else [__file__, *argv])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device("auto")
    progress = not args.no_progress
    spec = GroundTruthSpec(dataset=args.dataset, epochs=args.epochs, seed=args.seed,
                           train_images=args.gt_train_images, test_images=args.gt_test_images)
    test, val = from_split("test", limit=args.test), (from_split("val", limit=args.val) if args.val else [])
    if args.gt_only:
        ground_truth(test + val, out / "cache", spec, args.data_dir, device=dev, progress=progress)
        return
    ghn = load_ghn(args.ckpt, map_location=dev)
    data = proxy_data(args.dataset, args.data_dir, max_eval_images=args.max_eval_images, seed=args.seed)
    ks = [int(k) for k in args.ft_steps.split(",")]
    table, methods = scored(test, ghn, data, out, ks, args.seed, dev, progress, args.ft_post)
    truth = ground_truth(test + val, out / "cache", spec, args.data_dir, device=dev, progress=progress)
    table["ground_truth"] = [truth[c.id]["top1"] for c in test]

    corr = correlations(table, methods)
    ft = corr[corr["method"].str.contains("@")].assign(
        k=lambda d: d["method"].str.split("@").str[1].astype(int), method=lambda d: d["method"].str.split("@").str[0])
    stab = stability(truth, test, args.epochs)
    cost = ghn_cost(ghn, data, out, args.cost_candidates, args.seed, dev)
    save = {"ranking.csv": table[["id", *methods, "ground_truth"]], "correlations.csv": corr,
            "ft_steps.csv": ft, "stability.csv": stab, "cost.csv": cost}
    figures = ["correlations.md", "scatter.png", "tau_vs_cost.png", "ft_steps.png", "summary.md"]
    text = summary(corr, ft, stab, cost, args)
    if val:  # the property regression: fit on the val candidates, scored on the test ones
        props = properties_frame({c.id: truth[c.id] for c in val + test}, {c.id: c.source for c in val + test})
        embed_to_file(ghn, test + val, out / "embeddings.parquet", progress=progress)
        regressed = predict_properties(read_embeddings(out / "embeddings.parquet"), props, "val", "test",
                                       seed=args.seed)
        save |= {"properties.csv": props, "property_prediction.csv": regressed.scores,
                 "property_predictions.csv": regressed.predictions}
        plot_property_taus(regressed.scores, out / "property_prediction.png",
                           title=f"properties from embeddings: fit on {len(val)} val, scored on {len(test)} test")
        figures += ["embeddings.parquet", "property_prediction.png"]
        text += "\n## Properties from graph embeddings (Kendall τ on test)\n\n" + properties_markdown(regressed.scores)
    for name, df in save.items():
        atomic_write_text(df.to_csv(index=False, float_format="%.6g"), out / name)
    atomic_write_text(markdown_table(corr), out / "correlations.md")
    plot_rank_grid(table, corr, out / "scatter.png", title=f"{args.dataset} test split: method score vs ground truth")
    plot_tau_cost(corr, out / "tau_vs_cost.png", title="Kendall τ against cost")
    plot_ft_steps(ft, out / "ft_steps.png", args.ft_post)
    atomic_write_text(text, out / "summary.md")
    print(text)
    write_manifest(out, info, device=str(dev), outputs=[*save, *figures])


if __name__ == "__main__":
    main()
