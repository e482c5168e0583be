"""Op rules: which autograd ops become which graph nodes.

Two registries, both keyed by the autograd node's class name without its ``Backward<N>``
suffix (``"Convolution"``, ``"NativeBatchNorm"``, ``"Add"``):

- :data:`PARAM_RULES` type a *parameter* by what the op consuming it does with it. A rule returns
  a :class:`ParamUse` saying the node's op, its role (``"weight"``/``"bias"``) and placement:
  ``inline`` nodes sit on the data path (``x -> conv weight -> bias -> ...``); ``source`` nodes
  feed the consuming op like an extra input (a positional encoding added to the sequence).
- :data:`OP_RULES` type parameter-free ops (pools, attention, sums ...); ops without a rule are
  removed from the graph and their inputs wired to their outputs. Op rules receive the graph
  ``mode``: ``"ghn2"`` reproduces the published GHN-2 graphs (facebookresearch/ppuda),
  ``"ghn3"`` the GHN-3 ones (SamsungSAILMontreal/ghn3) where they differ; a ``"+published"``
  suffix adds what that code does besides (see :mod:`._published`).

Add support for a new op with :func:`register_param_rule` / :func:`register_op_rule`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_SUFFIX = re.compile(r"Backward\d*$")


def op_name(fn) -> str:
    """``ConvolutionBackward0`` -> ``Convolution``."""
    return _SUFFIX.sub("", type(fn).__name__)


@dataclass(frozen=True)
class ParamUse:
    op: str
    role: str = "weight"  # "weight" nodes come before "bias" nodes in an inline chain
    placement: str = "inline"  # "inline" | "source"
    group: bool = False  # weight and bias owned by one node (norm layers)


ParamRule = Callable[[object, int, tuple], ParamUse]  # (fn, slot, param_shape) -> ParamUse
OpRule = Callable[[object, str], "str | None"]  # (fn, mode) -> op type or None (remove)

PARAM_RULES: dict[str, ParamRule] = {}
OP_RULES: dict[str, OpRule] = {}

# Ops that only reshape, select or re-express a single input: a parameter reached through them is
# still "the same" parameter (``W.t()``, ``table[index]``, ``token.expand(...)``).
TRANSPARENT_PARAM_OPS = frozenset({
    "T", "View", "UnsafeView", "Reshape", "ReshapeAlias", "Expand", "Permute", "Transpose",
    "Unsqueeze", "Squeeze", "Slice", "Select", "Index", "Clone", "Alias", "ToCopy", "AsStrided",
    "Unflatten", "Flatten", "Repeat", "Contiguous", "Clamp", "Exp", "Sigmoid", "Neg", "Softplus",
    "Abs", "Sqrt", "Pow", "Unbind", "Split", "SplitWithSizes", "Chunk", "Narrow",
    "CopySlices", "Zero", "Fill",
})


def register_param_rule(*names: str) -> Callable[[ParamRule], ParamRule]:
    def deco(fn: ParamRule) -> ParamRule:
        for n in names:
            PARAM_RULES[n] = fn
        return fn

    return deco


def register_op_rule(*names: str) -> Callable[[OpRule], OpRule]:
    def deco(fn: OpRule) -> OpRule:
        for n in names:
            OP_RULES[n] = fn
        return fn

    return deco


# ---------------------------------------------------------------- parameter rules
@register_param_rule("Convolution", "ConvolutionBackward", "MkldnnConvolution", "CudnnConvolution")
def _conv(fn, slot, shape):
    if slot == 2 or len(shape) == 1:
        return ParamUse("bias", role="bias")
    groups = int(getattr(fn, "_saved_groups", 1))
    dilation = tuple(getattr(fn, "_saved_dilation", (1,)))
    if groups > 1:
        return ParamUse("dil_conv" if max(dilation) > 1 else "sep_conv")
    return ParamUse("conv")


@register_param_rule("Addmm", "Mm", "Bmm", "Matmul", "Linear", "Baddbmm", "Addmv", "Mv")
def _linear(fn, slot, shape):
    return ParamUse("bias", role="bias") if len(shape) == 1 else ParamUse("conv")


@register_param_rule("NativeBatchNorm", "CudnnBatchNorm", "MetaBatchNorm")
def _bn(fn, slot, shape):
    return ParamUse("bn", role="weight" if slot == 1 else "bias", group=True)


@register_param_rule("NativeLayerNorm", "MetaLayerNorm", "NativeGroupNorm", "MetaGroupNorm")
def _ln(fn, slot, shape):
    return ParamUse("ln", role="weight" if slot == 1 else "bias", group=True)


@register_param_rule("Embedding", "EmbeddingBag")
def _embedding(fn, slot, shape):  # GHN-3 types every embedding table as pos_enc
    return ParamUse("pos_enc")


@register_param_rule("Add", "Sub")
def _add(fn, slot, shape):
    if len(shape) == 1:
        return ParamUse("bias", role="bias")
    return ParamUse("pos_enc", placement="source")  # positional encoding / relative-position bias


@register_param_rule("Cat", "Stack")
def _cat(fn, slot, shape):  # class / distillation tokens prepended to the sequence
    return ParamUse("pos_enc", placement="source")


@register_param_rule("Mul")
def _scale(fn, slot, shape):  # layer scale (ConvNeXt, CaiT); GHN-3 suggests treating it like a norm
    return ParamUse("ln")


def fallback_use(shape: tuple) -> ParamUse:
    """Typing for a parameter consumed by an op no rule knows."""
    return ParamUse("conv" if len(shape) >= 2 else "bias", role="weight" if len(shape) >= 2 else "bias")


# ---------------------------------------------------------------- parameter-free op rules
def _kernel(fn) -> tuple[int, ...]:
    k = tuple(int(v) for v in getattr(fn, "_saved_kernel_size", (3, 3)))
    return (1, 1, *(k * 2 if len(k) == 1 else k))


@register_op_rule("MaxPool2DWithIndices", "MaxPool2D", "MaxPool3DWithIndices", "MaxPool1DWithIndices")
def _max_pool(fn, mode):
    return "max_pool"


@register_op_rule("AvgPool2D", "AvgPool3D", "AvgPool1D")
def _avg_pool(fn, mode):
    return "avg_pool"


@register_op_rule("AdaptiveAvgPool2D", "AdaptiveAvgPool3D", "AdaptiveAvgPool1D", "AdaptiveMaxPool2D")
def _adaptive(fn, mode):
    return "glob_avg"


@register_op_rule("Mean")
def _mean(fn, mode):  # GHN-2 keeps spatial means that keep dims (global pooling), drops the rest
    return "glob_avg" if bool(getattr(fn, "_saved_keepdim", False)) else None


@register_op_rule("Softmax", "SafeSoftmax", "ScaledDotProductEfficientAttention",
                  "ScaledDotProductFlashAttention", "ScaledDotProductFlashAttentionForCpu",
                  "ScaledDotProductAttentionMath", "ScaledDotProductCudnnAttention")
def _msa(fn, mode):
    # the published code, tracing real tensors, sees attention only where the model calls a
    # softmax itself: fused attention (SafeSoftmax is its decomposition on meta tensors) is none
    if mode.endswith(PUBLISHED) and op_name(fn) != "Softmax":
        return None
    return "msa"


@register_op_rule("Add")
def _sum(fn, mode):
    return "sum"  # kept only when >= 2 inputs remain (checked by the builder)


@register_op_rule("Cat", "Stack")
def _concat(fn, mode):
    return "concat"  # kept only when >= 2 inputs remain


_GATES = {"ghn2": frozenset({"Hardswish"}), "ghn3": frozenset({"Sigmoid", "Hardsigmoid", "Hardswish", "Silu"})}
MODES = tuple(_GATES)
PUBLISHED = "+published"  # mode suffix: as the published code builds graphs (see ._published)


@register_op_rule("Mul")
def _gate(fn, mode):
    """Channel squeeze-excitation: an activation multiplied by a gate.

    GHN-2 recognises the hard-swish gate of its own CSE op only (so torchvision's EfficientNet and
    MobileNetV3 have no ``cse`` node there); GHN-3 any sigmoid/swish gate.
    """
    if sum(u is not None for u, _ in fn.next_functions) < 2:
        return None  # a gate scaled by a constant is not a gating of activations
    shapes = [getattr(fn, "_saved_self", None), getattr(fn, "_saved_other", None)]
    for slot, (u, _) in enumerate(fn.next_functions[:2]):
        while u is not None and op_name(u) in {"View", "Expand", "Unsqueeze", "Reshape", "Clone"}:
            u = u.next_functions[0][0] if u.next_functions else None
        if u is None or op_name(u) not in _GATES[mode.removesuffix(PUBLISHED)]:
            continue
        mine, other = shapes[slot], shapes[1 - slot]
        if mine is None or other is None or mine.numel() < other.numel():  # the gate is broadcast
            return "cse"
    return None


MULTI_INPUT_OPS = frozenset({"sum", "concat"})
POOL_OPS = frozenset({"max_pool", "avg_pool"})
pool_shape = _kernel
