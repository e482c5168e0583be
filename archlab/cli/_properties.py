"""``archlab properties``: regress trained-network properties from graph embeddings (GHN-2 §5.2)."""

from __future__ import annotations

import argparse

from archlab.cli._args import add_examples

DEFAULT_PROPERTIES = "accuracy,accuracy_noise,inference_ms,convergence,params"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--emb", required=True,
                   help="embedding file(s) from `archlab embed`, comma-separated (same GHN), e.g. val.parquet,test.parquet")
    p.add_argument("--labels", required=True,
                   help="labels CSV(s), comma-separated: OUT/properties.csv of `archlab rank --ground-truth`")
    p.add_argument("--train-on", required=True, help="comma-separated sources (the embeddings' `source`) to fit on")
    p.add_argument("--test-on", required=True, help="comma-separated sources to report Kendall τ on")
    p.add_argument("--properties", default=DEFAULT_PROPERTIES, help=f"comma-separated (default: all: {DEFAULT_PROPERTIES})")
    p.add_argument("--cv", type=int, default=5, help="folds of the SVR grid search (5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and the gradient boosting (0)")
    p.add_argument("--drop-unmatched", action="store_true",
                   help="leave out embedded architectures that have no labels (default: refuse)")
    p.add_argument("--out", required=True,
                   help="output folder: properties.csv, properties.md, properties.png, predictions.csv")
    p.add_argument("--no-progress", action="store_true")
    p.description = ((p.description or "") + "\n\nInputs: labels from `archlab rank --split val --methods params "
                     "--ground-truth --out gt-val/` (OUT/properties.csv), embeddings from "
                     "`archlab embed --ckpt ghn.pt --split val --out val.parquet`; the same for test.")
    add_examples(p, "archlab properties --emb val.parquet,test.parquet --labels gt-val/properties.csv,gt-test/properties.csv "
                 "--train-on val --test-on test --out props/",
                 "archlab properties --emb all.parquet --labels gt/properties.csv --train-on val --test-on test "
                 "--properties accuracy,params --out props/")


def run(args: argparse.Namespace) -> int:

    import pandas as pd

    from archlab._io import atomic_write_text
    from archlab.analysis import (
        check_compatible,
        predict_properties,
        properties_markdown,
        read_embeddings,
        read_labels,
    )
    from archlab.analysis._properties import check_properties
    from archlab.cli import UsageError
    from archlab.cli._args import check_at_least, check_output_dir
    from archlab.plots import plot_property_taus

    check_at_least(args, 2, "cv")
    out = check_output_dir(args.out)
    emb_paths, label_paths = _paths(args.emb, "--emb"), _paths(args.labels, "--labels")
    labels = [read_labels(p) for p in label_paths]  # cheap checks first: a wrong file fails fast
    label = labels[0] if len(labels) == 1 else pd.concat(labels, ignore_index=True)
    label.attrs["path"] = ", ".join(label_paths)
    if len(labels) > 1:
        dup = label["id"][label["id"].duplicated()].unique().tolist()
        if dup:
            raise UsageError(f"{len(dup)} id(s) appear in more than one --labels file, e.g. {dup[:3]}")
    props = check_properties(args.properties.split(","), label)
    frames = [read_embeddings(p) for p in emb_paths]
    check_compatible(frames)
    emb = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    res = predict_properties(emb, label, args.train_on, args.test_on, props, cv=args.cv, seed=args.seed,
                             drop_unmatched=args.drop_unmatched, progress=not args.no_progress)
    for note in res.notes:
        print(f"note: {note}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(res.scores.to_csv(index=False, float_format="%.4f"), out / "properties.csv")
    atomic_write_text(res.predictions.to_csv(index=False, float_format="%.6g"), out / "predictions.csv")
    md = properties_markdown(res.scores)
    atomic_write_text(md, out / "properties.md")
    n = res.scores.iloc[0]
    plot_property_taus(res.scores, out / "properties.png",
                       title=f"trained on {args.train_on} ({n['n_train']}), tested on {args.test_on} ({n['n_test']})")
    print(md)
    print(f"wrote properties.csv, properties.md, properties.png, predictions.csv in {out}")
    return 0


def _paths(text: str, flag: str) -> list[str]:
    from archlab.cli import UsageError

    paths = [p.strip() for p in text.split(",") if p.strip()]
    if not paths:
        raise UsageError(f"{flag}: give at least one file")
    return paths
