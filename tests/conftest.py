"""Shared fixtures: real CIFAR-10 (JPEG ImageFolder tarball and the lossless PNG subset).

``ARCHLAB_CIFAR10`` = path of ``cifar10-jpeg.tar.gz``; the lossless subset lives in
``<dir of tarball>/../cifar10-exact/``. Unset: tests needing it skip, except under ``CI=true``
where that is a failure.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]


def _require_env(var: str) -> Path:
    value = os.environ.get(var)
    if not value:
        msg = f"real CIFAR-10 not configured: set {var} to the path of cifar10-jpeg.tar.gz"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{msg} (required under CI=true)")
        pytest.skip(msg)
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"{var}={value} is not a file")
    return path


@pytest.fixture(scope="session")
def cifar10_tarball() -> Path:
    """Path of cifar10-jpeg.tar.gz (skips, or fails under CI=true, when not configured)."""
    return _require_env("ARCHLAB_CIFAR10")


@pytest.fixture(scope="session")
def cifar10_root(
    cifar10_tarball: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The unpacked tarball: a directory holding train/<class>/*.jpg and test/<class>/*.jpg.

    Unpacked once per session into RAM (/dev/shm) when it has room, and removed at the end:
    creating and deleting 60k small files on a busy disk can take minutes, on tmpfs seconds.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 << 30:
        dest = Path(tempfile.mkdtemp(prefix="archlab-cifar10-", dir=shm))
    else:
        dest = tmp_path_factory.mktemp("cifar10-jpeg")
    if shutil.which("tar"):  # ~4x faster than tarfile for 60k small files
        subprocess.run(["tar", "xzf", str(cifar10_tarball), "-C", str(dest)], check=True)
    else:
        with tarfile.open(cifar10_tarball) as tf:
            tf.extractall(dest, filter="data")
    found = [c for c in (dest, *sorted(p for p in dest.iterdir() if p.is_dir()))
             if (c / "train").is_dir() and (c / "test").is_dir()]
    if not found:
        shutil.rmtree(dest, ignore_errors=True)
        pytest.fail(f"{cifar10_tarball} did not unpack to train/ and test/ under {dest}")
    try:
        yield found[0]
    finally:
        shutil.rmtree(dest, ignore_errors=True)


@pytest.fixture(scope="session")
def cifar10_exact(cifar10_tarball: Path) -> dict[str, np.ndarray]:
    """The lossless subset: ``train_x`` uint8 [4000, 32, 32, 3] (training images 0-3,999),
    ``train_y`` [4000], ``test_x`` [1000, 32, 32, 3] (test images 0-999), ``test_y`` [1000]."""
    from PIL import Image

    d = cifar10_tarball.parent.parent / "cifar10-exact"
    if not d.is_dir():
        pytest.fail(f"lossless CIFAR-10 subset not found at {d}")

    def png(i: int) -> np.ndarray:
        with Image.open(d / f"cifar10_batch_{i}.png") as im:
            return np.asarray(im.convert("RGB")).reshape(1000, 32, 32, 3)

    text = (d / "cifar10_labels.js").read_text()
    labels = np.asarray(json.loads(text[text.index("[") : text.rindex("]") + 1]), dtype=np.int64)
    assert len(labels) == 51000, len(labels)
    return {
        "train_x": np.concatenate([png(i) for i in range(4)]),
        "train_y": labels[:4000],
        "test_x": png(50),
        "test_y": labels[50000:],
    }


def write_cifar10_python_batches(
    folder: Path, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
    test_y: np.ndarray, label_names: list[str] | None = None,
) -> Path:
    """Write torchvision's python-batch layout: ``data_batch_1..5``, ``test_batch`` (dicts with
    b'data' uint8 [N, 3072] channel-major and b'labels'), ``batches.meta`` (b'label_names')."""
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, obj: dict) -> None:
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)

    def batch(x: np.ndarray, y: np.ndarray, label: str) -> dict:
        data = np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(len(x), 3072)
        return {b"batch_label": label.encode(), b"labels": [int(v) for v in y], b"data": data,
                b"filenames": [f"{i}.png".encode() for i in range(len(x))]}

    for k, part in enumerate(np.array_split(np.arange(len(train_x)), 5), start=1):
        dump(f"data_batch_{k}", batch(train_x[part], train_y[part], f"training batch {k} of 5"))
    dump("test_batch", batch(test_x, test_y, "testing batch 1 of 1"))
    names = CIFAR10_NAMES if label_names is None else label_names
    dump("batches.meta", {b"label_names": [n.encode() for n in names],
                          b"num_cases_per_batch": len(train_x) // 5, b"num_vis": 3072})
    return folder


@pytest.fixture(scope="session")
def cifar10_names() -> list[str]:
    """CIFAR-10 class names in label order."""
    return list(CIFAR10_NAMES)


@pytest.fixture(scope="session")
def write_python_batches():
    """The writer of torchvision's python-batch layout (``write_cifar10_python_batches``)."""
    return write_cifar10_python_batches


@pytest.fixture(scope="session")
def cifar10_python_root(
    cifar10_exact: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A parent dir holding ``cifar-10-batches-py/`` written from the lossless subset
    (4,000 training images in 5 batches, 1,000 test images)."""
    parent = tmp_path_factory.mktemp("cifar10-python")
    e = cifar10_exact
    write_cifar10_python_batches(parent / "cifar-10-batches-py", e["train_x"], e["train_y"],
                                 e["test_x"], e["test_y"])
    return parent
