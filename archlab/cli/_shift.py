"""``archlab shift``: how far architectures are from the GHN's training distribution."""

from __future__ import annotations

import argparse

from archlab.cli._args import add_ckpt, add_examples, resolve_ckpt


def configure(p: argparse.ArgumentParser) -> None:
    add_ckpt(p, help="the GHN the reference was embedded with (needed to embed --models/--split)")
    p.add_argument("--ref", required=True, help="reference embeddings (archlab embed --train N)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--models", help="comma-separated torchvision names or file.py:ClassName specs")
    what.add_argument("--split", help="comma-separated DeepNets-1M split names, e.g. deep,dense,bnfree")
    what.add_argument("--genotypes", help="a JSON Lines genotype file")
    what.add_argument("--emb", help="embeddings already computed with the same GHN (archlab embed)")
    p.add_argument("--limit", type=int, default=None, help="only the first N architectures of each split")
    p.add_argument("--k", type=int, default=5, help="neighbours of the kNN score (5)")
    p.add_argument("--score", default="knn", choices=("knn", "mahalanobis"), help="headline score (knn)")
    p.add_argument("--readout", default="mean+sum", choices=("mean+sum", "mean"),
                   help="features scored: mean+sum (default: the embedding and the sum-pooled node states, "
                        "from the num_nodes column; sees deeper/denser networks) or mean (the embedding alone)")
    p.add_argument("--bands", default="90,99", help="percentiles where 'shifted' and 'far' start (90,99)")
    p.add_argument("--out", required=True, help="output folder: shift.csv and shift.png")
    p.add_argument("--batch-size", type=int, default=4, help="architectures per GHN pass (4)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-progress", action="store_true")
    add_examples(p, "archlab shift --ckpt ghn.pt --ref ref.parquet --models resnet50,convnext_tiny,my_net.py:Net "
                    "--out shift/",
                 "archlab shift --ckpt ghn.pt --ref ref.parquet --split deep,dense,bnfree --limit 20 --out ood/")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab._io import atomic_write_text
    from archlab.analysis import (
        ShiftScore,
        check_compatible,
        read_embeddings,
        shift_table,
    )
    from archlab.cli import UsageError
    from archlab.plots import check_image_path, plot_shift

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out!r} is a file; give a folder for shift.csv and shift.png")
    bands = _bands(args.bands)
    ref = read_embeddings(args.ref)
    if len(ref) == 0:
        raise UsageError(f"--ref {args.ref!r} holds no architectures")
    query = read_embeddings(args.emb) if args.emb else _embed_query(args, ref)
    check_compatible([ref, query])
    est = ShiftScore(k=args.k, score=args.score, bands=bands, readout=args.readout).fit(ref)
    table = shift_table(est, query)
    out.mkdir(parents=True, exist_ok=True)
    check_image_path(out / "shift.png")
    atomic_write_text(table.to_csv(index=False, float_format="%.6g"), out / "shift.csv")
    plot_shift(table, out / "shift.png", bands=bands,
               title=f"shift against {len(ref)} reference architectures ({args.ref})")
    print(f"{len(table)} architectures against {len(est.reference_ids_)} reference + "
          f"{len(est.calibration_ids_)} held-out calibration architectures ({args.score}, k={args.k}, "
          f"readout {args.readout})")
    for r in table.to_dict("records"):
        print(f"  {r['id']:<28} {r['percentile']:6.1f}  {r['verdict']:<16} nearest {r['nearest'].split(';')[0]}")
    print(f"wrote {out / 'shift.csv'} and {out / 'shift.png'}")
    return 0


def _bands(text: str) -> tuple[float, float]:
    from archlab.cli import UsageError

    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise UsageError(f"--bands {text!r}: give two percentiles, e.g. 90,99") from None
    if not 0 < lo < hi < 100:
        raise UsageError(f"--bands {text!r}: need 0 < low < high < 100")
    return lo, hi


def _embed_query(args, ref):
    import pandas as pd

    from archlab._device import resolve_device
    from archlab.analysis import embed_candidates, file_info
    from archlab.cli import UsageError
    from archlab.engine import from_genotype_file, from_models, from_split
    from archlab.ghn import load_ghn

    if not args.ckpt:
        raise UsageError("--ckpt is needed to embed --models/--split/--genotypes (or pass --emb)")
    ghn = load_ghn(resolve_ckpt(args), map_location=resolve_device(args.device))
    if args.models:
        cands = from_models(args.models.split(","))
    elif args.genotypes:
        cands = from_genotype_file(args.genotypes, limit=args.limit)
    else:
        cands = [c for s in args.split.split(",") if s.strip() for c in from_split(s.strip(), limit=args.limit)]
    df = pd.concat(list(embed_candidates(ghn, cands, batch_size=args.batch_size, total=len(cands),
                                         progress=not args.no_progress)), ignore_index=True)
    df.attrs["archlab"] = file_info(ghn)
    df.attrs["path"] = args.ckpt
    return df
