"""Run a model once and collect its autograd graph (the raw material of an ArchGraph).

Parameters are swapped for leaf tensors (``torch.func.functional_call``) so the model itself is
never modified: on the ``meta`` device no memory or compute is used; the ``real`` mode (a
fallback for forwards that need concrete values) shares the parameters' storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.func import functional_call

from ._fastmeta import FastMetaOps


@dataclass
class RawTrace:
    """The autograd DAG of one forward pass, in forward (creation) order."""

    fns: list  # grad_fn nodes, sorted by sequence number (forward order)
    children: dict[int, list]  # id(fn) -> [(child_fn, slot)] (inputs of fn)
    parents: dict[int, list]  # id(fn) -> [(parent_fn, slot)] (ops consuming fn's output)
    leaf_param: dict[int, str]  # id(AccumulateGrad) -> parameter name
    input_leaf: int | None  # id(AccumulateGrad) of the input tensor
    outputs: list  # grad_fn of each output tensor
    device: str = "meta"
    mode: str = "eval"
    notes: list[str] = field(default_factory=list)


def _output_tensors(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _output_tensors(o)]
    return []


def run_forward(model: nn.Module, input_size: tuple[int, ...], device: str, train: bool) -> RawTrace:
    """Trace one forward of ``model`` at ``input_size`` with batch 2 on ``device`` (meta|real)."""
    if device == "meta":
        leaves = {n: torch.empty_like(p, device="meta").requires_grad_(True)
                  for n, p in model.named_parameters(remove_duplicate=False)}
        buffers = {n: torch.empty_like(b, device="meta") for n, b in model.named_buffers(remove_duplicate=False)}
        x = torch.empty((2, *input_size), device="meta", requires_grad=True)
    else:
        leaves = {n: p.detach().requires_grad_(True) for n, p in model.named_parameters(remove_duplicate=False)}
        buffers = {n: b.detach().clone() for n, b in model.named_buffers(remove_duplicate=False)}
        dev = next((p.device for p in leaves.values()), torch.device("cpu"))
        x = torch.randn((2, *input_size), device=dev, requires_grad=True)
    _share_tied_leaves(model, leaves)

    was_training = model.training
    model.train(train)
    try:
        with torch.enable_grad():
            if device == "meta":
                with FastMetaOps():
                    out = functional_call(model, {**leaves, **buffers}, (x,), strict=False, tie_weights=True)
            else:
                out = functional_call(model, {**leaves, **buffers}, (x,), strict=False, tie_weights=True)
    finally:
        model.train(was_training)

    outputs = [t.grad_fn for t in _output_tensors(out) if t.grad_fn is not None]
    if not outputs:
        raise ValueError("the model's output does not depend on its input or parameters (no autograd graph)")
    return _collect(outputs, leaves, x, device, "train" if train else "eval")


def _share_tied_leaves(model: nn.Module, leaves: dict[str, torch.Tensor]) -> None:
    """Make names of one shared parameter map to one leaf (weight sharing stays visible)."""
    first: dict[int, str] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            leaves[n] = leaves[first[id(p)]]
        else:
            first[id(p)] = n


def _collect(outputs: list, leaves: dict[str, torch.Tensor], x: torch.Tensor, device: str, mode: str) -> RawTrace:
    name_of_leaf: dict[int, str] = {}
    for n, t in leaves.items():
        name_of_leaf.setdefault(id(t), n)
    children: dict[int, list] = {}
    parents: dict[int, list] = {}
    leaf_param: dict[int, str] = {}
    input_leaf = None
    seen: dict[int, object] = {}
    stack = list(outputs)
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen[id(fn)] = fn
        var = getattr(fn, "variable", None)
        if var is not None:
            if var is x:
                input_leaf = id(fn)
            elif id(var) in name_of_leaf:
                leaf_param[id(fn)] = name_of_leaf[id(var)]
        kids = [(u, slot) for slot, (u, _) in enumerate(fn.next_functions) if u is not None]
        children[id(fn)] = kids
        for u, slot in kids:
            parents.setdefault(id(u), []).append((fn, slot))
            if id(u) not in seen:
                stack.append(u)
    fns = sorted(seen.values(), key=_order_key)
    return RawTrace(fns=fns, children=children, parents=parents, leaf_param=leaf_param,
                    input_leaf=input_leaf, outputs=outputs, device=device, mode=mode)


def _order_key(fn) -> int:
    # Leaves (AccumulateGrad) carry the maximal sequence number; put them first.
    return -1 if hasattr(fn, "variable") else fn._sequence_nr()
