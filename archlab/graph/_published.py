"""Graphs as the published GHN code builds them (facebookresearch/ppuda, SamsungSAILMontreal/ghn3).

A published GHN was trained on its own code's graphs, so archlab gives it the same ones
(``build_graph(model, mode, published=True)``). On top of the mode's op rules, that code:

- makes nodes only for parameters of the module types in its table (ppuda: exactly ``Conv2d``,
  ``Linear``, ``BatchNorm2d``, ``LayerNorm``, ConvNeXt's ``LayerNorm2d`` and its ``PosEnc``;
  ghn3 also subclasses of those, ``MultiheadAttention``, ``Embedding`` and torchvision ViT's
  ``Encoder``). Other parameters (ConvNeXt layer scales, ViT's class token, ``GroupNorm``) get
  no node, are not predicted and keep the model's values; ``graph.meta["not_modelled"]`` lists
  them. Their nodes are removed and their inputs wired to their outputs; sums and concatenations
  left with one input go too;
- the op after an attention (``msa``) node takes no other input (the values' path is wired
  into the attention node), as ghn3's ``fix_softmax_edges`` does and DeepNets-1M's graphs (on
  which both GHNs were trained) are. ppuda on today's torch makes no ``msa`` node for its own
  attention op (its detection relies on torch 1.9's autograd graph); archlab keeps it, as in
  DeepNets-1M;
- ghn3: in networks with squeeze-excitation gates (``cse`` nodes) drops the global means of the
  gates (those from which a ``cse`` node is reachable); the classifier's pooling stays.

ppuda cannot build graphs of torchvision's ViT and Swin; for those archlab uses ghn3's table
(ghn3's graph code extends ppuda's to them) and says so in ``graph.meta["notes"]``.

Node order stays topological; the published code may pick another valid topological order (the
GHNs' predictions do not depend on it).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch.nn as nn

from ._types import ArchGraph

REFERENCES = ("ppuda", "ghn3")
_NAMED = {"ppuda": frozenset({"PosEnc"}), "ghn3": frozenset({"PosEnc", "Conv1D"})}


def _module_types(reference: str) -> tuple[type, ...]:
    types: list[type] = [nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm]
    try:
        from torchvision.models.convnext import LayerNorm2d
        from torchvision.models.vision_transformer import Encoder
    except ImportError:  # torchvision absent: only its classes are missing from the table
        LayerNorm2d = Encoder = None
    types += [LayerNorm2d] if LayerNorm2d is not None else []
    if reference == "ghn3":
        types += [nn.MultiheadAttention, nn.Embedding] + ([Encoder] if Encoder is not None else [])
    return tuple(types)


def _refused_by_ppuda(model: nn.Module) -> bool:
    """torchvision ViT (refused outright) and Swin (its graph check fails) are beyond ppuda."""
    try:
        from torchvision.models.swin_transformer import SwinTransformer
        from torchvision.models.vision_transformer import VisionTransformer
    except ImportError:
        return False
    return any(isinstance(m, (VisionTransformer, SwinTransformer)) for m in model.modules())


def _modelled(module: nn.Module | None, reference: str, types: tuple[type, ...]) -> bool:
    if module is None:
        return False
    if type(module).__name__ in _NAMED[reference]:
        return True
    if reference == "ppuda":
        return type(module) in types
    return isinstance(module, types)


def published_graph(model: nn.Module, g: ArchGraph, reference: str) -> ArchGraph:
    """``g`` (built in the reference's mode) reduced to the nodes the ``reference`` code makes."""
    if reference not in REFERENCES:
        raise ValueError(f"unknown published GHN code {reference!r}; choose from {REFERENCES}")
    table, notes = reference, []
    if reference == "ppuda" and _refused_by_ppuda(model):
        table = "ghn3"
        notes.append(f"ppuda cannot build graphs of {type(model).__name__}; used the module table of "
                     "ghn3's graph code (which extends ppuda's to torchvision ViT/Swin)")
    types = _module_types(table)
    modules = dict(model.named_modules())
    drop: set[int] = set()
    for i, n in enumerate(g.nodes):
        names = n.params or ((n.uses,) if n.uses else ())
        if names and not all(_modelled(modules.get(p.rpartition(".")[0]), table, types) for p in names):
            drop.add(i)
    not_modelled = [p for i in sorted(drop) for p in g.nodes[i].params]
    out = _without(g, drop)
    out = _softmax_edges(out)
    if reference == "ghn3" and any(n.op == "cse" for n in out.nodes):
        out = _without(out, _gate_means(out))
    out.meta = {**g.meta, "published": reference, "not_modelled": not_modelled}
    if notes:
        out.meta["notes"] = [*g.meta.get("notes", []), *notes]
    return out.validate()


def _softmax_edges(g: ArchGraph) -> ArchGraph:
    """ghn3's ``fix_softmax_edges``: the op after an attention node takes no other input; one
    that reached it only by that edge (the values' path) feeds the attention node instead."""
    succ: dict[int, set[int]] = {v: set() for v in range(g.num_nodes)}
    for s, d in g.edge_index.T.tolist():
        succ[s].add(d)
    changed = False
    for m in (i for i, n in enumerate(g.nodes) if n.op == "msa"):
        for s in sorted(succ[m]):
            for j in [j for j in range(s) if j != m and s in succ[j]]:
                succ[j].discard(s)
                changed = True
                if not _reaches(succ, j, s) and j < m:
                    succ[j].add(m)
    if not changed:
        return g
    edges = sorted((a, b) for a, bs in succ.items() for b in bs)
    return replace(g, edge_index=np.array(edges, dtype=np.int64).T.reshape(2, -1))


def _reaches(succ: dict[int, set[int]], a: int, b: int) -> bool:
    stack, seen = [a], {a}
    while stack:
        v = stack.pop()
        for w in succ[v]:
            if w == b:
                return True
            if w not in seen and w < b:
                seen.add(w)
                stack.append(w)
    return False


def _gate_means(g: ArchGraph) -> set[int]:
    succ: dict[int, list[int]] = {}
    for s, d in g.edge_index.T.tolist():
        succ.setdefault(s, []).append(d)
    reaches_cse = np.zeros(g.num_nodes, dtype=bool)
    for v in range(g.num_nodes - 1, -1, -1):  # topological order: successors have larger indices
        reaches_cse[v] = any(g.nodes[w].op == "cse" or reaches_cse[w] for w in succ.get(v, ()))
    return {i for i, n in enumerate(g.nodes) if n.op == "glob_avg" and reaches_cse[i]}


def _without(g: ArchGraph, drop: set[int]) -> ArchGraph:
    """``g`` without the nodes ``drop`` (inputs wired to outputs), then without sums and
    concatenations left with fewer than two inputs."""
    preds = [set() for _ in g.nodes]
    for s, d in g.edge_index.T.tolist():
        preds[d].add(s)
    outputs = set(g.outputs)
    removed = [False] * g.num_nodes

    def remove(v: int) -> None:
        removed[v] = True
        for w in range(v + 1, g.num_nodes):
            if v in preds[w]:
                preds[w].discard(v)
                preds[w].update(preds[v])
        if v in outputs:
            outputs.discard(v)
            outputs.update(preds[v])

    for v in sorted(drop):
        remove(v)
    for v in range(g.num_nodes):
        if not removed[v] and g.nodes[v].op in ("sum", "concat") and len(preds[v]) < 2:
            remove(v)
    if not any(removed):
        return replace(g, meta=dict(g.meta))
    keep = [v for v in range(g.num_nodes) if not removed[v]]
    index = {v: i for i, v in enumerate(keep)}
    edges = sorted((index[s], index[d]) for d in keep for s in preds[d])
    e = np.array(edges, dtype=np.int64).T if edges else np.zeros((2, 0), dtype=np.int64)
    return replace(g, nodes=[g.nodes[v] for v in keep], edge_index=e,
                   outputs=sorted(index[o] for o in outputs if o in index), meta=dict(g.meta))
