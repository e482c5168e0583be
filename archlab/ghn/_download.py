"""Fetch a published GHN checkpoint on request (nothing downloads unless asked).

``download_published("ghn3tm8.pt", "ckpts/")`` fetches from the file's publisher (GitHub for
ppuda, the Hugging Face hub for ghn3), writes it atomically and checks it loads.
"""

from __future__ import annotations

import os
from pathlib import Path

from archlab._io import atomic_write_bytes
from archlab.errors import UsageError

_PPUDA = "https://raw.githubusercontent.com/facebookresearch/ppuda/main/checkpoints/"
_GHN3 = "https://huggingface.co/SamsungSAILMontreal/ghn3/resolve/main/"
PUBLISHED_URLS: dict[str, str] = {
    **{n: _PPUDA + n for n in ("ghn2_cifar10.pt", "ghn2_imagenet.pt", "mlp_cifar10.pt")},
    **{n: _GHN3 + n for n in ("ghn3tm8.pt", "ghn3sm8.pt", "ghn3lm8.pt", "ghn3xlm16.pt")},
}


def download_published(name: str, dest: str | os.PathLike = ".", timeout: float = 60.0) -> Path:
    """Download the published checkpoint ``name`` (a key of :data:`PUBLISHED_URLS`) into the
    folder ``dest``; returns the file's path. An existing file is kept (not fetched again)."""
    from ._checkpoint import CheckpointError, load_ghn

    if name not in PUBLISHED_URLS:
        raise UsageError(f"unknown published checkpoint {name!r}; choose from {sorted(PUBLISHED_URLS)}")
    path = Path(dest) / name
    if path.is_file():
        return path
    import urllib.request

    url = PUBLISHED_URLS[name]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - fixed https URLs
            data = r.read()
    except OSError as e:
        raise UsageError(f"could not download {url} ({e}); download it by hand and pass its path") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(data, path)
    try:
        load_ghn(path)
    except CheckpointError as e:
        path.unlink()
        raise CheckpointError(f"downloaded {url} but it does not load: {e}") from None
    return path
