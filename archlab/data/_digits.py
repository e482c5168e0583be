"""scikit-learn's digits (1,797 real 8x8 handwritten digits) presented as 3x32x32 CIFAR-like images.

No download: the data ship with scikit-learn. Images are scaled to [0, 1] (raw values 0..16),
upsampled 8x8 -> 32x32 bilinearly, replicated to 3 channels and stored as uint8, so the same
CIFAR architectures and the same tensor transforms run on them.

Splits are stratified and deterministic: the test part (20% of each class) is fixed (seed 0)
whatever ``seed`` is; the validation part is held out of the rest with ``seed``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ._base import TensorImageDataset, select, stratified_holdout
from ._transforms import TensorTransform

DIGITS_CLASSES = tuple(str(d) for d in range(10))
DIGITS_MEAN = (0.3053, 0.3053, 0.3053)  # of the upsampled images in [0, 1], all 1,797
DIGITS_STD = (0.3236, 0.3236, 0.3236)
TEST_FRACTION = 0.2
_TEST_SEED = 0


@lru_cache(maxsize=1)
def digits_arrays() -> tuple[torch.Tensor, np.ndarray]:
    """All 1,797 digits as uint8 ``[N, 3, 32, 32]`` and labels ``[N]`` (sklearn order); cached, do not modify."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return x, np.asarray(d.target, dtype=np.int64)


def load_digits_dataset(
    split: str,
    val_fraction: float,
    seed: int,
    augment: bool,
    n_per_class: int | None,
) -> TensorImageDataset:
    """The ``split`` part of digits; ``augment`` = random crop (pad 4), no flip (digits are chiral)."""
    images, labels = digits_arrays()
    is_test = stratified_holdout(labels, TEST_FRACTION, _TEST_SEED)
    part = np.flatnonzero(is_test if split == "test" else ~is_test)
    imgs, labs, idx = select(images[torch.from_numpy(part)], labels[part], split,
                             val_fraction, seed, n_per_class)
    transform = TensorTransform(DIGITS_MEAN, DIGITS_STD, augment=augment, pad=4, flip=False)
    return TensorImageDataset(imgs, labs, DIGITS_CLASSES, transform,
                              source="sklearn load_digits (embedded)", split=split,
                              indices=part[idx])
