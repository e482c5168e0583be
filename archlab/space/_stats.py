"""Analytic statistics of a genotype: parameters, FLOPs and graph nodes, without torch.

Definitions (checked against built networks by the tests):

- ``params``: number of trainable parameter elements of :func:`build_network` (``sum(p.numel())``).
- ``flops``: multiply-accumulates (MACs) of one image's forward pass, counting convolutions
  (``H_out * W_out * C_out * C_in / groups * kh * kw``), linear layers (``tokens * in * out``)
  and the two attention matmuls of ``msa`` (``2 * tokens^2 * inner_dim``). Biases, norms,
  pooling, activations and element-wise ops are not counted.
- ``nodes``: graph nodes per op type as :func:`archlab.graph.build_graph` makes them (one
  ``input``; one node per conv/linear weight, per bias, per norm layer; pools, ``glob_avg``,
  ``msa`` (softmax), ``cse`` (gating product; its spatial mean is not a node), ``pos_enc``; ``sum``/``concat`` only when they
  join at least two distinct graph nodes).
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from ._genotype import Genotype
from ._plan import NetPlan, conv_out, plan_network

_VOCAB = ("max_pool", "avg_pool", "sep_conv", "dil_conv", "conv", "msa", "cse", "sum", "concat",
          "input", "bias", "bn", "ln", "pos_enc", "glob_avg")


@lru_cache(maxsize=65536)
def _op_cost(name: str, C: int, h_in: int, stride: int, bn: int):
    """(params, flops, {node: count}, passthrough) of one cell op with C channels in and out."""
    h = conv_out(h_in, stride)
    hw = h * h
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        return 0, 0, {name[:8]: 1}, False
    if name == "skip_connect":
        if stride == 1:
            return 0, 0, {}, True
        half = C // 2
        return 2 * C * half + 2 * C * bn, 2 * hw * C * half, {"conv": 2, "concat": 1, "bn": bn}, False
    if name.startswith("sep_conv"):
        k = int(name[-1])
        params = 2 * (C * k * k + C * C) + 4 * C * bn
        flops = 2 * hw * (C * k * k + C * C)  # the second pair runs at stride 1 on the output
        return params, flops, {"sep_conv": 2, "conv": 2, "bn": 2 * bn}, False
    if name.startswith("dil_conv"):
        k = int(name[-1])
        return C * k * k + C * C + 2 * C * bn, hw * (C * k * k + C * C), {"dil_conv": 1, "conv": 1, "bn": bn}, False
    if name == "conv_7x1_1x7":
        flops = h_in * h * C * C * 7 + hw * C * C * 7
        return 14 * C * C + 2 * C * bn, flops, {"conv": 2, "bn": bn}, False
    if name.startswith("conv_"):
        k = int(name[-1])
        return C * C * k * k + 2 * C * bn, hw * C * C * k * k, {"conv": 1, "bn": bn}, False
    if name == "cse":
        r = C // 2
        return 2 * C * r + r + C, 2 * C * r, {"conv": 2, "bias": 2, "cse": 1}, False
    if name == "msa":
        inner = (C // 8) * 8
        n = h_in * h_in
        params = 3 * C * inner + inner * C + C + 4 * C + 2 * (C * C + C)
        flops = n * C * 3 * inner + 2 * n * n * inner + n * inner * C + 2 * n * C * C
        return params, flops, {"ln": 2, "conv": 4, "bias": 3, "msa": 1, "sum": 2}, False
    raise ValueError(f"no cost rule for op {name!r}")


def _add(counts: Counter, delta: dict) -> None:
    for k, v in delta.items():
        if v:
            counts[k] += v


def plan_stats(plan: NetPlan) -> dict:
    """Parameters, FLOPs and node counts of a resolved plan (see the module docstring)."""
    g = plan.genotype
    bn = int(plan.norm)
    C = plan.C
    params = flops = 0
    nodes: Counter = Counter(input=1)
    size = plan.input_size
    if plan.stem == "vit":
        k, h = plan.stem_ks, plan.stem_sizes[0]
        params += 3 * C * k * k + C * h * h
        flops += h * h * C * 3 * k * k
        _add(nodes, {"conv": 1, "pos_enc": 1, "sum": 1})
    elif plan.stem == "simple":
        cs, k, h = plan.stem_channels, plan.stem_ks, plan.stem_sizes[0]
        params += 3 * cs * k * k + 2 * cs * bn
        flops += h * h * cs * 3 * k * k
        _add(nodes, {"conv": 1, "bn": bn, "max_pool": int(g.stem_pool)})
    else:
        k, half = plan.stem_ks, C // 2
        ha = conv_out(size, plan.stem_stride)
        h0, h1 = plan.stem_sizes
        params += 3 * half * k * k + half * C * 9 + 3 * C * bn + C * C * 9 + 2 * C * bn
        flops += ha * ha * half * 3 * k * k + h0 * h0 * C * half * 9 + h1 * h1 * C * C * 9
        _add(nodes, {"conv": 3, "bn": 3 * bn})

    # graph ids of the two most recent outputs, to tell when a sum/concat joins one node twice
    next_id = 3
    outs = [1, 2] if plan.stem == "imagenet" else [1, 1]
    for cell in plan.cells:
        Cc = cell.C
        state = {}
        for s, kind, c_in, h_in in ((0, cell.pre0, cell.c_in0, cell.h_in0),
                                    (1, cell.pre1, cell.c_in1, cell.h_in1)):
            if kind is None:
                continue
            if kind in ("identity", "stride"):
                state[s] = outs[s]
                continue
            if kind == "conv":
                params += c_in * Cc + 2 * Cc * bn
                flops += h_in * h_in * c_in * Cc
                _add(nodes, {"conv": 1, "bn": bn})
            else:  # factorized reduce
                h = conv_out(h_in, 2)
                params += 2 * c_in * (Cc // 2) + 2 * Cc * bn
                flops += 2 * h * h * c_in * (Cc // 2)
                _add(nodes, {"conv": 2, "concat": 1, "bn": bn})
            state[s] = next_id
            next_id += 1
        by_node: dict[int, list] = {}
        for op in cell.ops:
            by_node.setdefault(op.dst, []).append(op)
        for dst in sorted(by_node):
            gids = []
            for op in by_node[dst]:
                p, f, nd, passthrough = _op_cost(op.name, Cc, op.h_in, op.stride, bn)
                params += p
                flops += f
                _add(nodes, nd)
                if passthrough:
                    gids.append(state[op.src])
                else:
                    gids.append(next_id)
                    next_id += 1
            if len(set(gids)) >= 2:
                nodes["sum"] += 1
                state[dst] = next_id
                next_id += 1
            else:
                state[dst] = gids[0]
        ids = {state[i] for i in cell.concat}
        if len(ids) >= 2:
            nodes["concat"] += 1
            out_id, next_id = next_id, next_id + 1
        else:
            out_id = state[cell.concat[0]]
        outs = [outs[1], out_id]

    if g.glob_avg:
        nodes["glob_avg"] += 1
    for fin, fout in plan.fc:
        params += fin * fout + fout
        flops += fin * fout
        _add(nodes, {"conv": 1, "bias": 1})
    ordered = {k: nodes[k] for k in _VOCAB if nodes.get(k)}
    return {"params": params, "flops": flops, "nodes": ordered, "num_nodes": sum(ordered.values())}


def analytic_stats(genotype: Genotype, C: int = 32, fc_dim: int = 256, num_classes: int = 10,
                   input: str = "cifar", image_size: int | None = None) -> dict:
    """Parameters, FLOPs (MACs), graph nodes by type and cell count of ``genotype`` built at
    width ``C`` for ``input`` images of ``image_size`` pixels (default: the input's), computed from the genotype alone (no torch).

    Returns ``{"params", "flops", "nodes": {op: count}, "num_nodes", "n_cells"}``; raises
    :class:`archlab.space.InvalidGenotype` for genotypes whose network would be disconnected.
    """
    plan = plan_network(genotype, C=C, num_classes=num_classes, fc_dim=fc_dim, input=input,
                        image_size=image_size)
    out = plan_stats(plan)
    out["n_cells"] = genotype.n_cells
    return out
