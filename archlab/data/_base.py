"""In-memory image dataset and deterministic split / subset helpers shared by all loaders."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from archlab.errors import DataError, UsageError

SPLITS = ("train", "val", "test")


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset folder or file that is missing or not laid out as expected."""


class TensorImageDataset(Dataset):
    """Images held in memory as one ``[N, 3, H, W]`` tensor, with integer labels.

    Items are ``(transform(images[i]), int(labels[i]))``. Attributes: ``classes`` (class names,
    index = label), ``source`` (what was loaded, from where), ``split``, ``indices`` (positions
    in the full source split, e.g. which of the 50,000 CIFAR training images).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        classes: Sequence[str],
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        source: str = "",
        split: str = "",
        indices: np.ndarray | None = None,
    ) -> None:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [N, 3, H, W]; got shape {tuple(images.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()
        self.classes = list(classes)
        self.transform = transform
        self.source = source
        self.split = split
        self.indices = np.arange(len(images)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.images[i]
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.labels[i])

    @property
    def targets(self) -> list[int]:
        """Labels as a list of ints (torchvision's attribute name)."""
        return self.labels.tolist()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, n={len(self)}, "
            f"classes={len(self.classes)}, shape={tuple(self.images.shape[1:])}, "
            f"source={self.source!r})"
        )


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a held-out part: ``round(fraction * n_c)`` items of each class ``c``.

    Deterministic in ``seed`` (numpy PCG64), independent of the platform.
    """
    if not 0.0 <= fraction < 1.0:
        raise UsageError(f"held-out fraction must be in [0, 1); got {fraction}")
    labels = np.asarray(labels)
    mask = np.zeros(len(labels), dtype=bool)
    rng = np.random.default_rng(seed)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(fraction * len(idx)))
        mask[rng.permutation(idx)[:k]] = True
    return mask


def train_val_indices(
    labels: np.ndarray, split: str, val_fraction: float, seed: int
) -> np.ndarray:
    """Indices (sorted) of ``split`` ("train" or "val") within a full training set."""
    held = stratified_holdout(labels, val_fraction, seed)
    return np.flatnonzero(held if split == "val" else ~held)


def per_class_subset(labels: np.ndarray, n_per_class: int, seed: int) -> np.ndarray:
    """Sorted positions of ``n_per_class`` items of every class, chosen by a seeded permutation."""
    if n_per_class < 1:
        raise UsageError(f"n_per_class must be >= 1; got {n_per_class}")
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 1])  # a stream independent of the validation hold-out
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < n_per_class:
            raise DataError(
                f"n_per_class={n_per_class} but class {int(c)} has only {len(idx)} images "
                "in this split"
            )
        chosen.append(rng.permutation(idx)[:n_per_class])
    return np.sort(np.concatenate(chosen))


def mixed_order(idx: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``idx`` itself, or, when its ``labels`` come sorted by class (a class-folder tree lists
    its images class by class), ``idx`` in a fixed shuffled order (seed-independent).

    Evaluation runs BatchNorm on batch statistics (predicted parameters have no running
    statistics), so a batch of one class would be normalised to nothing: on class-sorted
    CIFAR-10 test images every network scores near chance. Orders that are already mixed
    (torchvision's python batches, digits) are kept as they are.
    """
    labels = np.asarray(labels)
    classes = len(np.unique(labels))
    if classes < 2 or len(idx) <= classes or not np.all(np.diff(labels) >= 0):
        return idx  # mixed, one class, or one item per class (no class block to break up)
    return idx[np.random.default_rng(0x5EED).permutation(len(idx))]


def select(
    images: torch.Tensor,
    labels: np.ndarray,
    split: str,
    val_fraction: float,
    seed: int,
    n_per_class: int | None,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Cut a full train/test array down to ``split`` and an optional per-class subset.

    ``split`` "train"/"val" partition the given (training) arrays; "test" keeps them whole.
    Returns ``(images, labels, indices into the given arrays)``.
    """
    labels = np.asarray(labels)
    if split == "test":
        idx = np.arange(len(labels))
    else:
        idx = train_val_indices(labels, split, val_fraction, seed)
    if n_per_class is not None:
        idx = idx[per_class_subset(labels[idx], n_per_class, seed)]
    if split != "train":
        idx = mixed_order(idx, labels[idx])
    t = torch.from_numpy(idx)
    return images[t], torch.from_numpy(labels[idx]).long(), idx
