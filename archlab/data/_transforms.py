"""Transforms on uint8 image tensors (CIFAR-style) and PIL images (ImageNet-style).

Small images (CIFAR, digits) are kept in memory as ``uint8 [N, 3, H, W]`` tensors and transformed
per item on tensors: no PIL round trip. ImageNet images are decoded from files, so they use the
standard torchvision PIL pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor], torch.Tensor]


class TensorTransform:
    """uint8 ``[3, H, W]`` -> normalised float ``[3, H, W]``, optionally augmented.

    Augmentation follows the standard CIFAR recipe: zero-pad by ``pad`` pixels, take a random
    ``H x W`` crop, and flip horizontally with probability 0.5 (when ``flip``). Randomness comes
    from torch's global generator, which DataLoader workers seed from the loader's generator.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool = False,
        pad: int = 4,
        flip: bool = True,
        scale: float = 255.0,
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.augment = augment
        self.pad = pad
        self.flip = flip
        self.scale = scale

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        x = img.float()
        if self.scale != 1.0:
            x = x / self.scale
        x = (x - self.mean) / self.std
        if self.augment:
            x = random_crop_flip(x, self.pad, self.flip, fill=(-self.mean / self.std))
        return x

    def __repr__(self) -> str:
        return (
            f"TensorTransform(augment={self.augment}, pad={self.pad}, flip={self.flip}, "
            f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"
        )


def random_crop_flip(
    x: torch.Tensor, pad: int, flip: bool, fill: torch.Tensor | None = None
) -> torch.Tensor:
    """Random ``pad``-padded crop back to the input size, then an optional random h-flip.

    ``fill`` (shape ``[C, 1, 1]``) is the value of the padding; for an already normalised
    image pass ``-mean/std`` so padding equals a black pixel, as torchvision's zero padding
    of the raw image does.
    """
    c, h, w = x.shape
    if pad > 0:
        i, j = torch.randint(0, 2 * pad + 1, (2,)).tolist()
        if fill is None:
            padded = F.pad(x, (pad, pad, pad, pad))
        else:
            padded = fill.expand(c, h + 2 * pad, w + 2 * pad).clone()
            padded[:, pad : pad + h, pad : pad + w] = x
        x = padded[:, i : i + h, j : j + w]
    if flip and torch.rand(()) < 0.5:
        x = x.flip(-1)
    return x.contiguous()


def imagenet_transform(
    mean: Sequence[float], std: Sequence[float], augment: bool, size: int = 224
) -> Callable:
    """Standard ImageNet pipeline on PIL images.

    Training: RandomResizedCrop(size) + horizontal flip; evaluation: Resize(256) + CenterCrop(size).
    """
    from torchvision import transforms as T

    if augment:
        ops = [T.RandomResizedCrop(size), T.RandomHorizontalFlip()]
    else:
        ops = [T.Resize(int(round(size * 256 / 224))), T.CenterCrop(size)]
    return T.Compose([*ops, T.ToTensor(), T.Normalize(mean, std)])
