"""Argument helpers shared by the verbs: examples in ``--help``, common flags, output checks.

Imports nothing heavy (``archlab generate`` and ``--help`` never load torch).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from archlab.errors import UsageError


def add_examples(p: argparse.ArgumentParser, *examples: str) -> None:
    """End ``p``'s ``--help`` with ``examples`` (command lines, shown as written)."""
    p.epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    p.formatter_class = argparse.RawDescriptionHelpFormatter


def check_at_least(args: argparse.Namespace, low: float, *dests: str) -> None:
    """Refuse an option ``dest`` of ``args`` below ``low`` (``None``: not given, fine)."""
    for dest in dests:
        value = getattr(args, dest)
        if value is not None and not value >= low:  # also refuses NaN
            raise UsageError(f"{_flag(dest)} must be >= {low}, got {value}")


def check_positive(args: argparse.Namespace, *dests: str) -> None:
    """Refuse an option ``dest`` of ``args`` that is not a finite number > 0."""
    for dest in dests:
        value = getattr(args, dest)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"{_flag(dest)} must be a number > 0, got {value}")


def _flag(dest: str) -> str:
    return f"-{dest}" if len(dest) == 1 else "--" + dest.replace("_", "-")


def add_ckpt(p: argparse.ArgumentParser, required: bool = False, help: str = "GHN checkpoint",
             dataset: bool = False) -> None:
    """``--ckpt`` (a file, or a published GHN's name) and ``--download``, which fetches a
    missing published one; ``dataset``: the verb's ``--download`` also fetches its dataset."""
    p.add_argument("--ckpt", required=required, default=None,
                   help=help + " (or a published GHN: ghn2_cifar10.pt, ghn3tm8.pt, ...)")
    where = "a published --ckpt into its folder (a bare name: ~/.cache/archlab/ghns/)"
    p.add_argument("--download", action="store_true",
                   help=f"download what is missing (online only): the dataset into --data-dir and {where}"
                   if dataset else f"download {where} when missing (online only)")


def resolve_ckpt(args: argparse.Namespace, dest: str = "ckpt") -> str | None:
    """The checkpoint file ``args.<dest>`` names, stored back into ``args``. A missing published
    GHN (``ghn3tm8.pt``, or a path ending in that name) is downloaded into its folder when
    ``args.download`` is set, else refused with where to get it; a bare published name is looked
    up in ``~/.cache/archlab/ghns/`` when the working folder lacks it. Other names pass as given."""
    value = getattr(args, dest)
    if not value or os.path.exists(value):
        return value
    from archlab.ghn import _download as dl

    flag, name, download = _flag(dest), Path(value).name, getattr(args, "download", False)
    if name not in dl.PUBLISHED_URLS:
        if download:
            raise UsageError(f"{flag} {value!r} not found, and --download fetches only the published "
                             f"GHNs: {', '.join(sorted(dl.PUBLISHED_URLS))}")
        return value
    folder = dl.default_ghn_dir() if name == value else Path(value).parent
    target = folder / name
    if not target.is_file():
        if not download:
            also = f" (nor in {str(folder)!r})" if name == value else ""
            raise UsageError(f"{flag} {value!r} not found{also}; pass --download to fetch it (online "
                             f"only), or get it from {dl.published_url(name)}")
        print(f"downloading {dl.published_url(name)} into {folder}", file=sys.stderr)
        target = dl.download_published(name, folder)
    setattr(args, dest, str(target))
    return str(target)


def add_ft_post(p: argparse.ArgumentParser) -> None:
    """``--ft-post``: how ``ghn-ft`` post-processes predicted parameters (rank and search)."""
    p.add_argument("--ft-post", default="noise", choices=("noise", "orth", "none"),
                   help="post-processing of the predicted parameters before a ghn-ft fine-tune: noise (default, "
                        "w + 0.1 std(w) N(0,1)), orth (orthogonalised at the predicted scale), none")


def add_input_size(p: argparse.ArgumentParser) -> None:
    """``--input-size``: the size model graphs are traced at."""
    p.add_argument("--input-size", default=None, metavar="CxHxW",
                   help="input size graphs are traced at: CxHxW, HxW or N (default: the model's "
                        "native size; if it cannot run there, the GHN's image size)")


def check_input_size(text: str | None) -> None:
    """Refuse a malformed ``--input-size`` before any work (see ``normalize_input_size``)."""
    if text is not None:
        from archlab.graph._resolve import normalize_input_size

        try:
            normalize_input_size(text)
        except ValueError as e:
            raise UsageError(f"--input-size: {e}") from None


def check_output_file(path: str | os.PathLike, flag: str = "--out",
                      inputs: dict[str, str | os.PathLike | None] | None = None) -> Path:
    """Refuse, before any work, an output file that is a directory, lies in a missing or
    unwritable folder, or is one of the ``inputs`` (``{flag: path}``), which it would destroy."""
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{flag} {str(out)!r} is a directory; give a file name")
    for in_flag, src in (inputs or {}).items():
        if src is not None and out.exists() and Path(src).exists() and os.path.samefile(out, src):
            raise UsageError(f"{flag} {str(out)!r} is the same file as {in_flag} {str(src)!r}; "
                             "refusing to overwrite it, choose another output")
    parent = out.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise UsageError(f"cannot write {flag} {str(out)!r}: {str(parent)!r} {what}")
    _probe(parent, flag, out)
    return out


def check_output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Refuse, before any work, an output folder that is a file or cannot be created."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{flag} {str(out)!r} is an existing file, not a folder")
    base = out
    while not base.exists():
        base = base.parent
    if not base.is_dir():
        raise UsageError(f"cannot create {flag} {str(out)!r}: {str(base)!r} is not a folder")
    _probe(base, flag, out)
    return out


def _probe(folder: Path, flag: str, out: Path) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".archlab-probe-"):
            pass
    except OSError as e:
        raise UsageError(f"cannot write {flag} {str(out)!r}: {str(folder)!r} is not writable "
                         f"({e.strerror or e})") from None


def json_text(doc: Any) -> str:
    """Strict JSON (no bare NaN/Infinity: non-finite numbers become null), indented."""
    return json.dumps(_finite(doc), indent=2, allow_nan=False, default=str)


def _finite(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:  # numpy / torch scalars
        x = x.item()
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x
