"""Embedding throughput: graphs of DeepNets-1M train architectures for a GHN, two ways.

    python benchmarks/bench_embed.py [--archs 200] [--runs 3] [--ghn ghn2] [--image-size 16]

``traced`` (the baseline) builds each network and traces it (``build_graph(build_network(g))``);
``genotype`` builds the same graph straight from the genotype (``genotype_graph``, piece templates
cached across architectures). Both are then embedded by the same GHN in batches of 64. Prints
the median over ``--runs`` of milliseconds per architecture for each stage, the ratio against
the baseline in this run, and the projected time for a 10,000-architecture reference set.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch

from archlab.ghn import GHNConfig, build_ghn
from archlab.graph import build_graph
from archlab.space import build_network, genotype_graph, input_kind, train_stream


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ghn", default="ghn2")
    ap.add_argument("--image-size", type=int, default=16)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    size = args.image_size
    ghn = build_ghn(GHNConfig.preset(args.ghn, num_classes=10, image_size=size)).eval()
    genotypes = list(itertools.islice(train_stream(0), args.archs))
    kind = input_kind(size)
    ways = {
        "traced": lambda g: build_graph(build_network(g, 10, input=kind, image_size=size)),
        "genotype": lambda g: genotype_graph(g, 10, input=kind, image_size=size),
    }
    for way in ways.values():  # warm-up: imports, template cache, allocator
        ghn.embed([way(g) for g in genotypes[:8]])
    times: dict[str, dict[str, list[float]]] = {w: {"graphs": [], "embed": []} for w in ways}
    for _ in range(args.runs):
        for name, way in ways.items():
            t0 = time.perf_counter()
            graphs = [way(g) for g in genotypes]
            t1 = time.perf_counter()
            with torch.no_grad():
                ghn.embed(graphs, batch_size=64)
            t2 = time.perf_counter()
            times[name]["graphs"].append((t1 - t0) / len(genotypes) * 1e3)
            times[name]["embed"].append((t2 - t1) / len(genotypes) * 1e3)
    base = statistics.median(a + b for a, b in zip(times["traced"]["graphs"], times["traced"]["embed"]))
    print(f"{args.archs} train architectures, {args.ghn}, {size}px, median of {args.runs} runs, "
          f"{torch.get_num_threads()} threads")
    print(f"{'way':<10} {'graphs ms/arch':>15} {'embed ms/arch':>14} {'total ms/arch':>14} {'vs traced':>10} "
          f"{'10k archs':>10}")
    for name in ways:
        g, e = statistics.median(times[name]["graphs"]), statistics.median(times[name]["embed"])
        total = g + e
        print(f"{name:<10} {g:>15.2f} {e:>14.2f} {total:>14.2f} {total / base:>9.2f}x {total * 10:>8.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
