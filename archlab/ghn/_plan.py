"""Which decoder head predicts each parameter, and how its output becomes the target tensor.

Every owned parameter of an :class:`ArchGraph` gets a :class:`ParamPlan`: a *kind* (decoder
head), a *key* (shape class; parameters with equal ``(kind, key)`` are decoded together in one
call) and the target shape. Channel sizes are rounded up to shape classes as in GHN-2 (``n``
divisible by 3 becomes ``4n/3``; at least half the maximum becomes the maximum), the decoder
output is sliced to the target and tiled along channels where the target is larger.

Kinds:
  ``conv``   4-D (and 2-/3-/5-D) weights through the conv decoder, key ``(n_out, n_in, kh, kw)``
  ``cls_w``  classifier weight (2-D, or 4-D with 1x1 kernel) through the classifier head
  ``cls_b``  classifier bias
  ``vec``    tensors with one non-unit dimension (norm weights, biases, layer scales)
  ``pos``    positional encodings ``(1, P, C)``: a ``(1, C, s, s)`` grid, flattened
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from archlab.graph._types import ArchGraph


@dataclass(frozen=True)
class ParamPlan:
    name: str
    node: int  # owning node (index within its graph)
    kind: str
    key: tuple[int, ...]
    shape: tuple[int, ...]
    is_bias: bool


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(int(s) for s in shape)


def channel_class(n: int, m: int) -> int:
    """GHN-2 shape class of a channel count ``n`` for a decoder emitting at most ``m``."""
    n = min(n, m)
    if n % 3 == 0:
        n = n // 3 * 4
    if n >= m / 2:
        n = m
    return n


def classifier_params(g: ArchGraph, max_hops: int = 8) -> set[str]:
    """Parameters of the output layer: walking back from the output nodes, the first node owning
    a 2-D (or 1x1 4-D) weight on each path, plus biases of that weight's module."""
    preds: dict[int, list[int]] = {}
    for s, d in g.edge_index.T.tolist():
        preds.setdefault(d, []).append(s)
    outputs = list(g.outputs) or [g.num_nodes - 1]
    found: set[str] = set()
    seen, frontier = set(outputs), list(outputs)
    for _ in range(max_hops):
        nxt = []
        for v in frontier:
            weights = [p for p in g.nodes[v].params if len(g.param_shapes[p]) >= 2]
            if weights:
                for p in weights:
                    shp = g.param_shapes[p]
                    if len(shp) == 2 or (len(shp) == 4 and shp[2:] == (1, 1)):
                        found.add(p)
                continue
            for u in preds.get(v, []):
                if u not in seen:
                    seen.add(u)
                    nxt.append(u)
        frontier = nxt
    modules = {p.rsplit(".", 1)[0] for p in found}
    for p, shp in g.param_shapes.items():
        if len(shp) == 1 and "." in p and p.rsplit(".", 1)[0] in modules and _is_bias(p):
            found.add(p)
    return found


def _is_bias(name: str) -> bool:
    return "bias" in name.rsplit(".", 1)[-1]


def plan_graph(g: ArchGraph, max_shape: tuple[int, int, int, int]) -> list[ParamPlan]:
    """Plans for every parameter owned by a node of ``g`` (in node order)."""
    m0, m1 = max_shape[0], max_shape[1]
    cls = classifier_params(g)
    plans = []
    for i, node in enumerate(g.nodes):
        for p in node.params:
            t = tuple(int(s) for s in g.param_shapes[p])
            bias = _is_bias(p)
            nonunit = sum(s != 1 for s in t)
            if p in cls and len(t) == 1:
                kind, key = "cls_b", ()
            elif p in cls:
                kind, key = "cls_w", (channel_class(t[1], m1),)
            elif len(t) not in (2, 4) and nonunit <= 1:
                kind, key = "vec", ()
            elif len(t) == 3 and t[0] == 1 and min(t[1:]) > 1:
                s = max(1, int(math.floor(t[1] ** 0.5)))
                kind, key = "pos", (1, channel_class(t[2], m1), s, s)
            else:
                k = t[2:] if len(t) == 4 else (t[2], 1) if len(t) == 3 else (1, 1) if len(t) == 2 \
                    else (_numel(t[2:-1]), t[-1])
                kind, key = "conv", (channel_class(t[0], m0), channel_class(t[1], m1), *k)
            plans.append(ParamPlan(p, i, kind, key, t, bias))
    return plans


