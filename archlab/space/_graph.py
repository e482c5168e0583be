"""Architecture graphs of DeepNets-1M genotypes built straight from the plan: :func:`genotype_graph`.

Tracing a whole network costs tens of milliseconds; its graph is a composition of the graphs of
its pieces (stem, each cell's pre-processing layers and ops, the head), joined by the cell sums
and concatenations. Each piece is traced once per distinct configuration (op, channels, stride,
input size, normalisation, graph mode) and cached as a template; a network's graph is then
stitched in forward order, applying the graph builder's own rules for sums and concatenations
(kept only when they join at least two distinct nodes). No network is built.

The result equals :func:`archlab.graph.build_graph` of :func:`archlab.space.build_network`
(same nodes in the same order, same edges, same parameter shapes); the tests check it on every
shipped split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from archlab.graph._assemble import assemble
from archlab.graph._trace import run_forward
from archlab.graph._types import ArchGraph, Node

from ._genotype import Genotype
from ._network import head_modules, preproc, stem_modules
from ._ops import make_op
from ._plan import NetPlan, plan_network

Sources = tuple[int, ...]


@dataclass(frozen=True)
class _Template:
    """The traced graph of one piece, relative to its own input (node 0)."""

    nodes: tuple[Node, ...]  # without the input node
    edges: tuple[tuple[int, int], ...]  # template indices (0 = the piece's input)
    outputs: tuple[int, ...]
    param_shapes: tuple[tuple[str, tuple[int, ...]], ...]


def _trace_template(module: nn.Module, in_shape: tuple[int, ...], mode: str) -> _Template:
    if isinstance(module, nn.Identity):  # returns its input: no autograd node to trace
        return _Template((), (), (0,), ())
    params = {n: tuple(p.shape) for n, p in module.named_parameters()}
    graph = assemble(run_forward(module, in_shape, "meta", False), params, in_shape, mode)
    edges = tuple(map(tuple, graph.edge_index.T.tolist()))
    return _Template(tuple(graph.nodes[1:]), edges, tuple(graph.outputs), tuple(params.items()))


_CACHE: dict[tuple, _Template] = {}


def _template(key: tuple, make: Callable[[], nn.Module], in_shape: tuple[int, ...], mode: str) -> _Template:
    full = (*key, in_shape, mode)
    hit = _CACHE.get(full)
    if hit is None:
        with torch.random.fork_rng(devices=[]):  # initialising the template leaves the caller's RNG alone
            hit = _CACHE[full] = _trace_template(make(), in_shape, mode)
    return hit


class _Composer:
    """Appends pieces and joins in forward order; node 0 is the network's input."""

    def __init__(self, input_size: tuple[int, ...]):
        self.nodes: list[Node] = [Node(op="input", name="input", shape=tuple(input_size))]
        self.edges: list[tuple[int, int]] = []
        self.param_shapes: dict[str, tuple[int, ...]] = {}

    def piece(self, prefix: str, tpl: _Template, inputs: Sources) -> Sources:
        index = {0: None}
        for i, node in enumerate(tpl.nodes, start=1):
            index[i] = len(self.nodes)
            self.nodes.append(_prefixed(node, prefix))
        for s, d in tpl.edges:
            dst = index[d]
            self.edges.extend((src, dst) for src in (inputs if s == 0 else (index[s],)))
        self.param_shapes.update((f"{prefix}.{n}", shape) for n, shape in tpl.param_shapes)
        return _union(inputs if o == 0 else (index[o],) for o in tpl.outputs)

    def join(self, op: str, groups: Iterable[Sources]) -> Sources:
        inputs = _union(groups)
        if len(inputs) < 2:
            return inputs
        self.nodes.append(Node(op=op, name=op))
        self.edges.extend((s, len(self.nodes) - 1) for s in inputs)
        return (len(self.nodes) - 1,)


def _union(groups: Iterable[Sources]) -> Sources:
    return tuple(dict.fromkeys(i for g in groups for i in g))


@lru_cache(maxsize=8192)
def _prefixed(node: Node, prefix: str) -> Node:
    if not node.params:
        return node
    module = f"{prefix}.{node.module}" if node.module else prefix
    return Node(op=node.op, name=f"{prefix}.{node.name}", shape=node.shape,
                params=tuple(f"{prefix}.{p}" for p in node.params), uses=node.uses, module=module)


