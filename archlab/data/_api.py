"""Public entry points: ``load_dataset``, ``dataset_info``, ``make_loader``."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from archlab.errors import DataError, UsageError

from ._base import (
    DataNotFoundError,
    TensorImageDataset,
    check_split,
    mixed_order,
    per_class_subset,
    select,
    train_val_indices,
)
from ._cifar import CIFAR_SPECS, cifar_arrays
from ._digits import DIGITS_MEAN, DIGITS_SIZE, DIGITS_STD, load_digits_dataset
from ._transforms import TensorTransform, imagenet_transform

log = logging.getLogger("archlab.data")

DATASETS = ("digits", "cifar10", "cifar100", "imagenet")


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset: what a model for it must accept and produce."""

    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


_INFO = {
    "digits": DatasetInfo("digits", 10, DIGITS_SIZE, DIGITS_MEAN, DIGITS_STD),
    "cifar10": DatasetInfo(
        "cifar10", 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    ),
    "cifar100": DatasetInfo(
        "cifar100", 100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
    ),
    "imagenet": DatasetInfo(
        "imagenet", 1000, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ),
}


def _check_name(name: str) -> str:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _INFO:
        raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return key


def dataset_info(name: str) -> DatasetInfo:
    """Number of classes, native image size and normalisation of dataset ``name``."""
    return _INFO[_check_name(name)]


def default_download_dir() -> Path:
    """Where ``download=True`` puts data when no ``data_dir`` is given: ``$ARCHLAB_DATA``,
    else ``~/.cache/archlab/data``."""
    env = os.environ.get("ARCHLAB_DATA")
    return Path(env) if env else Path.home() / ".cache" / "archlab" / "data"


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    download: bool = False,
    val_fraction: float = 0.1,
    seed: int = 0,
    augment: bool | None = None,
    n_per_class: int | None = None,
) -> Dataset:
    """One split of an image dataset; items are ``(float tensor [3, H, W], int label)``.

    name: one of ``DATASETS``. ``digits`` is embedded (sklearn); the others read ``data_dir``,
        whose layout is auto-detected (see ``archlab.data._cifar``; ImageNet: ``train/`` and
        ``val/`` ImageFolder trees). ``data_dir`` is required unless ``download=True``
        (CIFAR only, torchvision's downloader; default directory ``default_download_dir()``).
    split: "train" or "val" (a stratified ``val_fraction`` of the training set, held out
        deterministically from ``seed``; GHN-2 uses 10%, i.e. 45k/5k for CIFAR-10) or "test"
        (the official test set; ImageNet's ``val/`` folder).
    augment: training augmentation (CIFAR: random crop 32 pad 4 + flip; ImageNet:
        RandomResizedCrop 224 + flip); default on for "train" only.
    n_per_class: keep this many images of each class (deterministic in ``seed``), e.g. 100
        for a 1,000-image few-shot CIFAR-10 training set.

    The returned dataset has ``classes``, ``source`` (what was found where), ``split`` and
    ``indices`` (positions in the full official split). A missing, empty, wrongly laid out or
    unreadable dataset raises :class:`~archlab.errors.DataError` naming the folder (or file).
    """
    key = _check_name(name)
    check_split(split)
    if split == "val" and not 0.0 < val_fraction < 1.0:
        raise UsageError(f"split 'val' needs 0 < val_fraction < 1; got {val_fraction}")
    if augment is None:
        augment = split == "train"
    if key == "digits":
        return load_digits_dataset(split, val_fraction, seed, augment, n_per_class)
    if data_dir is None:
        if not download or key == "imagenet":
            hint = "" if key == "imagenet" else " (or pass download=True to fetch it)"
            raise DataError(f"dataset {name!r} needs data_dir (--data-dir): the directory holding it{hint}")
        data_dir = default_download_dir() / key
    data_dir = Path(data_dir).expanduser()
    info = _INFO[key]
    if key == "imagenet":
        if download:
            raise UsageError("ImageNet cannot be downloaded; pass data_dir with train/ and val/")
        with _data_errors(info, data_dir):
            return _load_imagenet(data_dir, split, val_fraction, seed, augment, n_per_class, info)
    spec = CIFAR_SPECS[key]
    with _data_errors(info, data_dir):
        images, labels, source = cifar_arrays(key, data_dir, train=split != "test", download=download)
    imgs, labs, idx = select(torch.from_numpy(images), labels, split, val_fraction, seed,
                             n_per_class)
    transform = TensorTransform(info.mean, info.std, augment=augment, pad=4, flip=True)
    ds = TensorImageDataset(imgs, labs, spec.classes, transform, source=source, split=split,
                            indices=idx)
    log.info("%s: %s split, %d images", source, split, len(ds))
    return ds


@contextmanager
def _data_errors(info: DatasetInfo, data_dir: Path) -> Iterator[None]:
    """Turn what a missing, empty, wrongly laid out or corrupt dataset raises into DataError."""
    try:
        yield
    except (DataError, UsageError):
        raise
    except (FileNotFoundError, NotADirectoryError) as e:
        raise DataNotFoundError(str(e)) from e
    except (ValueError, KeyError) as e:
        raise DataError(str(e) if str(e) else f"{info.name} in {data_dir}: {type(e).__name__}") from e
    except (OSError, EOFError, pickle.UnpicklingError, RuntimeError) as e:
        raise DataError(f"cannot read {info.name} from {data_dir}: {type(e).__name__}: {e}") from e


def _load_imagenet(
    data_dir: Path, split: str, val_fraction: float, seed: int, augment: bool,
    n_per_class: int | None, info: DatasetInfo,
) -> Dataset:
    from ._folder import LazyImageFolder, check_classes, list_classes, scan_folder

    train_root, test_root = data_dir / "train", data_dir / "val"
    if not train_root.is_dir() or not test_root.is_dir():
        present = sorted(p.name for p in data_dir.iterdir())[:12] if data_dir.is_dir() else None
        where = f"found {present}" if present is not None else "it is not a directory"
        raise FileNotFoundError(
            f"no ImageNet found in {data_dir}: expected train/<wnid>/ and val/<wnid>/ "
            f"(ImageFolder); {where}"
        )
    classes = list_classes(train_root)
    root = test_root if split == "test" else train_root
    if split == "test":
        check_classes(list_classes(test_root), tuple(classes), test_root, "ImageNet train/")
    paths, labels = scan_folder(root, classes)
    if split == "test":
        idx = np.arange(len(paths))
    else:
        idx = train_val_indices(labels, split, val_fraction, seed)
    if n_per_class is not None:
        idx = idx[per_class_subset(labels[idx], n_per_class, seed)]
    if split != "train":
        idx = mixed_order(idx, labels[idx])
    source = f"ImageNet ImageFolder tree in {data_dir} ({len(classes)} classes)"
    log.info("found %s", source)
    return LazyImageFolder(
        root, classes, [paths[i] for i in idx], labels[idx],
        imagenet_transform(info.mean, info.std, augment, info.image_size),
        source=source, split=split, indices=idx,
    )


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader whose shuffling (and worker seeds) come from a generator seeded with ``seed``.

    Two loaders made with the same seed yield the same order; CUDA pinning when available.
    """
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1; got {batch_size}")
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=g,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
    )
