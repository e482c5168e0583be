"""scikit-learn's digits (1,797 real 8x8 handwritten digits) presented as 3x16x16 images.

No download: the data ship with scikit-learn. Images are scaled to [0, 1] (raw values 0..16),
upsampled 8x8 -> 16x16 bilinearly, replicated to 3 channels and stored as uint8, so the same
small-image (CIFAR-stem) architectures and the same tensor transforms run on them. 16 pixels
keep every network's stem, two reductions and stem pooling above 1x1, while costing a quarter
of what 32x32 would for no extra information (the originals are 8x8).

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
DIGITS_SIZE = 16
DIGITS_PAD = 2  # augmentation: random crop of the image zero-padded by 2 px (one original pixel)
DIGITS_MEAN = (0.3053, 0.3053, 0.3053)  # of the upsampled images in [0, 1], all 1,797
DIGITS_STD = (0.3186, 0.3186, 0.3186)
TEST_FRACTION = 0.2
_TEST_SEED = 0


@lru_cache(maxsize=1)
def digits_arrays() -> tuple[torch.Tensor, np.ndarray]:
    """All 1,797 digits as uint8 ``[N, 3, 16, 16]`` and labels ``[N]`` (sklearn order); cached, do not modify."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(DIGITS_SIZE, DIGITS_SIZE), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return x, np.asarray(d.target, dtype=np.int64)


def load_digits_dataset(
    split: str,
    val_fraction: float,
    seed: int,
    augment: bool,
    n_per_class: int | None,
) -> TensorImageDataset:
    """The ``split`` part of digits; ``augment`` = random crop (pad 2), no flip (digits are chiral)."""
    images, labels = digits_arrays()
    is_test = stratified_holdout(labels, TEST_FRACTION, _TEST_SEED)
    part = np.flatnonzero(is_test if split == "test" else ~is_test)
    imgs, labs, idx = select(images[torch.from_numpy(part)], labels[part], split,
                             val_fraction, seed, n_per_class)
    transform = TensorTransform(DIGITS_MEAN, DIGITS_STD, augment=augment, pad=DIGITS_PAD, flip=False)
    return TensorImageDataset(imgs, labs, DIGITS_CLASSES, transform,
                              source="sklearn load_digits (embedded)", split=split,
                              indices=part[idx])
