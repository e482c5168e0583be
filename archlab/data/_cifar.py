"""CIFAR-10 / CIFAR-100 from torchvision's python batches or from an ImageFolder tree.

Layouts recognised under ``data_dir`` (checked in this order):

* ``python``: torchvision's python batches, ``data_dir`` being ``cifar-10-batches-py/`` itself
  (``data_batch_1..5``, ``test_batch``, ``batches.meta``) or its parent; for CIFAR-100
  ``cifar-100-python/`` (``train``, ``test``, ``meta``) or its parent.
* ``imagefolder``: ``train/<class>/*`` and ``test/<class>/*``, class folders exactly the CIFAR
  class names (CIFAR order = alphabetical order for both CIFAR-10 and CIFAR-100).

Python batches are pickles; they are read with :class:`_BatchUnpickler`, which builds only
numpy arrays and plain values, so a planted pickle cannot run code.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archlab.errors import DataError

try:
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]

log = logging.getLogger("archlab.data")

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)


@dataclass(frozen=True)
class CifarSpec:
    """File names of one CIFAR variant in torchvision's python-batch layout."""

    name: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str
    classes: tuple[str, ...]
    title: str


CIFAR_SPECS = {
    "cifar10": CifarSpec(
        "cifar10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch", "batches.meta", "labels", "label_names", CIFAR10_CLASSES, "CIFAR-10",
    ),
    "cifar100": CifarSpec(
        "cifar100", "cifar-100-python", ("train",), "test", "meta",
        "fine_labels", "fine_label_names", CIFAR100_CLASSES, "CIFAR-100",
    ),
}


@dataclass(frozen=True)
class Layout:
    """What was found: ``kind`` ("python" or "imagefolder") and the directory it lives in."""

    kind: str
    root: Path

    def describe(self, title: str) -> str:
        what = "torchvision python batches" if self.kind == "python" else "ImageFolder tree"
        return f"{title} {what} in {self.root}"


def detect_cifar_layout(name: str, data_dir: str | Path) -> Layout:
    """Find which CIFAR layout ``data_dir`` holds; a clear FileNotFoundError if none."""
    spec = CIFAR_SPECS[name]
    d = Path(data_dir).expanduser()
    expected = (
        f"expected {spec.folder}/ (torchvision python batches: "
        f"{', '.join(spec.train_files[:1])}{'..5' if len(spec.train_files) > 1 else ''}, "
        f"{spec.test_file}, {spec.meta_file}) or train/<class>/ and test/<class>/ (ImageFolder)"
    )
    if not d.is_dir():
        raise FileNotFoundError(f"no {spec.title} found: {d} is not a directory; {expected}")
    for cand in (d, d / spec.folder):
        if (cand / spec.meta_file).is_file() or (cand / spec.test_file).is_file():
            return Layout("python", cand)
    if (d / "train").is_dir() and (d / "test").is_dir():
        return Layout("imagefolder", d)
    present = sorted(p.name for p in d.iterdir())[:12]
    raise FileNotFoundError(f"no {spec.title} found in {d}: {expected}; found {present}")


def _key(entry: dict, key: str):
    """``entry[key]`` for python-batch dicts pickled with str or bytes keys."""
    if key in entry:
        return entry[key]
    bkey = key.encode()
    if bkey in entry:
        return entry[bkey]
    raise KeyError(key)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes with protocol 2, for latin-1 only."""
    if encoding.lower().replace("-", "") != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _frombuffer for core in ("core", "_core")},
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays, and nothing that runs code."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load global {module}.{name}: a CIFAR python "
                                         "batch holds only arrays and plain values") from None


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"missing python-batch file {path}")
    try:
        with open(path, "rb") as f:  # latin1, as torchvision: py2 pickles of the originals
            entry = _BatchUnpickler(f, encoding="latin1").load()
    except Exception as e:  # noqa: BLE001 - every failure to unpickle is reported the same way
        raise DataError(f"{path}: not a readable CIFAR python batch (truncated, corrupt or holding "
                        f"objects other than arrays and plain values): {type(e).__name__}: "
                        f"{str(e)[:200]}") from None
    if not isinstance(entry, dict):
        raise DataError(f"{path}: not a CIFAR python batch (a {type(entry).__name__}, not a dict)")
    return entry


def read_python_batches(spec: CifarSpec, root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``[N, 3, 32, 32]`` images and int64 labels from torchvision's python batches."""
    meta = _unpickle(root / spec.meta_file)
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in _key(meta, spec.names_key)]
    if tuple(names) != spec.classes:
        raise ValueError(
            f"{root / spec.meta_file}: label names {names[:12]} are not the {spec.title} "
            f"classes {list(spec.classes[:12])}"
        )
    files = spec.train_files if train else (spec.test_file,)
    data, labels = [], []
    for fname in files:
        entry = _unpickle(root / fname)
        try:
            x = np.asarray(_key(entry, "data"), dtype=np.uint8)
            y = np.asarray(_key(entry, spec.label_key), dtype=np.int64)
        except KeyError as e:
            raise ValueError(
                f"{root / fname}: not a {spec.title} python batch (no {e.args[0]!r} entry; "
                f"keys {sorted(map(str, entry))})"
            ) from None
        if x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
            raise ValueError(
                f"{root / fname}: expected data [N, 3072] with N labels, got data "
                f"{list(x.shape)} and {len(y)} labels"
            )
        data.append(x)
        labels.append(y)
    images = np.concatenate(data).reshape(-1, 3, 32, 32)
    y = np.concatenate(labels)
    if y.min() < 0 or y.max() >= len(spec.classes):
        raise ValueError(f"{root}: labels outside 0..{len(spec.classes) - 1}")
    return images, y


def download_cifar(name: str, data_dir: Path) -> Path:
    """Fetch CIFAR with torchvision's downloader (md5-checked) into ``data_dir``; return it."""
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    data_dir.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s into %s (torchvision)", name, data_dir)
    cls(root=str(data_dir), train=True, download=True)
    return data_dir


def cifar_arrays(
    name: str, data_dir: Path, train: bool, download: bool = False, cache: bool = True
) -> tuple[np.ndarray, np.ndarray, str]:
    """Full train or test arrays of CIFAR ``name`` and a description of what was loaded."""
    from ._folder import load_folder_arrays

    spec = CIFAR_SPECS[name]
    data_dir = Path(data_dir).expanduser()
    if download:
        try:
            layout = detect_cifar_layout(name, data_dir)
        except FileNotFoundError:
            download_cifar(name, data_dir)
            layout = detect_cifar_layout(name, data_dir)
    else:
        layout = detect_cifar_layout(name, data_dir)
    source = layout.describe(spec.title)
    log.info("found %s", source)
    if layout.kind == "python":
        images, labels = read_python_batches(spec, layout.root, train)
    else:
        images, labels = load_folder_arrays(
            layout.root, "train" if train else "test", spec.classes, 32, name, cache=cache
        )
    return images, labels, source
