"""Argument helpers shared by the verbs: examples in ``--help``, common flags, output checks.

Imports nothing heavy (``archlab generate`` and ``--help`` never load torch).
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
