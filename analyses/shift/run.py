"""How far is an architecture from what the GHN knows? Shift scores on the embedded default.

    python analyses/shift/run.py --ckpt GHN.pt [--ref-size 10000] [--per-split 100] [--accuracy-per-split 50]
        [--models resnet18,...] [--dataset digits|cifar10 --data-dir DIR] [--out DIR] [--seed 0]

With a GHN trained on digits (the documented command is in this study's README) or on CIFAR-10
(``--dataset cifar10 --data-dir`` a CIFAR-10 folder or tarball: the accuracies of predicted
parameters are then measured on CIFAR-10 test images), embeds a
reference of ``--ref-size`` DeepNets-1M TRAIN architectures, fits :class:`archlab.analysis.ShiftScore`
(20% of the reference held out for calibration), and scores the first ``--per-split`` architectures
of the test split and of each out-of-distribution split (wide, deep, dense, bnfree) plus ten
torchvision models; the accuracy of predicted parameters (for the Spearman correlation) is
measured on the first ``--accuracy-per-split`` of each (default: all of them), since it costs
far more than an embedding. The headline readout is ``mean+sum`` (the embedding and the sum-pooled node
states); the ``mean`` readout (the embedding alone) is scored alongside for comparison. Reports,
in ``DIR`` (default: this study's ``results/``):

- ``auroc.csv``: AUROC of the shift percentile (kNN and Mahalanobis) separating test from each
  OOD split, per readout, with the split's mean predicted-parameter top-1 and, for deep and
  dense, ``in_support``: the share of the split's architectures whose (cells, nodes per cell)
  pair occurs in the reference (networks the train generator itself draws), and
  ``auroc_if_support_alike`` = 1 - in_support / 2, the AUROC of a score that separates every
  other architecture perfectly and those no better than chance, and ``auroc_knn_in_support`` /
  ``auroc_knn_out_of_support``: the kNN AUROC of those two parts of the split separately;
- ``torchvision.csv`` (both readouts) and ``shift.png`` (the headline): percentiles and verdicts
  of the torchvision models;
- ``correlation.csv``: Spearman correlation between the shift score and the top-1 accuracy of
  the GHN-predicted parameters over the test and OOD architectures;
- ``map.png``: UMAP of the reference with everything else placed on it; ``summary.md``; and
  ``manifest.json``. Embedding files and accuracies are cached in ``DIR/cache/<GHN fingerprint>/``, named by
  what they depend on (not committed), so a rerun
  continues.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # analyses/: the shared manifest helper

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _data import add_data_args, resolve_data_dir  # noqa: E402
from _manifest import provenance, write_manifest  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from archlab._device import resolve_device  # noqa: E402
from archlab._io import atomic_write_text  # noqa: E402
from archlab.analysis import (  # noqa: E402
    EmbeddingMap,
    ShiftScore,
    embed_to_file,
    map_frame,
    read_embeddings,
    shift_table,
)
from archlab.data import dataset_info, load_dataset, make_loader  # noqa: E402
from archlab.engine import evaluate_candidates, from_models, from_split, from_train_stream  # noqa: E402
from archlab.engine._evaluate import fixed_subset  # noqa: E402
from archlab.ghn import fingerprint, load_ghn  # noqa: E402
from archlab.plots import plot_map_png, plot_shift  # noqa: E402

STUDY = "shift"
READOUTS = ("mean+sum", "mean")  # the headline first
OOD = ("wide", "deep", "dense", "bnfree")
MODELS = ("resnet18,resnet50,convnext_tiny,vit_b_16,swin_t,efficientnet_b0,mobilenet_v3_large,"
          "regnet_y_400mf,densenet121,vgg11")


def _embedded(path: Path, ghn, candidates, total: int):
    if not path.exists():  # resumable: an interrupted run continues from its saved chunks
        embed_to_file(ghn, candidates, path, total=total)
    return read_embeddings(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True, help="a GHN trained on --dataset (see README)")
    ap.add_argument("--ref-size", type=int, default=10000, help="train architectures in the reference")
    ap.add_argument("--per-split", type=int, default=100, help="architectures of test and of each OOD split")
    ap.add_argument("--accuracy-per-split", type=int, default=None,
                    help="architectures of each split whose predicted-parameter accuracy is measured (all)")
    ap.add_argument("--models", default=MODELS, help="torchvision models to score")
    ap.add_argument("--max-images", type=int, default=None, help="test images for the accuracies (all)")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    add_data_args(ap)
    args = ap.parse_args(argv)
    n_acc = args.per_split if args.accuracy_per_split is None else min(args.accuracy_per_split, args.per_split)
    if n_acc < 1:
        ap.error(f"--accuracy-per-split must be at least 1; got {args.accuracy_per_split}")
    info = provenance(STUDY, args, [args.seed], argv=None if argv is None else [__file__, *argv])
    out = Path(args.out)
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    data_dir = resolve_data_dir(ap, args, cache)
    dev = resolve_device(args.device)
    ghn = load_ghn(args.ckpt, map_location=dev).eval()
    cache = cache / fingerprint(ghn)  # files of another GHN are never reused
    cache.mkdir(exist_ok=True)

    ref = _embedded(cache / f"ref{args.ref_size}.parquet", ghn, from_train_stream(args.ref_size), args.ref_size)
    splits = {s: from_split(s, limit=args.per_split) for s in ("test", *OOD)}
    archs = [c for cands in splits.values() for c in cands]
    split_emb = _embedded(cache / f"splits{args.per_split}.parquet", ghn, archs, len(archs))
    models = from_models(args.models.split(","))
    zoo_key = hashlib.sha1(args.models.encode()).hexdigest()[:8]
    zoo_emb = _embedded(cache / f"torchvision-{zoo_key}.parquet", ghn, models, len(models))

    # "-eval": scored in eval mode (dropout off); accuracies cached before that fix are not reused
    acc_path = cache / f"accuracy{n_acc}-{args.dataset}-{args.max_images or 'all'}images-s{args.seed}-eval.csv"
    if not acc_path.exists():
        ds = dataset_info(args.dataset)
        images = fixed_subset(load_dataset(args.dataset, data_dir, split="test"), args.max_images, args.seed)
        measured = [c for cands in splits.values() for c in cands[:n_acc]]
        acc = evaluate_candidates(measured, {"ghn": ghn}, make_loader(images, 128, shuffle=False),
                                  ds.num_classes, ds.image_size, dev, seed=args.seed)
        atomic_write_text(acc[acc.method == "ghn"].to_csv(index=False), acc_path)
    acc = pd.read_csv(acc_path)[["id", "top1"]]

    ests = {r: ShiftScore(k=5, random_state=args.seed, readout=r).fit(ref) for r in READOUTS}
    est = ests[READOUTS[0]]
    tables = {r: shift_table(e, split_emb).merge(acc, on="id", how="left") for r, e in ests.items()}
    table = tables[READOUTS[0]]
    zoo = shift_table(est, zoo_emb)
    zoo_all = pd.concat([shift_table(e, zoo_emb).assign(readout=r) for r, e in ests.items()], ignore_index=True)
    support = _support(from_train_stream(args.ref_size), splits)
    auroc = pd.concat([_auroc(t, r, support) for r, t in tables.items()], ignore_index=True)
    corr = []
    for readout, joined in tables.items():
        joined = joined.dropna(subset=["top1"])  # the architectures whose accuracy was measured
        for name, part in (("test+ood", joined), ("ood only", joined[joined.source != "test"])):
            for score in ("knn", "mahalanobis", "percentile"):
                rho, p = spearmanr(part[score], part["top1"])
                corr.append({"readout": readout, "set": name, "score": score, "n": len(part), "spearman": rho,
                             "p_value": p})
    corr = pd.DataFrame(corr)

    atomic_write_text(auroc.to_csv(index=False, float_format="%.4f"), out / "auroc.csv")
    atomic_write_text(zoo_all.to_csv(index=False, float_format="%.4g"), out / "torchvision.csv")
    atomic_write_text(table.to_csv(index=False, float_format="%.4g"), out / "splits.csv")
    atomic_write_text(corr.to_csv(index=False, float_format="%.4f"), out / "correlation.csv")
    plot_shift(zoo, out / "shift.png", title=f"torchvision models against {len(ref)} DeepNets-1M train architectures")
    frame = map_frame(ref, [split_emb, zoo_emb], EmbeddingMap(random_state=args.seed))
    plot_map_png(frame, out / "map.png", color="source", highlight=["resnet50", "convnext_tiny", "vit_b_16"])
    summary = _summary(auroc, zoo_all, corr, len(ref), est)
    atomic_write_text(summary, out / "summary.md")
    print(summary)
    write_manifest(out, info, device=str(dev), outputs=None)
    return 0


def _auroc(table: pd.DataFrame, readout: str, support: dict[str, set[str]]) -> pd.DataFrame:
    """AUROC of each score's percentile separating test from each OOD split in ``table``; for deep
    and dense also the kNN AUROC on their in-support and out-of-support parts separately."""
    rows = []
    test = table[table.source == "test"]

    def auc(other: pd.DataFrame, score: str) -> float:
        if other.empty:
            return np.nan
        y = np.r_[np.zeros(len(test)), np.ones(len(other))]
        return float(roc_auc_score(y, np.r_[test[f"{score}_percentile"], other[f"{score}_percentile"]]))

    for split in OOD:
        other = table[table.source == split]
        row = {"readout": readout, "split": split, "n": len(other)}
        for score in ("knn", "mahalanobis"):
            row[f"auroc_{score}"] = auc(other, score)
        row["median_percentile"] = float(other["percentile"].median())
        row["mean_top1"] = float(other["top1"].mean())  # over the architectures whose accuracy was measured
        row["n_top1"] = int(other["top1"].notna().sum())
        inside = other["id"].isin(support[split]) if split in support else None
        row["in_support"] = np.nan if inside is None else float(inside.mean())
        row["auroc_if_support_alike"] = 1.0 - row["in_support"] / 2.0
        row["auroc_knn_in_support"] = np.nan if inside is None else auc(other[inside], "knn")
        row["auroc_knn_out_of_support"] = np.nan if inside is None else auc(other[~inside], "knn")
        rows.append(row)
    return pd.DataFrame(rows)


def _support(reference, splits: dict) -> dict[str, set[str]]:
    """For the splits that differ from train in cells or nodes per cell (deep, dense), the ids of
    the architectures whose (cells, nodes per cell) pair occurs in the reference genotypes: the
    networks the train generator itself draws."""
    def key(c):
        return c.genotype.n_cells, len(c.genotype.normal) // 2

    seen = {key(c) for c in reference}
    return {s: {c.id for c in splits[s] if key(c) in seen} for s in ("deep", "dense")}


def _summary(auroc, zoo, corr, n_ref, est) -> str:
    heads = list(dict.fromkeys(zoo["readout"]))
    lines = [f"# Shift scores (reference: {n_ref} train architectures, {len(est.calibration_ids_)} of them "
             f"held out for calibration; k=5; headline readout {est.readout})", "",
             "## AUROC: test split against each OOD split", "",
             "| readout | split | n | AUROC kNN | AUROC Mahalanobis | median percentile | mean top-1 | in support | "
             "AUROC if support alike | AUROC kNN in support | AUROC kNN out of support |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.readout} | {r.split} | {r.n} | {r.auroc_knn:.3f} | {r.auroc_mahalanobis:.3f} | "
              f"{r.median_percentile:.1f} | {r.mean_top1:.1f} | {_num(r.in_support, '.2f')} | "
              f"{_num(r.auroc_if_support_alike, '.2f')} | {_num(r.auroc_knn_in_support, '.3f')} | "
              f"{_num(r.auroc_knn_out_of_support, '.3f')} |" for r in auroc.itertuples()]
    lines += ["", "## torchvision models (percentile / verdict / kNN / Mahalanobis per readout)", "",
              "| model | " + " | ".join(f"{h} {c}" for h in heads for c in ("pct", "verdict", "kNN", "Mahal.")) + " |",
              "|---" * (1 + 4 * len(heads)) + "|"]
    by = {h: zoo[zoo.readout == h].set_index("id") for h in heads}
    for mid in by[heads[0]].sort_values("percentile").index:
        cells = [f"{by[h].loc[mid, 'percentile']:.1f} | {by[h].loc[mid, 'verdict']} | {by[h].loc[mid, 'knn']:.3g} | "
                 f"{by[h].loc[mid, 'mahalanobis']:.3g}" for h in heads]
        lines.append(f"| {mid} | " + " | ".join(cells) + " |")
    lines += ["", "## Shift score against accuracy of predicted parameters (Spearman)", "",
              "| readout | set | score | n | rho | p |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.readout} | {r.set} | {r.score} | {r.n} | {r.spearman:.3f} | {r.p_value:.2g} |"
              for r in corr.itertuples()]
    return "\n".join(lines) + "\n"


def _num(x: float, fmt: str) -> str:
    return "" if np.isnan(x) else format(x, fmt)


if __name__ == "__main__":
    sys.exit(main())
