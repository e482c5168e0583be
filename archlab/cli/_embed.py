"""``archlab embed``: graph embeddings (mean final node states) of architectures from a GHN."""

from __future__ import annotations

import argparse

HELP = "Graph embeddings of architectures from a GHN"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="GHN checkpoint written by `archlab train` / save_ghn")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--models", help="comma-separated torchvision names or file.py:ClassName specs")
    src.add_argument("--split", help="a DeepNets-1M split name (e.g. test), built with the GHN's classes")
    p.add_argument("--out", required=True, help="output .npy file, shape (N, hid)")
    p.add_argument("--batch-size", type=int, default=64, help="architectures per GHN pass")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def run(args: argparse.Namespace) -> int:
    import os
    import tempfile
    from pathlib import Path

    import numpy as np

    from archlab.cli import UsageError
    from archlab.cli._predict import _device
    from archlab.ghn import CheckpointError, load_ghn
    from archlab.graph import GraphError, build_graph

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    try:
        ghn = load_ghn(args.ckpt, map_location=_device(args.device))
    except CheckpointError as e:
        raise UsageError(str(e)) from e
    names, models = _models(args, ghn)
    try:
        graphs = [build_graph(m) for m in _progress(models, len(names))]
    except GraphError as e:
        raise UsageError(f"cannot build a graph: {e}") from e
    emb = ghn.embed(graphs, batch_size=args.batch_size)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, emb)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"embedded {len(names)} architectures -> {emb.shape} float32, written to {out}")
    return 0


def _models(args, ghn):
    """``(names, iterator of models)`` from ``--models`` or ``--split``."""
    from archlab.cli import UsageError
    from archlab.graph import GraphError, resolve_model

    if args.models:
        specs = [s.strip() for s in args.models.split(",") if s.strip()]
        if not specs:
            raise UsageError("--models is empty; give e.g. resnet18,vgg11")
        models = []
        for s in specs:
            try:
                models.append(resolve_model(s, num_classes=ghn.num_classes))
            except (GraphError, ValueError, ImportError, AttributeError) as e:
                raise UsageError(f"cannot build model {s!r}: {e}") from e
        return specs, iter(models)
    try:
        from archlab.space import build_network, input_kind, load_split
    except ImportError as e:  # the space package is optional for this verb
        raise UsageError(f"--split needs archlab.space ({e})") from e
    try:
        genotypes = load_split(args.split)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from e
    size = ghn.image_size
    names = [f"{args.split}[{i}]" for i in range(len(genotypes))]
    return names, (build_network(g, num_classes=ghn.num_classes, input=input_kind(size), image_size=size)
                   for g in genotypes)


def _progress(it, total: int):
    from tqdm import tqdm

    return tqdm(it, total=total, desc="graphs", unit="net", disable=total < 20)
