"""``archlab predict``: fill a model with GHN-predicted parameters and save its state_dict."""

from __future__ import annotations

import argparse

from archlab.cli._args import add_ckpt, add_examples, add_input_size, resolve_ckpt


def configure(p: argparse.ArgumentParser) -> None:
    add_ckpt(p, required=True, help="GHN checkpoint written by `archlab train` / save_ghn")
    p.add_argument("--model", required=True, help="torchvision model name or path/to/file.py:ClassName")
    p.add_argument("--out", required=True, help="output file for the model's state_dict (torch.save)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classifier outputs of the model (default and only choice: the GHN's num_classes)")
    add_input_size(p)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_examples(p, "archlab predict --ckpt ghn.pt --model resnet50 --out resnet50_ghn.pt",
                 "archlab predict --ckpt ghn.pt --model my_net.py:Net --input-size 3x32x32 --out net.pt")


def run(args: argparse.Namespace) -> int:
    import time

    from archlab._device import resolve_device
    from archlab._io import atomic_save
    from archlab.cli import UsageError
    from archlab.cli._args import check_at_least, check_input_size, check_output_file
    from archlab.engine._evaluate import open_ghn
    from archlab.graph import resolve_model

    check_at_least(args, 1, "num_classes")
    check_input_size(args.input_size)
    check_output_file(args.out, "--out", {"--ckpt": args.ckpt})
    device = resolve_device(args.device)
    ghn = open_ghn(resolve_ckpt(args), map_location=device)
    if args.num_classes is not None and args.num_classes != ghn.num_classes:
        raise UsageError(f"--num-classes {args.num_classes}: {args.ckpt} predicts {ghn.num_classes}-class "
                         f"classifiers, not {args.num_classes}; omit --num-classes or use a GHN "
                         f"trained for {args.num_classes} classes")
    model = resolve_model(args.model, num_classes=ghn.num_classes)
    t0 = time.perf_counter()
    ghn.predict(model.to(device), input_size=args.input_size)
    elapsed = time.perf_counter() - t0
    n = sum(p.numel() for p in model.parameters())
    out = atomic_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, args.out)
    print(f"predicted {n:,} parameters of {args.model} in {elapsed:.2f}s with {ghn.config.kind} "
          f"({args.ckpt}); BatchNorm uses batch statistics (no running stats saved)")
    print(f"state_dict written to {out}")
    return 0