def fan_in_scale(shape: tuple[int, ...]) -> float:
    """GHN-2 fan-in factor for a >1-D tensor of ``shape``: ``sqrt(beta / fan_in)``, ``beta`` 1
    for layers not followed by ReLU (depthwise, ``kh < kw``) else 2; 1.0 for positional
    encodings ``(1, P, C)`` with ``C >= 11`` (left unnormalised, as in GHN-2/3)."""
    t = shape
    if len(t) > 2 and t[2] >= 11 and t[0] == 1:
        return 1.0
    beta = 1.0 if len(t) > 2 and (t[1] == 1 or t[2] < t[3 if len(t) > 3 else 2]) else 2.0
    return (beta / max(1, _numel(t[1:]))) ** 0.5


def squash(w: torch.Tensor, is_bias: bool) -> torch.Tensor:
    """GHN-2 normalisation of 1-D tensors: biases ``tanh(p/5)`` in [-1, 1], norm weights
    ``2*sigmoid(p/2)`` in [0, 2]."""
    return torch.tanh(0.2 * w) if is_bias else 2 * torch.sigmoid(0.5 * w)


def normalize(w: torch.Tensor, shape: tuple[int, ...], is_bias: bool) -> torch.Tensor:
    """Normalise a predicted tensor destined for ``shape`` (elementwise: fine before tiling)."""
    return w * fan_in_scale(shape) if len(shape) > 1 else squash(w, is_bias)


def source(w: torch.Tensor, plan: ParamPlan) -> torch.Tensor:
    """One item of a decoder output (layout by kind, see module doc) in the target's layout,
    sliced to at most the target shape per dimension; :func:`tile_to` / :func:`tile_into`
    finish it."""
    t = plan.shape
    if plan.kind == "conv":
        if len(t) == 2:
            w = w[:, :, 0, 0]
        elif len(t) == 3:
            w = w[..., 0]
        elif len(t) > 4:
            w = w[: t[0], : t[1]]
            w = w.reshape(w.shape[0], w.shape[1], *t[2:])
    elif plan.kind == "pos":
        w = w.reshape(w.shape[0], w.shape[1], -1).transpose(1, 2)  # (1, s*s, C)
    elif plan.kind == "cls_w" and len(t) == 4:
        w = w[:, :, None, None]
    elif plan.kind == "vec":
        n = _numel(t)
        w = w[: min(n, w.shape[0])]
        if len(t) == 0:
            return w.reshape(())
        big = max(range(len(t)), key=lambda d: t[d])
        return w.reshape(*(len(w) if d == big else 1 for d in range(len(t))))
    return w[tuple(slice(0, min(a, b)) for a, b in zip(w.shape, t))]


def tile_to(w: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Slice ``w`` to at most ``shape`` per dimension, then tile (repeat) up to ``shape``."""
    if w.dim() != len(shape):
        raise ValueError(f"cannot tile a {tuple(w.shape)} tensor to {shape}: dimension mismatch")
    w = w[tuple(slice(0, min(a, b)) for a, b in zip(w.shape, shape))]
    reps = [math.ceil(t / s) for t, s in zip(shape, w.shape)]
    if any(r > 1 for r in reps):
        w = w.repeat(*reps)[tuple(slice(0, t) for t in shape)]
    return w


@torch.no_grad()
def tile_into(dst: torch.Tensor, w: torch.Tensor) -> None:
    """``dst.copy_(tile_to(w, dst.shape))`` in one pass when every size divides evenly."""
    t, s = tuple(dst.shape), tuple(w.shape)
    if len(t) == len(s) and dst.is_contiguous() and all(a % b == 0 for a, b in zip(t, s)):
        inter = [v for a, b in zip(t, s) for v in (a // b, b)]
        dst.view(inter).copy_(w.reshape([v for b in s for v in (1, b)]).expand(inter))
    else:
        dst.copy_(tile_to(w, t))
