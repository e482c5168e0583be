"""ImageFolder trees: ``<root>/<class>/<image>``.

Small fixed-size images (CIFAR as JPEG/PNG files) are decoded once into a uint8 array and cached
as ``<data_dir>/.archlab_cache/<name>-<split>-<key>.npz``, where ``key`` hashes the file list
(relative paths and sizes), so a changed tree is decoded afresh; a cache that does not load
(corrupt, or holding pickled objects, which are never unpickled) is ignored with a warning and
rewritten. Large images (ImageNet) are read lazily per item.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from archlab._io import atomic_open
from archlab.errors import DataError

log = logging.getLogger("archlab.data")

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CACHE_DIRNAME = ".archlab_cache"


def list_classes(root: Path) -> list[str]:
    """Class sub-directory names of ``root``, sorted (ImageFolder's order); hidden ones skipped."""
    return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))


def scan_folder(
    root: Path, classes: list[str], with_sizes: bool = False
) -> tuple[list[str], np.ndarray] | tuple[list[str], np.ndarray, list[int]]:
    """Image paths relative to ``root`` (sorted within class) and their labels (= class index);
    with ``with_sizes`` also the file sizes in bytes."""
    paths: list[str] = []
    labels: list[int] = []
    sizes: list[int] = []
    for label, c in enumerate(classes):
        entries = sorted(
            (e for e in os.scandir(root / c)
             if e.is_file() and e.name.lower().endswith(IMG_EXTENSIONS)),
            key=lambda e: e.name,
        )
        paths.extend(f"{c}/{e.name}" for e in entries)
        labels.extend([label] * len(entries))
        if with_sizes:
            sizes.extend(e.stat().st_size for e in entries)
    if not paths:
        raise FileNotFoundError(
            f"no images found under {root}/<class>/ (extensions {', '.join(IMG_EXTENSIONS)})"
        )
    if with_sizes:
        return paths, np.asarray(labels, dtype=np.int64), sizes
    return paths, np.asarray(labels, dtype=np.int64)


def check_classes(found: list[str], expected: tuple[str, ...], root: Path, what: str) -> None:
    """Raise if the class folders under ``root`` are not exactly ``expected`` in that order."""
    if list(found) == list(expected):
        return
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    detail = []
    if missing:
        detail.append(f"missing {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    if extra:
        detail.append(f"unexpected {extra[:10]}{' ...' if len(extra) > 10 else ''}")
    if not detail:
        detail.append("same names in a different order")
    raise ValueError(
        f"{root} does not hold the {what} classes: found {len(found)} class folders "
        f"{found[:12]}{' ...' if len(found) > 12 else ''}; {'; '.join(detail)}"
    )


def _file_list_key(paths: list[str], sizes: list[int]) -> str:
    h = hashlib.sha1()
    for p, n in zip(paths, sizes, strict=True):
        h.update(f"{p}\0{n}\n".encode())
    return h.hexdigest()[:16]


def _decode_pil(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).transpose(2, 0, 1)


def _decoder() -> Callable[[Path], np.ndarray]:
    """torchvision.io's decoder (about 2x faster than PIL on small JPEGs) when present, else PIL."""
    try:
        from torchvision.io import ImageReadMode, decode_image, read_file
    except ImportError:  # torchvision.io decoding is deprecated since 0.29
        return _decode_pil

    def decode(path: Path) -> np.ndarray:
        try:
            return decode_image(read_file(str(path)), mode=ImageReadMode.RGB).numpy()
        except RuntimeError:  # a format torchvision cannot decode
            return _decode_pil(path)

    return decode


def _decode_one(decode: Callable, path: Path) -> np.ndarray:
    try:
        return decode(path)
    except (OSError, RuntimeError, ValueError) as e:
        raise DataError(f"{path}: cannot decode image ({type(e).__name__}: {e}); remove or replace it") from e


def decode_all(root: Path, paths: list[str], size: int, desc: str) -> np.ndarray:
    """Decode every image into one uint8 ``[N, 3, size, size]`` array (threads, tqdm bar)."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    decode = _decoder()
    chunks = [range(s, min(s + 512, len(paths))) for s in range(0, len(paths), 512)]

    def work(chunk: range) -> int:
        for i in chunk:
            img = _decode_one(decode, root / paths[i])
            if img.shape != (3, size, size):
                raise DataError(
                    f"{root / paths[i]}: expected a {size}x{size} RGB image, got "
                    f"{img.shape[2]}x{img.shape[1]}"
                )
            out[i] = img
        return len(chunk)

    workers = min(8, (os.cpu_count() or 1) + 2)
    with warnings.catch_warnings():  # torchvision 0.29 warns on every decode call
        warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
        with ThreadPoolExecutor(workers) as pool, tqdm(
            total=len(paths), desc=desc, unit="img", mininterval=1.0, leave=False
        ) as bar:
            for n in pool.map(work, chunks):
                bar.update(n)
    return out


def _save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def load_folder_arrays(
    data_dir: Path, sub: str, expected: tuple[str, ...], size: int, name: str,
    cache: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Decoded ``<data_dir>/<sub>/<class>/*`` as uint8 ``[N, 3, size, size]`` plus labels.

    Checks the class folders equal ``expected`` (in order). Uses/writes the decode cache under
    ``<data_dir>/.archlab_cache/`` when ``cache``; an unwritable directory only skips caching.
    """
    root = data_dir / sub
    classes = list_classes(root)
    check_classes(classes, expected, root, name)
    paths, labels, sizes = scan_folder(root, classes, with_sizes=True)
    key = _file_list_key(paths, sizes)
    cache_file = data_dir / CACHE_DIRNAME / f"{name}-{sub}-{key}.npz"
    if cache and cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as z:  # never unpickle a cache
                images, cached_labels = z["images"], z["labels"]
            if (images.dtype == np.uint8 and images.shape == (len(paths), 3, size, size)
                    and np.array_equal(cached_labels, labels)):
                log.info("loaded %d decoded images from cache %s", len(paths), cache_file)
                return images, labels
        except Exception as e:  # noqa: BLE001 - a cache that does not load is only rebuilt
            log.warning("ignoring unreadable cache %s (%s)", cache_file, e)
    images = decode_all(root, paths, size, desc=f"decoding {name} {sub}")
    if cache:
        try:
            _save_npz_atomic(cache_file, images=images, labels=labels)
            log.info("cached decoded images in %s", cache_file)
        except OSError as e:
            log.warning("could not write cache %s (%s); decoding again next time", cache_file, e)
    return images, labels


class LazyImageFolder(Dataset):
    """Files of ``<root>/<class>/*`` read and transformed per item (for large images)."""

    def __init__(
        self, root: Path, classes: list[str], paths: list[str], labels: np.ndarray,
        transform: Callable | None, source: str = "", split: str = "",
        indices: np.ndarray | None = None,
    ) -> None:
        self.root = Path(root)
        self.classes = list(classes)
        self.paths = list(paths)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.transform = transform
        self.source = source
        self.split = split
        self.indices = np.arange(len(paths)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        path = self.root / self.paths[i]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: cannot decode image ({type(e).__name__}: {e}); remove or replace it") from e
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[i])

    @property
    def targets(self) -> list[int]:
        return self.labels.tolist()

    def __repr__(self) -> str:
        return (f"LazyImageFolder(split={self.split!r}, n={len(self)}, "
                f"classes={len(self.classes)}, source={self.source!r})")
