"""``archlab train``: train a GHN on DeepNets-1M-style architectures."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from archlab.cli._args import add_examples


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ghn", default="ghn2",
                   help="preset: ghn2, ghn3-t, ghn3-s, ghn3-l, ghn3-xl or mlp (default ghn2)")
    p.add_argument("--dataset", default="digits", help="digits (offline default), cifar10, imagenet")
    p.add_argument("--data-dir", default=None, help="dataset folder (cifar10, imagenet)")
    p.add_argument("--download", action="store_true",
                   help="download the dataset into --data-dir when missing (needs internet)")
    p.add_argument("--out", default="ghn.pt", help="final GHN checkpoint (default ghn.pt); the "
                   "resumable state goes to OUT's stem + .resume.pt, metrics to .metrics.csv")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--minutes", type=float, default=None, help="wall-clock budget (default 10)")
    b.add_argument("--steps", type=int, default=None, help="budget in meta-batch steps")
    b.add_argument("--epochs", type=float, default=None, help="budget in passes over the images")
    p.add_argument("--resume", action="store_true", help="continue from OUT's .resume.pt if present")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh even if OUT or its .resume.pt exist, replacing them (default: "
                        "refuse to replace a file that is not a resumable archlab run)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--meta-batch", type=int, default=8, help="architectures per step (default 8)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    p.add_argument("--widths", default="16,24,32",
                   help="channel widths sampled per architecture, comma-separated (default 16,24,32)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-milestones", default=None,
                   help="fractions of the budget where the learning rate drops 10x, comma-separated "
                        "(default 0.667,0.833: GHN-2's epochs 200 and 250 of 300; 'none': a constant rate, "
                        "as the reference's first epochs)")
    p.add_argument("--lr-warmup", type=float, default=0.0,
                   help="fraction of the budget over which the learning rate ramps up linearly "
                        "from 1%% (default 0: none)")
    p.add_argument("--no-augment", action="store_true",
                   help="train on the images as they are (default: the dataset's training "
                        "augmentation, e.g. random crops)")
    p.add_argument("--wd", type=float, default=1e-5, help="weight decay (default 1e-5)")
    p.add_argument("--grad-clip", type=float, default=5.0)
    p.add_argument("--hid", type=int, default=None, help="override the preset's hidden size")
    p.add_argument("--layers", type=int, default=None, help="override the preset's layer count")
    p.add_argument("--ckpt-every", type=int, default=100, help="checkpoint every K steps (100)")
    p.add_argument("--ckpt-minutes", type=float, default=2.0,
                   help="also checkpoint every M minutes of wall-clock time (default 2; 0: off)")
    p.add_argument("--log-every", type=int, default=10, help="metrics CSV row every K steps (10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--amp", choices=["auto", "on", "off"], default="auto",
                   help="mixed precision (auto: on for CUDA)")
    p.add_argument("--num-workers", type=int, default=0, help="image loader worker processes (0)")
    p.add_argument("--arch-workers", type=int, choices=[0, 1], default=0,
                   help="1: build the next steps' architecture graphs in a worker process while "
                        "training (pays off only with a spare CPU core; on 2 cores it measured "
                        "0.84-1.02x); 0 (default): build them in the training process")
    p.add_argument("--checkpoint-activations", action="store_true",
                   help="recompute the target networks' cell activations in the backward pass "
                        "instead of keeping them: less peak memory for about one more forward pass")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_examples(p, "archlab train --ghn ghn2 --dataset digits --minutes 10 --meta-batch 2 --widths 32 "
                    "--lr-milestones 0.85 --no-augment --out ghn2.pt",
                 "archlab train --ghn ghn3-t --dataset cifar10 --data-dir data/cifar10 --device cuda --out ghn3.pt")


def _fractions(text: str) -> tuple[float, ...]:
    from archlab.cli import UsageError

    if text.strip().lower() == "none":
        return ()
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--lr-milestones must be comma-separated numbers; got {text!r}") from None
    if any(not 0 < v < 1 for v in values) or list(values) != sorted(values):
        raise UsageError(f"--lr-milestones must be increasing fractions in (0, 1); got {text!r}")
    return values


def _check_ranges(args: argparse.Namespace) -> None:
    """One UsageError for the first numeric option out of range, before any work."""
    from archlab.cli._args import check_at_least, check_positive

    check_at_least(args, 1, "meta_batch", "batch_size", "log_every", "ckpt_every", "hid", "layers")
    check_at_least(args, 0, "num_workers", "ckpt_minutes", "wd")
    check_positive(args, "steps", "epochs", "minutes", "lr", "grad_clip")


@contextmanager
def _notes_to_stderr() -> Iterator[None]:
    """Print the run's notes (resuming or starting afresh, stale locks) as ``archlab train: ...``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("archlab train: %(message)s"))
    loggers = [logging.getLogger(name) for name in ("archlab.train", "archlab.lock")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.INFO)
        lg.addHandler(handler)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def run(args: argparse.Namespace) -> int:
    import json

    from archlab.cli import ArchlabError, UsageError
    from archlab.engine._train import TrainConfig, train_ghn
    from archlab.ghn._config import PRESETS

    if args.ghn not in PRESETS:
        raise UsageError(f"unknown --ghn {args.ghn!r}; choose from {', '.join(PRESETS)}")
    _check_ranges(args)
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    try:
        widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        raise UsageError(f"--widths must be comma-separated integers; got {args.widths!r}") from None
    if any(w < 1 for w in widths):
        raise UsageError(f"--widths must be positive; got {args.widths!r}")
    milestones = _fractions(args.lr_milestones) if args.lr_milestones else TrainConfig.lr_milestones
    if not 0 <= args.lr_warmup < 1:
        raise UsageError(f"--lr-warmup must be a fraction in [0, 1); got {args.lr_warmup}")
    overrides = {k: v for k, v in (("hid", args.hid), ("layers", args.layers)) if v is not None}
    minutes = args.minutes
    if minutes is None and args.steps is None and args.epochs is None:
        minutes = 10.0
    cfg = TrainConfig(
        ghn=args.ghn, dataset=args.dataset, data_dir=args.data_dir, out=args.out, download=args.download,
        epochs=args.epochs, steps=args.steps, minutes=minutes, meta_batch=args.meta_batch,
        batch_size=args.batch_size, widths=widths, lr=args.lr, lr_milestones=milestones, lr_warmup=args.lr_warmup,
        weight_decay=args.wd,
        grad_clip=args.grad_clip, amp={"auto": None, "on": True, "off": False}[args.amp],
        device=args.device, seed=args.seed, ckpt_every=args.ckpt_every, log_every=args.log_every,
        ckpt_minutes=args.ckpt_minutes or None, augment=False if args.no_augment else None,
        resume=args.resume, overwrite=args.overwrite, num_workers=args.num_workers, arch_workers=args.arch_workers, ghn_overrides=overrides,
        checkpoint_activations=args.checkpoint_activations,
        progress=not args.no_progress)
    try:
        with _notes_to_stderr():
            result = train_ghn(cfg)
    except ValueError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise ArchlabError(e.strerror or str(e)) from None
    if result.out is not None:
        print(json.dumps({k: result.to_dict()[k] for k in (
            "out", "steps", "epochs", "archs_seen", "loss_avg", "acc_avg", "skipped",
            "elapsed_s", "finished", "interrupted", "ranks_in_sync")}, indent=2, default=str))
    if result.interrupted:
        print(f"interrupted at step {result.steps}; continue with --resume", flush=True)
        return 130
    return 0
