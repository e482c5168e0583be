"""Embedding throughput on DeepNets-1M train architectures: the old path against `archlab embed`.

    python benchmarks/bench_embed.py [--archs 200] [--runs 3] [--ghn ghn2] [--image-size 16]

``traced`` (the baseline, what ``archlab embed`` did before): build each network, trace its graph
(``build_graph(build_network(g))``) and embed 64 graphs per GHN pass. ``embed_candidates`` (what
``archlab embed --train N`` runs now): graphs straight from the genotypes (``genotype_graph``,
piece templates cached), 4 graphs per GHN pass, plus every metadata column of the Parquet file.
Prints the median over ``--runs`` of milliseconds per architecture, the ratio against the
baseline measured in this run, and the projected time for a 10,000-architecture reference set.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch

from archlab.analysis import embed_candidates
from archlab.engine import from_train_stream
from archlab.ghn import GHNConfig, build_ghn
from archlab.graph import build_graph
from archlab.space import build_network, input_kind, train_stream


def _traced(ghn, n: int, size: int) -> None:
    graphs = [build_graph(build_network(g, 10, input=input_kind(size), image_size=size))
              for g in itertools.islice(train_stream(0), n)]
    ghn.embed(graphs, batch_size=64)


def _current(ghn, n: int, size: int) -> None:
    for _ in embed_candidates(ghn, from_train_stream(n), progress=False):
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ghn", default="ghn2")
    ap.add_argument("--image-size", type=int, default=16)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    ghn = build_ghn(GHNConfig.preset(args.ghn, num_classes=10, image_size=args.image_size)).eval()
    ways = {"traced": _traced, "embed_candidates": _current}
    with torch.no_grad():
        for way in ways.values():  # warm-up: imports, template cache, allocator
            way(ghn, 8, args.image_size)
        times: dict[str, list[float]] = {w: [] for w in ways}
        for _ in range(args.runs):
            for name, way in ways.items():
                t0 = time.perf_counter()
                way(ghn, args.archs, args.image_size)
                times[name].append((time.perf_counter() - t0) / args.archs * 1e3)
    base = statistics.median(times["traced"])
    print(f"{args.archs} train architectures, {args.ghn}, {args.image_size}px, median of {args.runs} runs, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'way':<18} {'ms/arch':>9} {'vs traced':>10} {'10k archs':>10}")
    for name, t in times.items():
        m = statistics.median(t)
        print(f"{name:<18} {m:>9.2f} {m / base:>9.2f}x {m * 10:>8.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
