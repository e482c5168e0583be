"""Headless matplotlib and the one way figures are saved (atomically, format checked first)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from archlab.errors import UsageError

IMAGE_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg")


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_image_path(path: str | os.PathLike) -> Path:
    """Refuse, before any work is done, an image path with an unknown format or no folder."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in IMAGE_FORMATS:
        raise UsageError(f"cannot write a figure to {str(path)!r}: unknown image format "
                         f"{fmt or '(no extension)'!r}; use one of {', '.join(IMAGE_FORMATS)}")
    if path.is_dir():
        raise UsageError(f"cannot write a figure to {str(path)!r}: it is a directory")
    parent = path.parent
    if not parent.exists():
        raise UsageError(f"cannot write a figure to {str(path)!r}: folder {str(parent)!r} does not exist")
    return path


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically (format from the suffix) and close it."""
    from archlab._io import atomic_open

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".") or "png"
    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, dpi=dpi, format=fmt)
    finally:
        pyplot().close(fig)
    return path


def short_label(candidate_id: str) -> str:
    """A readable label for a candidate id: ``dir/sub/my_net.py:Net`` becomes ``my_net.py:Net``."""
    text = str(candidate_id)
    head, sep, tail = text.rpartition(":")
    if sep and head.endswith(".py"):
        return f"{Path(head).name}:{tail}"
    return text
