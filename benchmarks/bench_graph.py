"""Graph-building speed and memory: median of several builds, after model construction.

    python benchmarks/bench_graph.py [--repeats 7] [--models resnet50,vit_l_16,...]

Prints build time (median, min), the ratio to a real no-grad forward pass of the same model at
batch 1 (the baseline, timed in this process), and the peak RSS growth during building.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time
import warnings

import torch
import torchvision

from archlab.graph import build_graph, native_input_size


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet50,vit_l_16,convnext_base,efficientnet_b7,swin_b,maxvit_t,vit_h_14")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--forward-repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':18s} {'build med s':>11s} {'min s':>7s} {'forward s':>10s} {'build/fwd':>9s} {'peak ΔRSS MB':>12s}")
    for name in args.models.split(","):
        med, best, fmed, peak_mb = bench_one(name, args.repeats, args.forward_repeats)
        print(f"{name:18s} {med:11.3f} {best:7.3f} {fmed:10.3f} {med / fmed:9.2f} {peak_mb:12.1f}")
        gc.collect()


def bench_one(name: str, repeats: int, forward_repeats: int) -> tuple[float, float, float, float]:
    """(median build s, min build s, median forward s, peak RSS growth MB) for one model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.get_model(name, weights=None).eval()
    gc.collect()
    rss0 = _rss_mb()
    peak = [rss0]

    def build():
        build_graph(model)
        peak.append(_rss_mb())

    times = _time(build, repeats)
    x = torch.randn(1, *native_input_size(model))
    with torch.no_grad():
        fwd = _time(lambda: model(x), forward_repeats)
    return statistics.median(times), min(times), statistics.median(fwd), max(peak) - rss0

if __name__ == "__main__":
    main()
