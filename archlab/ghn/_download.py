"""Fetch a published GHN checkpoint on request (nothing downloads unless asked).

``download_published("ghn3tm8.pt", "ckpts/")`` fetches from the file's publisher (GitHub for
ppuda, the Hugging Face hub for ghn3), writes it atomically and checks it loads. The environment
variable ``ARCHLAB_GHN_MIRROR`` (a base URL, or a local folder) replaces the publishers: the file
is then fetched from ``$ARCHLAB_GHN_MIRROR/<name>``.
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
MIRROR_ENV = "ARCHLAB_GHN_MIRROR"


def default_ghn_dir() -> Path:
    """Where a published GHN named without a folder is kept: ``~/.cache/archlab/ghns``."""
    return Path.home() / ".cache" / "archlab" / "ghns"


def published_url(name: str) -> str:
    """The URL ``name`` is fetched from: its publisher's, or ``$ARCHLAB_GHN_MIRROR/<name>``."""
    if name not in PUBLISHED_URLS:
        raise UsageError(f"unknown published checkpoint {name!r}; choose from {sorted(PUBLISHED_URLS)}")
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return PUBLISHED_URLS[name]
    base = mirror if "://" in mirror else Path(mirror).resolve().as_uri()
    return base.rstrip("/") + "/" + name


def download_published(name: str, dest: str | os.PathLike = ".", timeout: float = 60.0,
                       progress: bool = True) -> Path:
    """Download the published checkpoint ``name`` (a key of :data:`PUBLISHED_URLS`) into the
    folder ``dest``; returns the file's path. An existing file is kept (not fetched again)."""
    from ._checkpoint import CheckpointError, load_ghn

    url = published_url(name)
    path = Path(dest) / name
    if path.is_file():
        return path
    import urllib.request

    from tqdm.auto import tqdm

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - fixed or user-set URLs
            size = r.headers.get("Content-Length")
            chunks = []
            with tqdm(total=int(size) if size and size.isdigit() else None, desc=name, unit="B",
                      unit_scale=True, disable=not progress) as bar:
                while chunk := r.read(1 << 20):
                    chunks.append(chunk)
                    bar.update(len(chunk))
    except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts; ValueError: a malformed URL
        raise UsageError(f"could not download {url} ({e}); download it by hand and pass its path") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(b"".join(chunks), path)
    except OSError as e:
        raise UsageError(f"cannot write {str(path)!r} ({e.strerror or e})") from None
    try:
        load_ghn(path)
    except CheckpointError as e:
        path.unlink()
        raise CheckpointError(f"downloaded {url} but it does not load: {e}") from None
    return path
