"""``archlab map``: a 2-D map (UMAP or PCA) of embedding files, as PNG or self-contained HTML."""

from __future__ import annotations

import argparse

from archlab.cli._args import add_examples


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--emb", action="append", required=True,
                   help="embedding file (archlab embed); the first is the reference the map is fitted on; repeat")
    p.add_argument("--highlight", default="", help="comma-separated ids to ring and label")
    p.add_argument("--color", default="source",
                   help="column to colour by: source (default), params, flops, accuracy or any --labels column")
    p.add_argument("--labels", default=None, help="CSV with an 'id' column joined on id (e.g. accuracies)")
    p.add_argument("--shift", default=None, help="a shift.csv (archlab shift) whose percentiles show on hover")
    p.add_argument("--method", default="umap", choices=("umap", "pca"),
                   help="umap (default; PCA for fewer than 20 reference architectures) or pca")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="map.png (or .pdf/.svg) or map.html")
    add_examples(p, "archlab map --emb ref.parquet --emb zoo.parquet --highlight resnet50,convnext_tiny --out map.png",
                 "archlab map --emb ref.parquet --emb zoo.parquet --color params --shift shift/shift.csv --out map.html")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab.analysis import EmbeddingMap, map_frame, read_embeddings
    from archlab.cli import UsageError
    from archlab.plots import check_image_path, plot_map_html, plot_map_png

    out = Path(args.out)
    html = out.suffix.lower() in (".html", ".htm")
    if html:
        if out.is_dir() or not out.parent.exists():
            raise UsageError(f"cannot write {args.out!r}: a directory, or its folder does not exist")
    else:
        check_image_path(out)
    frames = [read_embeddings(p) for p in args.emb]
    labels = _labels(args)
    frame = map_frame(frames[0], frames[1:], EmbeddingMap(method=args.method, random_state=args.seed), labels)
    if args.color not in frame.columns:
        known = [c for c in frame.columns if c not in ("x", "y", "role", "id")]
        raise UsageError(f"--color {args.color!r} is not a column of the embeddings or labels; "
                         f"choose from {', '.join(known)}")
    highlight = [h.strip() for h in args.highlight.split(",") if h.strip()]
    missing = [h for h in highlight if h not in set(frame["id"])]
    if missing:
        raise UsageError(f"--highlight ids not in any --emb file: {', '.join(missing)}")
    draw = plot_map_html if html else plot_map_png
    draw(frame, out, color=args.color, highlight=highlight)
    print(f"{frame.attrs['method'].upper()} map of {len(frames[0])} reference + "
          f"{len(frame) - len(frames[0])} other architectures -> {out}")
    return 0


def _labels(args):
    import pandas as pd

    from archlab.cli import UsageError

    tables = []
    for path, what in ((args.labels, "--labels"), (args.shift, "--shift")):
        if path is None:
            continue
        try:
            t = pd.read_csv(path)
        except (OSError, ValueError) as e:
            raise UsageError(f"{what} {path!r}: cannot read it as CSV ({e})") from None
        if "id" not in t.columns:
            raise UsageError(f"{what} {path!r} has no 'id' column to join on")
        if what == "--shift":
            t = t[[c for c in ("id", "percentile", "verdict") if c in t.columns]]
        tables.append(t.drop_duplicates("id"))
    if not tables:
        return None
    out = tables[0]
    for t in tables[1:]:
        out = out.merge(t, on="id", how="outer", suffixes=("", "_shift"))
    return out
