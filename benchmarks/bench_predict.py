"""Time GHN parameter prediction against a plain forward pass of the same model.

For each GHN preset: build the graph of a fresh torchvision model (no caches) and set all of its
parameters with ``ghn.predict``; compare with one forward pass of the model (batch 2, no grad),
timed in the same process. Prints medians over ``--runs`` repetitions.

    python benchmarks/bench_predict.py                        # resnet50 @ 224, ghn2/ghn3-t/mlp
    python benchmarks/bench_predict.py --models resnet50,vit_b_16 --presets ghn2 --runs 7
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

from archlab.ghn import GHNConfig, build_ghn
from archlab.graph import build_graph


def _interleaved(fns: list, runs: int) -> list[list[float]]:
    """Seconds per call of each function, alternating them so that they see the same load."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50")
    ap.add_argument("--presets", default="ghn2,ghn3-t,mlp")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.runs} runs")
    header = f"{'model':<18}{'ghn':<10}{'forward ms':>12}{'graph ms':>10}{'predict ms':>12}{'total/fwd':>11}"
    print(header)
    print("-" * len(header))
    for name in args.models.split(","):
        model = torchvision.models.get_model(name, num_classes=args.num_classes).eval()
        x = torch.randn(2, 3, args.image_size, args.image_size)  # 2: predicted BatchNorm uses batch statistics

        def forward(model=model, x=x):
            with torch.no_grad():
                model(x)

        for preset in args.presets.split(","):
            ghn = build_ghn(GHNConfig.preset(preset, num_classes=args.num_classes,
                                             image_size=args.image_size)).eval()
            def predict(ghn=ghn, model=model):
                ghn.clear_cache()  # graph building and preparation are part of the timing
                ghn.predict(model)

            fwd, graph, pred = _interleaved([forward, lambda model=model: build_graph(model), predict],
                                            args.runs)
            ratio = statistics.median(p / f for p, f in zip(pred, fwd))
            med = statistics.median
            print(f"{name:<18}{preset:<10}{med(fwd) * 1e3:>12.1f}{med(graph) * 1e3:>10.1f}"
                  f"{med(pred) * 1e3:>12.1f}{ratio:>10.2f}x")
    print("predict ms includes graph building; forward = plain model(x), batch 2, no grad;")
    print("total/fwd = median over runs of predict/forward, timed alternately")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
