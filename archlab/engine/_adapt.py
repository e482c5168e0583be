"""Adapt ImageNet-shaped networks to small (e.g. 32x32 CIFAR) images, as GHN-2 does.

The generic rule covers most convolutional families: the stem convolution (the first ``Conv2d``
reading 3 channels) becomes a 3x3, stride-1 convolution, and a max-pool that directly follows the
stem (before any other convolution) is removed. Families that need something else register a hook
with :func:`register_small_image_hook` (first match wins), e.g. Vision Transformers get a smaller
patch and a matching position embedding.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

SmallImageHook = Callable[[nn.Module, int], list[str]]
_HOOKS: list[tuple[str, Callable[[nn.Module], bool], SmallImageHook]] = []


def register_small_image_hook(name: str, match: Callable[[nn.Module], bool]):
    """Decorator: register ``hook(model, image_size) -> [changes]`` for models where ``match``."""

    def deco(hook: SmallImageHook) -> SmallImageHook:
        _HOOKS.append((name, match, hook))
        return hook

    return deco


def adapt_to_small_images(model: nn.Module, image_size: int = 32) -> nn.Module:
    """Modify ``model`` in place for ``image_size`` inputs; returns it.

    What changed is recorded as a list of strings in ``model.archlab_adaptations`` (empty if
    nothing was needed). New or reshaped parameters get PyTorch's default initialisation.
    """
    for _name, match, hook in _HOOKS:
        if match(model):
            changes = hook(model, image_size)
            break
    else:
        changes = generic_stem_adaptation(model, image_size)
    model.archlab_adaptations = changes
    return model


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def generic_stem_adaptation(model: nn.Module, image_size: int = 32) -> list[str]:
    """3x3 stride-1 stem convolution and no stem max-pool (ResNet, DenseNet, ConvNeXt, ...)."""
    changes: list[str] = []
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    stem = next(((n, m) for n, m in convs if m.in_channels == 3), None)
    if stem is None:
        return changes
    name, conv = stem
    if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1):
        new = nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=1, padding=1,
                        dilation=1, groups=conv.groups, bias=conv.bias is not None)
        new = new.to(device=conv.weight.device, dtype=conv.weight.dtype)
        _set(model, name, new)
        changes.append(f"{name}: {tuple(conv.kernel_size)}/{tuple(conv.stride)} conv -> 3x3/1")
    # a max-pool registered after the stem and before the next convolution is the stem pool
    seen_stem = False
    for n, m in model.named_modules():
        if n == name:
            seen_stem = True
        elif seen_stem and isinstance(m, nn.Conv2d):
            break
        elif seen_stem and isinstance(m, nn.MaxPool2d):
            _set(model, n, nn.Identity())
            changes.append(f"{n}: stem max-pool removed")
            break
    return changes


def _is_vit(model: nn.Module) -> bool:
    from torchvision.models import VisionTransformer

    return isinstance(model, VisionTransformer)


@register_small_image_hook("vit", _is_vit)
def _vit_small(model: nn.Module, image_size: int) -> list[str]:
    """ViT: patch size 4 for 32 px (an 8x8 grid), position embedding resized to the new length."""
    patch = max(1, image_size // 8)
    hidden = model.hidden_dim
    old = model.conv_proj
    conv = nn.Conv2d(3, hidden, patch, stride=patch).to(old.weight.device, old.weight.dtype)
    nn.init.trunc_normal_(conv.weight, std=math.sqrt(1 / (3 * patch * patch)))
    nn.init.zeros_(conv.bias)
    model.conv_proj = conv
    model.patch_size = patch
    model.image_size = image_size
    seq = (image_size // patch) ** 2 + (1 if hasattr(model, "class_token") else 0)
    model.seq_length = seq
    pe = model.encoder.pos_embedding
    model.encoder.pos_embedding = nn.Parameter(
        torch.empty(1, seq, hidden, device=pe.device, dtype=pe.dtype).normal_(std=0.02))
    return [f"conv_proj: patch {old.kernel_size[0]} -> {patch}",
            f"encoder.pos_embedding: {tuple(pe.shape)} -> (1, {seq}, {hidden})"]


def _is_swin(model: nn.Module) -> bool:
    from torchvision.models import SwinTransformer

    return isinstance(model, SwinTransformer)


@register_small_image_hook("swin", _is_swin)
def _swin_small(model: nn.Module, image_size: int) -> list[str]:
    """Swin: patch 4 -> 2 (a 16x16 token grid for 32 px); windows are padded by the model."""
    old = model.features[0][0]
    conv = nn.Conv2d(3, old.out_channels, 2, stride=2).to(old.weight.device, old.weight.dtype)
    model.features[0][0] = conv
    return [f"features.0.0: patch {old.kernel_size[0]} -> 2"]
