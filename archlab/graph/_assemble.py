"""Assemble an :class:`ArchGraph` from a :class:`RawTrace` using the op rules."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ._rules import (
    MULTI_INPUT_OPS,
    OP_RULES,
    PARAM_RULES,
    POOL_OPS,
    TRANSPARENT_PARAM_OPS,
    ParamUse,
    fallback_use,
    op_name,
    pool_shape,
)
from ._trace import RawTrace
from ._types import ArchGraph, Fallback, Node


@dataclass
class _Draft:
    key: tuple[int, int]
    op: str
    name: str
    shape: tuple[int, ...]
    params: tuple[str, ...] = ()


def _is_transparent(fn, n_children: int) -> bool:
    name = op_name(fn)
    return n_children == 1 and (name in TRANSPARENT_PARAM_OPS or name in ("Mul", "Div"))


def _param_consumers(trace: RawTrace, leaf_id: int):
    """Ops consuming a parameter, looking through reshapes/selections of it: (fn, slot) pairs."""
    out, seen = [], set()
    frontier = list(trace.parents.get(leaf_id, []))
    while frontier:
        fn, slot = frontier.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        if _is_transparent(fn, len(trace.children[id(fn)])):
            frontier.extend(trace.parents.get(id(fn), []))
        else:
            out.append((fn, slot))
    return out


def assemble(trace: RawTrace, param_shapes: dict[str, tuple[int, ...]], input_size,
             mode: str = "ghn2") -> ArchGraph:
    """Turn the raw autograd DAG into typed nodes and data-flow edges (see ``_rules``)."""
    uses: dict[int, list[tuple[str, int, ParamUse]]] = defaultdict(list)
    fallbacks: list[Fallback] = []
    for leaf_id, pname in trace.leaf_param.items():
        shape = param_shapes[pname]
        for fn, slot in _param_consumers(trace, leaf_id):
            rule = PARAM_RULES.get(op_name(fn))
            if rule is None:
                use = fallback_use(shape)
                fallbacks.append(Fallback(param=pname, module=pname.rpartition(".")[0],
                                          consumer=type(fn).__name__, op=use.op,
                                          reason=f"no rule for the consuming op {type(fn).__name__}"))
            else:
                use = rule(fn, slot, shape)
            uses[id(fn)].append((pname, slot, use))

    drafts: list[_Draft] = [_Draft((-1, 0), "input", "input", tuple(input_size))]
    edges: set[tuple[int, int]] = set()
    out_src: dict[int, tuple[int, ...]] = {}
    param_path: set[int] = set()

    for pos, fn in enumerate(trace.fns):
        fid = id(fn)
        if fid == trace.input_leaf:
            out_src[fid] = (0,)
            continue
        if hasattr(fn, "variable"):
            if fid in trace.leaf_param:
                param_path.add(fid)
            out_src[fid] = ()
            continue
        kids = trace.children[fid]
        if len(kids) == 1 and id(kids[0][0]) in param_path and _is_transparent(fn, 1) and fid not in uses:
            param_path.add(fid)
            out_src[fid] = ()
            continue
        in_src = _ordered_union(out_src[id(c)] for c, _ in kids if id(c) not in param_path)
        fn_uses = uses.get(fid, [])
        sources = []
        for k, (pname, _, use) in enumerate(u for u in fn_uses if u[2].placement == "source"):
            drafts.append(_Draft((pos, -1000 + k), use.op, pname, param_shapes[pname], (pname,)))
            sources.append(len(drafts) - 1)
        chain = _inline_chain(fn_uses, param_shapes, pos)
        if chain:
            first = len(drafts)
            drafts.extend(chain)
            edges.update((s, first) for s in (*in_src, *sources))
            edges.update((first + i, first + i + 1) for i in range(len(chain) - 1))
            out_src[fid] = (len(drafts) - 1,)
            continue
        all_in = (*in_src, *sources)
        rule = OP_RULES.get(op_name(fn))
        op = rule(fn, mode) if rule is not None else None
        if op in MULTI_INPUT_OPS and len(all_in) < 2:
            op = None
        if op is None:
            out_src[fid] = all_in
            continue
        shape = pool_shape(fn) if op in POOL_OPS else ()
        drafts.append(_Draft((pos, 0), op, op, shape))
        node = len(drafts) - 1
        edges.update((s, node) for s in all_in)
        out_src[fid] = (node,)

    outputs = _ordered_union(out_src[id(o)] for o in trace.outputs)
    return _finalize(drafts, edges, outputs, param_shapes, fallbacks, input_size)


def _inline_chain(fn_uses, param_shapes, pos: int) -> list[_Draft]:
    inline = [u for u in fn_uses if u[2].placement == "inline"]
    if not inline:
        return []
    inline.sort(key=lambda u: (u[2].role != "weight", u[1]))
    chain: list[_Draft] = []
    grouped = [u for u in inline if u[2].group]
    if grouped:
        names = tuple(dict.fromkeys(p for p, _, _ in grouped))
        chain.append(_Draft((pos, 0), grouped[0][2].op, names[0], param_shapes[names[0]], names))
    for pname, _, use in (u for u in inline if not u[2].group):
        chain.append(_Draft((pos, len(chain)), use.op, pname, param_shapes[pname], (pname,)))
    return chain


def _ordered_union(groups) -> tuple[int, ...]:
    return tuple(dict.fromkeys(i for g in groups for i in g))


def _finalize(drafts, edges, outputs, param_shapes, fallbacks, input_size) -> ArchGraph:
    order = sorted(range(len(drafts)), key=lambda i: drafts[i].key)
    new_index = np.empty(len(drafts), dtype=np.int64)
    new_index[order] = np.arange(len(drafts))
    owner: set[str] = set()
    nodes: list[Node] = []
    for i in order:
        d = drafts[i]
        module = d.params[0].rpartition(".")[0] if d.params else ""
        owned = tuple(p for p in d.params if p not in owner)
        owner.update(owned)
        shared = "" if owned or not d.params else d.params[0]
        nodes.append(Node(op=d.op, name=d.name, shape=tuple(int(s) for s in d.shape), params=owned,
                          uses=shared, module=module))
    if edges:
        e = np.array(sorted(edges), dtype=np.int64).T
        e = new_index[e]
        e = e[:, np.lexsort((e[1], e[0]))]
    else:
        e = np.zeros((2, 0), dtype=np.int64)
    return ArchGraph(nodes=nodes, edge_index=e, input_size=tuple(input_size),
                     param_shapes=dict(param_shapes), fallbacks=fallbacks,
                     outputs=sorted(int(new_index[o]) for o in outputs))
