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
        self._shift = self.mean * scale  # (x/scale - mean)/std == (x - shift) * mult
        self._mult = 1.0 / (self.std * scale)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if self.augment:  # on the raw image: zero padding = a black pixel, as torchvision
            img = random_crop_flip(img, self.pad, self.flip)
        return (img.float() - self._shift) * self._mult

    def __repr__(self) -> str:
        return (
            f"TensorTransform(augment={self.augment}, pad={self.pad}, flip={self.flip}, "
            f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"
        )


def random_crop_flip(x: torch.Tensor, pad: int, flip: bool) -> torch.Tensor:
    """Random crop of the zero-padded (by ``pad``) image back to its size, then an optional
    random horizontal flip; one draw from torch's generator per call."""
    _, h, w = x.shape
    n = 2 * pad + 1
    r = int(torch.randint(0, n * n * 2, ()))
    if pad > 0:
        i, j = (r // 2) // n, (r // 2) % n
        x = F.pad(x, (pad, pad, pad, pad))[:, i : i + h, j : j + w]
    if flip and r % 2:
        x = x.flip(-1)
    return x


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
