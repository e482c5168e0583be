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


def _make_runner(args, device: torch.device, amp: bool, workers: int, checkpoint: bool, images, targets,
                 num_classes: int, size: int):
    """A function that runs ``args.steps`` meta-steps and returns (seconds, seconds per phase).

    Graphs come from :func:`meta_batches` with ``workers`` (0: built in this process, 1: in a
    worker process started afresh for every window, so no window inherits prefetched steps).
    """
    torch.manual_seed(0)
    ghn = build_ghn(GHNConfig.preset(args.ghn, num_classes=num_classes, image_size=size)).to(device)
    opt = torch.optim.Adam(ghn.parameters(), lr=1e-3, weight_decay=1e-5)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    info = DistInfo(device=device)
    pos = 0

    def run() -> tuple[float, dict[str, float]]:
        nonlocal pos
        _sync(device)
        t0 = time.perf_counter()
        phases: dict[str, float] = {"build": 0.0}
        steps = meta_batches(ArchSteps(seed=0, start=pos, meta_batch=args.meta_batch, widths=tuple(args.widths),
                                       num_classes=num_classes, image_size=size, fc_dim=FC_DIM), workers)
        for _ in range(args.steps):
            b0 = time.perf_counter()
            mine = next(steps)
            nets = networks_of(mine, num_classes, size, FC_DIM, device)
            phases["build"] += time.perf_counter() - b0
            meta_step(ghn, opt, scaler, nets, [graph for *_, graph in mine], images, targets, info=info,
                      grad_clip=5.0, running_loss=None, explode_floor=chance_floor(num_classes),
                      timings=phases, checkpoint_activations=checkpoint)
        if hasattr(steps, "close"):
            steps.close()
        pos += args.steps * args.meta_batch
        _sync(device)
        return time.perf_counter() - t0, phases

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
    ap.add_argument("--memory-steps", type=int, default=0,
                    help="also run `archlab train` for this many steps (with and without "
                         "--checkpoint-activations) and print its peak resident memory")
    ap.add_argument("--settings", default=None,
                    help="comma-separated settings to time, fp32 (the baseline) always among them "
                         "(default: fp32,fp32+w,fp32+ck, plus amp,amp+w on CUDA; fp32 alone for a quick run)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    info = dataset_info(args.dataset)
    ds = load_dataset(args.dataset, args.data_dir, split="train", seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True)
    images, targets = next(iter(loader))
    images, targets = images.to(device), targets.to(device)

    settings = {"fp32": (False, 0, False), "fp32+w": (False, 1, False), "fp32+ck": (False, 0, True)}
    if device.type == "cuda":
        settings |= {"amp": (True, 0, False), "amp+w": (True, 1, False)}
    if args.settings:
        chosen = {"fp32", *args.settings.split(",")}
        unknown = sorted(chosen - set(settings))
        if unknown:
            raise ValueError(f"unknown --settings {', '.join(unknown)} on {device.type}; "
                             f"choose from {', '.join(settings)}")
        settings = {k: v for k, v in settings.items() if k in chosen}
    runners = {k: _make_runner(args, device, amp, workers, ck, images, targets, info.num_classes,
                               info.image_size) for k, (amp, workers, ck) in settings.items()}
    for run in runners.values():
        run()  # warm-up window (cuDNN autotuning, allocator)
    times: dict[str, list[tuple[float, dict[str, float]]]] = {k: [] for k in runners}
    for _ in range(args.runs):
        for k, run in runners.items():
            times[k].append(run())

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {name}, {args.ghn}, {args.dataset}, meta-batch "
          f"{args.meta_batch}, batch {args.batch_size}; median of {args.runs} windows x {args.steps} steps")
    header = f"{'setting':<9}{'archs/s':>10}{'s/step':>9}{'speed-up':>10}"
    print(header)
    print("-" * len(header))
    archs = args.steps * args.meta_batch
    base = statistics.median(t for t, _ in times["fp32"])
    for k, ts in times.items():
        med = statistics.median(t for t, _ in ts)
        print(f"{k:<9}{archs / med:>10.2f}{med / args.steps:>9.3f}{base / med:>9.2f}x")
    print("archs/s = architectures per second of full training steps (build networks + graphs, "
          "predict, forward/backward, update); +w = graphs built ahead in a worker process "
          "(`archlab train --arch-workers 1`); +ck = target cells recomputed in the backward pass "
          "(`--checkpoint-activations`)")
    print()
    print_split(times, args.steps)
    if args.memory_steps:
        print()
        print_memory(args, device)
    return 0


def print_split(times: dict, steps: int) -> None:
    """Per setting: median seconds per step in each phase, and the eager floor's share."""
    names = ["build", "ghn forward", "target fwd/bwd", "ghn backward", "optimiser"]
    header = f"{'setting':<9}" + "".join(f"{n:>16}" for n in names) + f"{'other':>9}{'floor share':>13}"
    print("time split, seconds per step (build = networks from genotypes + graphs straight from "
          "genotypes; target fwd/bwd = the eager floor: the target networks' own forward and backward)")
    print(header)
    print("-" * len(header))
    for k, ts in times.items():
        total = statistics.median(t for t, _ in ts) / steps
        split = {n: statistics.median(p.get(n, 0.0) for _, p in ts) / steps for n in names}
        other = max(0.0, total - sum(split.values()))
        print(f"{k:<9}" + "".join(f"{split[n]:>16.3f}" for n in names)
              + f"{other:>9.3f}{100 * split['target fwd/bwd'] / total:>12.1f}%")


def print_memory(args, device: torch.device) -> None:
    """Peak resident memory of real `archlab train` runs (subprocesses) of ``--memory-steps``."""
    import subprocess
    import sys
    import tempfile

    print(f"peak resident memory of `archlab train` ({args.memory_steps} steps, meta-batch "
          f"{args.meta_batch}, batch {args.batch_size}, {args.dataset}, {device.type})")
    for label, extra in (("default", []), ("--checkpoint-activations", ["--checkpoint-activations"])):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "archlab", "train", "--ghn", args.ghn, "--dataset", args.dataset,
                   "--steps", str(args.memory_steps), "--meta-batch", str(args.meta_batch),
                   "--batch-size", str(args.batch_size), "--widths", ",".join(map(str, args.widths)),
                   "--device", device.type, "--no-progress", "--out", f"{tmp}/ghn.pt", *extra]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _PEAK_OF_CHILD, *cmd], check=True, capture_output=True,
                                 text=True)
            wall = time.perf_counter() - t0
            peak = int(out.stdout.split()[-1]) / 2**20  # KiB -> GiB
        print(f"  {label:<26} peak RSS {peak:.2f} GiB, {wall / args.memory_steps:.2f} s/step (start-up included)")


# a wrapper with one child, so that RUSAGE_CHILDREN's maximum is that run's own peak
_PEAK_OF_CHILD = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
                  "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (ValueError, FileNotFoundError) as e:  # bad --ghn / --dataset / --data-dir
        raise SystemExit(f"bench_train: error: {e}") from None