def genotype_graph(genotype: Genotype, num_classes: int = 10, input: str = "cifar", C: int = 32,
                   fc_dim: int = 256, image_size: int | None = None, mode: str = "ghn2") -> ArchGraph:
    """The :class:`~archlab.graph.ArchGraph` of ``build_network(genotype, ...)`` (same arguments),
    without building or tracing the network (see the module docstring)."""
    plan = plan_network(genotype, C=C, num_classes=num_classes, fc_dim=fc_dim, input=input,
                        image_size=image_size)
    return plan_graph(plan, mode)


def plan_graph(plan: NetPlan, mode: str = "ghn2") -> ArchGraph:
    """The graph of the network of a resolved plan (see :func:`genotype_graph`)."""
    size = plan.input_size
    b = _Composer((3, size, size))
    s0, s1 = _stem(b, plan, mode)
    norm = plan.norm
    for cell in plan.cells:
        pre = f"cells.{cell.index}"
        states: dict[int, Sources] = {}
        if cell.pre0 is not None:
            states[0] = _preproc(b, f"{pre}.pre0", cell.pre0, cell.c_in0, cell.C, cell.h_in0, norm, mode, s0)
        if cell.pre1 is not None:
            states[1] = _preproc(b, f"{pre}.pre1", cell.pre1, cell.c_in1, cell.C, cell.h_in1, norm, mode, s1)
        by_dst: dict[int, list] = {}
        for op in cell.ops:
            by_dst.setdefault(op.dst, []).append(op)
        for dst in sorted(by_dst):
            acc: Sources | None = None
            for op in by_dst[dst]:
                tpl = _template(("op", op.name, op.C, op.stride, norm),
                                lambda op=op: make_op(op.name, op.C, op.stride, norm, False),
                                (op.C, op.h_in, op.h_in), mode)
                h = b.piece(f"{pre}.ops.{op.index}", tpl, states[op.src])
                acc = h if acc is None else b.join("sum", (acc, h))
            states[dst] = acc
        outs = [states[i] for i in cell.concat]
        s0, s1 = s1, (outs[0] if len(outs) == 1 else b.join("concat", outs))
    out = _head(b, plan, mode, s1)
    return _finish(b, plan, out, mode)


def _stem(b: _Composer, plan: NetPlan, mode: str) -> tuple[Sources, Sources]:
    size = plan.input_size
    key = ("stem", plan.stem, plan.C, plan.stem_channels, plan.stem_ks, plan.stem_stride,
           plan.genotype.stem_pool, plan.norm, plan.stem_sizes)
    def part(name: str, in_shape: tuple[int, ...], inputs: Sources) -> Sources:
        tpl = _template((*key, name), lambda: stem_modules(plan)[name], in_shape, mode)
        return b.piece(name, tpl, inputs)

    if plan.stem == "vit":
        h = plan.stem_sizes[0]
        s = part("pos_enc", (plan.C, h, h), part("stem0", (3, size, size), (0,)))
        return s, s
    if plan.stem == "simple":
        s = part("stem", (3, size, size), (0,))
        return s, s
    h0 = plan.stem_sizes[0]
    s0 = part("stem0", (3, size, size), (0,))
    return s0, part("stem1", (plan.C, h0, h0), s0)


def _preproc(b: _Composer, prefix: str, kind: str, c_in: int, C: int, h: int, norm: bool, mode: str,
             inputs: Sources) -> Sources:
    tpl = _template(("pre", kind, c_in, C, norm), lambda: preproc(kind, c_in, C, norm, False),
                    (c_in, h, h), mode)
    return b.piece(prefix, tpl, inputs)


def _head(b: _Composer, plan: NetPlan, mode: str, s1: Sources) -> Sources:
    last = plan.cells[-1]
    c, h = last.c_out, last.h_out
    key = ("head", plan.genotype.glob_avg, plan.fc)
    pooled = b.piece("global_pooling", _template((*key, "pool"), lambda: head_modules(plan)[0], (c, h, h), mode), s1)
    feats = plan.fc[0][0]
    return b.piece("classifier", _template((*key, "fc"), lambda: head_modules(plan)[1], (feats,), mode), pooled)


def _finish(b: _Composer, plan: NetPlan, outputs: Sources, mode: str) -> ArchGraph:
    if b.edges:
        e = np.array(sorted(set(b.edges)), dtype=np.int64).T
    else:
        e = np.zeros((2, 0), dtype=np.int64)
    graph = ArchGraph(nodes=b.nodes, edge_index=e, input_size=(3, plan.input_size, plan.input_size),
                      param_shapes=b.param_shapes, trainable=dict.fromkeys(b.param_shapes, True),
                      outputs=sorted(outputs),
                      meta={"traced_on": "genotype", "mode": "eval", "graph_mode": mode, "model": "Network"})
    return graph.validate()
