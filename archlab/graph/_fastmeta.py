"""Shape-only versions of slow ops for meta tracing.

On meta tensors PyTorch runs normalisations and several activations (relu, hardswish, gelu, ...)
through Python decompositions costing milliseconds per call — most of a trace's time. Tracing
only needs shapes and the autograd structure, so :class:`FastMetaOps` (a
:class:`torch.overrides.TorchFunctionMode`) routes those functionals on meta tensors through
autograd functions that record the same differentiable inputs and return an empty tensor of the
right shape. Each function is named after the op it stands for (``HardswishBackward``), so the
op rules recognise it exactly like the native node.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


class _ShapeOnly(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, *params):  # noqa: D102
        return x.new_empty(x.shape)

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - tracing never runs backward
        raise RuntimeError("shape-only ops are for graph tracing only")


def _named(name: str) -> type[torch.autograd.Function]:
    return type(name, (_ShapeOnly,), {})


MetaBatchNorm, MetaGroupNorm, MetaLayerNorm = _named("MetaBatchNorm"), _named("MetaGroupNorm"), _named("MetaLayerNorm")
_UNARY = {name: _named(name) for name in ("Relu", "Hardtanh", "Hardswish", "Hardsigmoid", "Gelu", "Sigmoid", "Tanh", "NativeDropout")}


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


def _unary(name: str):
    fn = _UNARY[name]
    return lambda x, *args, **kwargs: fn.apply(x)


def _dropout(x, p=0.5, training=True, inplace=False):
    return _UNARY["NativeDropout"].apply(x) if training and p > 0 else x


_OVERRIDES = {
    F.batch_norm: _batch_norm, F.group_norm: _group_norm, F.layer_norm: _layer_norm,
    F.relu: _unary("Relu"), torch.relu: _unary("Relu"), torch.Tensor.relu: _unary("Relu"),
    F.relu6: _unary("Hardtanh"), F.hardtanh: _unary("Hardtanh"),
    F.hardswish: _unary("Hardswish"), F.hardsigmoid: _unary("Hardsigmoid"), F.gelu: _unary("Gelu"),
    torch.sigmoid: _unary("Sigmoid"), torch.Tensor.sigmoid: _unary("Sigmoid"),
    torch.tanh: _unary("Tanh"), torch.Tensor.tanh: _unary("Tanh"),
    F.dropout: _dropout,
}


class FastMetaOps(TorchFunctionMode):
    """Route slow functionals on meta tensors through shape-only autograd functions."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        impl = _OVERRIDES.get(func)
        if impl is not None and args and getattr(args[0], "is_meta", False):
            return impl(*args, **kwargs)
        return func(*args, **kwargs)
