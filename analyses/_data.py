"""The image data a study runs on: the embedded digits, or a CIFAR-10 folder / tarball.

Studies take ``--dataset`` and ``--data-dir``; a ``.tar.gz`` of CIFAR-10 (the one in
``../shared/data``) is unpacked once into the study's git-ignored cache.
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path


def add_data_args(ap: argparse.ArgumentParser) -> None:
    """``--dataset digits|cifar10`` and ``--data-dir`` (required for CIFAR-10: no hidden default)."""
    ap.add_argument("--dataset", choices=("digits", "cifar10"), default="digits",
                    help="the GHN's dataset (default digits, embedded)")
    ap.add_argument("--data-dir", default=None, help="CIFAR-10 folder or .tar.gz (required with --dataset cifar10)")


def resolve_data_dir(ap: argparse.ArgumentParser, args: argparse.Namespace, cache: Path) -> str | None:
    """The folder ``args.data_dir`` names (unpacked under ``cache`` when it is a tarball), or None for digits."""
    if args.dataset == "digits":
        if args.data_dir:
            ap.error("--data-dir is for --dataset cifar10; digits are embedded")
        return None
    if not args.data_dir:
        ap.error(f"--dataset {args.dataset} needs --data-dir (a CIFAR-10 folder or .tar.gz)")
    return str(dataset_folder(Path(args.data_dir), cache))


def dataset_folder(path: Path, cache: Path) -> Path:
    """``path`` itself, or the folder a ``.tar.gz`` of CIFAR-10 unpacks to under ``cache``."""
    if path.is_dir():
        return path
    if not path.is_file():
        raise SystemExit(f"--data-dir {path}: no such folder or file")
    dest = cache / path.name.split(".")[0]
    if not dest.is_dir():
        tmp = dest.with_name(dest.name + ".partial")
        with tarfile.open(path) as tf:
            tf.extractall(tmp, filter="data")
        tmp.rename(dest)
    found = [d for d in (dest, *sorted(dest.iterdir())) if (d / "train").is_dir() or (d / "data_batch_1").is_file()]
    if not found:
        raise SystemExit(f"{path}: unpacked to {dest}, but no CIFAR-10 folder (train/ or data_batch_1) inside")
    return found[0]
