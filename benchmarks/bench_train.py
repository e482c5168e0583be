"""GHN training throughput: architectures per second of full meta-batch updates.

Each timed step does what ``archlab train`` does per step: sample ``--meta-batch`` DeepNets-1M
training architectures (widths 16/24/32 unless ``--widths``), build the networks and their graphs, predict all
parameters, run every network on one real image batch, back-propagate and update the GHN. The
baseline is the same loop in fp32 (AMP off) with graphs built in the training process, timed in
the same process, alternating windows; ``+w`` settings build the graphs ahead in a worker process.
Prints medians over ``--runs`` windows of ``--steps`` steps.

    python benchmarks/bench_train.py                                    # digits, CPU: fp32 only
    python benchmarks/bench_train.py --device cuda --dataset cifar10 --data-dir DIR
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from archlab.data import dataset_info, load_dataset
from archlab.engine._arch_stream import ArchSteps, meta_batches, networks_of
from archlab.engine._ddp import DistInfo
from archlab.engine._train import TrainConfig
from archlab.engine._train_step import chance_floor, meta_step
from archlab.ghn import GHNConfig, build_ghn

FC_DIM = TrainConfig.fc_dim  # what `archlab train` uses by default


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _make_runner(args, device: torch.device, amp: bool, workers: int, images, targets,
                 num_classes: int, size: int):
    """A function that runs ``args.steps`` meta-steps and returns (seconds, build seconds).

    Graphs come from :func:`meta_batches` with ``workers`` (0: built in this process, 1: in a
    worker process started afresh for every window, so no window inherits prefetched steps).
    """
    torch.manual_seed(0)
    ghn = build_ghn(GHNConfig.preset(args.ghn, num_classes=num_classes, image_size=size)).to(device)
    opt = torch.optim.Adam(ghn.parameters(), lr=1e-3, weight_decay=1e-5)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    info = DistInfo(device=device)
    pos = 0

    def run() -> tuple[float, float]:
        nonlocal pos
        _sync(device)
        t0 = time.perf_counter()
        build = 0.0
        steps = meta_batches(ArchSteps(seed=0, start=pos, meta_batch=args.meta_batch, widths=tuple(args.widths),
                                       num_classes=num_classes, image_size=size, fc_dim=FC_DIM), workers)
        for _ in range(args.steps):
            b0 = time.perf_counter()
            mine = next(steps)
            nets = networks_of(mine, num_classes, size, FC_DIM, device)
            build += time.perf_counter() - b0
            meta_step(ghn, opt, scaler, nets, [graph for *_, graph in mine], images, targets, info=info,
                      grad_clip=5.0, running_loss=None, explode_floor=chance_floor(num_classes))
        if hasattr(steps, "close"):
            steps.close()
        pos += args.steps * args.meta_batch
        _sync(device)
        return time.perf_counter() - t0, build

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ghn", default="ghn2")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--meta-batch", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--widths", type=int, nargs="+", default=list(TrainConfig.widths),
                    help="channel widths sampled per architecture (default: archlab train's)")
    ap.add_argument("--steps", type=int, default=10, help="meta-steps per timed window")
    ap.add_argument("--runs", type=int, default=5, help="timed windows per setting")
    ap.add_argument("--settings", default=None,
                    help="comma-separated settings to time, fp32 (the baseline) always among them "
                         "(default: fp32,fp32+w, plus amp,amp+w on CUDA; fp32 alone for a quick run)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    info = dataset_info(args.dataset)
    ds = load_dataset(args.dataset, args.data_dir, split="train", seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True)
    images, targets = next(iter(loader))
    images, targets = images.to(device), targets.to(device)

    settings = {"fp32": (False, 0), "fp32+w": (False, 1)}
    if device.type == "cuda":
        settings |= {"amp": (True, 0), "amp+w": (True, 1)}
    if args.settings:
        chosen = {"fp32", *args.settings.split(",")}
        unknown = sorted(chosen - set(settings))
        if unknown:
            raise ValueError(f"unknown --settings {', '.join(unknown)} on {device.type}; "
                             f"choose from {', '.join(settings)}")
        settings = {k: v for k, v in settings.items() if k in chosen}
    runners = {k: _make_runner(args, device, amp, workers, images, targets, info.num_classes,
                               info.image_size) for k, (amp, workers) in settings.items()}
    for run in runners.values():
        run()  # warm-up window (cuDNN autotuning, allocator)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runners}
    for _ in range(args.runs):
        for k, run in runners.items():
            times[k].append(run())

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {name}, {args.ghn}, {args.dataset}, meta-batch "
          f"{args.meta_batch}, batch {args.batch_size}; median of {args.runs} windows x {args.steps} steps")
    header = f"{'setting':<8}{'archs/s':>10}{'s/step':>9}{'build s/step':>14}{'speed-up':>10}"
    print(header)
    print("-" * len(header))
    archs = args.steps * args.meta_batch
    base = statistics.median(t for t, _ in times["fp32"])
    for k, ts in times.items():
        med = statistics.median(t for t, _ in ts)
        build = statistics.median(b for _, b in ts) / args.steps
        print(f"{k:<8}{archs / med:>10.2f}{med / args.steps:>9.3f}{build:>14.3f}{base / med:>9.2f}x")
    print("archs/s = architectures per second of full training steps (build networks + graphs, "
          "predict, forward/backward, update); build = building the networks plus waiting for the "
          "graphs; +w = graphs built ahead in a worker process (`archlab train --arch-workers 1`)")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (ValueError, FileNotFoundError) as e:  # bad --ghn / --dataset / --data-dir
        raise SystemExit(f"bench_train: error: {e}") from None
