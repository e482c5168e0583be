"""Shape-only normalisation ops for meta tracing.

On meta tensors PyTorch runs batch/group norm through Python decompositions that cost ~4 ms per
call (90% of a ResNet-50 trace). While tracing we only need shapes and the autograd structure,
so a :class:`torch.overrides.TorchFunctionMode` routes the normalisation functionals through an
autograd function that records the same inputs (activation, weight, bias) and returns an empty
tensor of the input's shape. Its backward node's name (``MetaBatchNormBackward`` ...) is
recognised by the op rules like the native one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


class MetaBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):  # noqa: D102
        return x.new_empty(x.shape)

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - tracing never runs backward
        raise RuntimeError("MetaBatchNorm is for graph tracing only")


class MetaGroupNorm(MetaBatchNorm):
    pass


class MetaLayerNorm(MetaBatchNorm):
    pass


def _batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
                momentum=0.1, eps=1e-5):
    if x.dim() < 2:
        raise ValueError(f"batch_norm expects an input of at least 2 dims, got shape {tuple(x.shape)}")
    c = x.shape[1]
    if weight is not None and weight.numel() != c:
        raise RuntimeError(f"batch_norm: weight has {weight.numel()} elements, input has {c} channels")
    if training and x.numel() // c <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}")
    return MetaBatchNorm.apply(x, weight, bias)


def _group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    if x.dim() < 2 or x.shape[1] % num_groups:
        raise RuntimeError(f"group_norm: {x.shape[1] if x.dim() > 1 else '?'} channels not divisible into {num_groups} groups")
    return MetaGroupNorm.apply(x, weight, bias)


def _layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    shape = tuple(normalized_shape)
    if tuple(x.shape[-len(shape):]) != shape:
        raise RuntimeError(f"layer_norm: normalized_shape {shape} does not match input shape {tuple(x.shape)}")
    return MetaLayerNorm.apply(x, weight, bias)


_OVERRIDES = {F.batch_norm: _batch_norm, F.group_norm: _group_norm, F.layer_norm: _layer_norm}


class FastMetaNorms(TorchFunctionMode):
    """Route norm functionals on meta tensors through shape-only autograd functions."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        impl = _OVERRIDES.get(func)
        if impl is not None and args and getattr(args[0], "is_meta", False):
            return impl(*args, **kwargs)
        return func(*args, **kwargs)
