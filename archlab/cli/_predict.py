"""``archlab predict``: fill a model with GHN-predicted parameters and save its state_dict."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", required=True, help="GHN checkpoint written by `archlab train` / save_ghn")
    p.add_argument("--model", required=True, help="torchvision model name or path/to/file.py:ClassName")
    p.add_argument("--out", required=True, help="output file for the model's state_dict (torch.save)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classifier outputs of the model (default: the GHN's num_classes)")
    p.add_argument("--input-size", default=None, help="graph input size CxHxW (default: native)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def run(args: argparse.Namespace) -> int:
    import time

    from archlab._device import resolve_device
    from archlab._io import atomic_save
    from archlab.cli import UsageError
    from archlab.ghn import CheckpointError, load_ghn
    from archlab.graph import GraphError, resolve_model

    device = resolve_device(args.device)
    try:
        ghn = load_ghn(args.ckpt, map_location=device)
    except CheckpointError as e:
        raise UsageError(str(e)) from e
    num_classes = args.num_classes or ghn.num_classes
    try:
        model = resolve_model(args.model, num_classes=num_classes)
    except (GraphError, ValueError, ImportError, AttributeError) as e:
        raise UsageError(f"cannot build model {args.model!r}: {e}") from e
    t0 = time.perf_counter()
    try:
        ghn.predict(model.to(device), input_size=args.input_size)
    except GraphError as e:
        raise UsageError(f"cannot build the graph of {args.model!r}: {e}") from e
    elapsed = time.perf_counter() - t0
    n = sum(p.numel() for p in model.parameters())
    out = atomic_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, args.out)
    print(f"predicted {n:,} parameters of {args.model} in {elapsed:.2f}s with {ghn.config.kind} "
          f"({args.ckpt}); BatchNorm uses batch statistics (no running stats saved)")
    print(f"state_dict written to {out}")
    return 0

