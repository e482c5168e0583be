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


def normalize(w: torch.Tensor, shape: tuple[int, ...], is_bias: bool) -> torch.Tensor:
    """GHN-2 normalisation of a predicted tensor destined for ``shape`` (elementwise, so it may
    be applied before tiling): fan-in scaling for >1-D tensors (gain 1 for layers not followed
    by ReLU, 2 otherwise; positional encodings untouched), norm weights ``2*sigmoid(p/2)`` in
    [0, 2], biases ``tanh(p/5)`` in [-1, 1]."""
    t = shape
    if len(t) > 1:
        if len(t) > 2 and t[2] >= 11 and t[0] == 1:
            return w
        beta = 1.0 if len(t) > 2 and (t[1] == 1 or t[2] < t[3 if len(t) > 3 else 2]) else 2.0
        return w * (beta / max(1, _numel(t[1:]))) ** 0.5
    return torch.tanh(0.2 * w) if is_bias else 2 * torch.sigmoid(0.5 * w)


def tile_to(w: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Slice ``w`` to at most ``shape`` per dimension, then tile (repeat) up to ``shape``."""
    if w.dim() != len(shape):
        raise ValueError(f"cannot tile a {tuple(w.shape)} tensor to {shape}: dimension mismatch")
    idx = tuple(slice(0, min(a, b)) for a, b in zip(w.shape, shape))
    w = w[idx]
    reps = [math.ceil(t / s) for t, s in zip(shape, w.shape)]
    if any(r > 1 for r in reps):
        w = w.repeat(*reps)[tuple(slice(0, t) for t in shape)]
    return w


def finish(w: torch.Tensor, plan: ParamPlan, normalise: bool) -> torch.Tensor:
    """Decoder output for one parameter (layout by kind, see module doc) -> target tensor."""
    t = plan.shape
    if plan.kind == "conv":
        if len(t) == 2:
            w = w[:, :, 0, 0]
        elif len(t) == 3:
            w = w[..., 0]
        elif len(t) > 4:
            w = w[: t[0], : t[1]].reshape(min(t[0], w.shape[0]), min(t[1], w.shape[1]), *t[2:])
    elif plan.kind == "pos":
        w = w.reshape(w.shape[0], w.shape[1], -1).transpose(1, 2)  # (1, s*s, C)
    elif plan.kind == "vec":
        n = _numel(t)
        w = tile_to(w[: min(n, w.shape[0])], (n,))
        if normalise:
            w = normalize(w, t, plan.is_bias)
        return w.reshape(t)
    if normalise:
        w = normalize(w, t, plan.is_bias)
    if plan.kind == "cls_w" and len(t) == 4:
        return tile_to(w, t[:2]).reshape(t)
    return tile_to(w, t)
