"""Resolve a :class:`Genotype` into a concrete network plan (pure Python, no torch).

The plan fixes every layer's channels and spatial size, and which parts of the genotype are
*live*. It is the single source of truth for both :func:`build_network` (torch modules) and
:func:`analytic_stats` (parameter counts, FLOPs, graph nodes), which keeps the two in agreement.

Liveness follows the DeepNets-1M forward pass: a ``none`` op contributes nothing; a node whose
contributions are all missing is missing; missing states are left out of the cell's
concatenation. Ops, preprocessing layers and stem layers whose output never reaches the logits
are not built at all (so every parameter of a built network is used). A genotype is *invalid*
(:class:`InvalidGenotype`) when a cell's output is missing or unused, i.e. when the traced graph
would be disconnected; the sampler rejects such genotypes, as the reference generator did.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from archlab.errors import ArchlabError

from ._genotype import Cell, Genotype

INPUT_SIZES = {"cifar": 32, "imagenet": 224}  # default image size per input (stem) kind
MIN_IMAGE_SIZE = 8


def input_kind(image_size: int) -> str:
    """Stem kind for images of ``image_size`` pixels: "cifar" up to 64, else "imagenet"."""
    return "cifar" if image_size <= 64 else "imagenet"


def plan_input_size(input: str, image_size: int | None = None) -> int:
    """The image size a network for ``input`` is built for: ``image_size``, else the default."""
    if input not in INPUT_SIZES:
        raise ValueError(f"unknown input {input!r}; choose from {', '.join(INPUT_SIZES)}")
    size = INPUT_SIZES[input] if image_size is None else int(image_size)
    if size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE} (the stem and two reductions "
                         f"must leave at least one pixel); got {image_size}")
    return size


class InvalidGenotype(ArchlabError, ValueError):
    """The genotype yields a network with a missing or unused cell output."""


@dataclass(frozen=True)
class OpPlan:
    """One live cell op: ``name`` maps state ``src`` into node ``dst`` (channels ``C``)."""

    index: int  # position in the genotype's cell list (module name ``ops.<index>``)
    name: str
    src: int
    dst: int
    stride: int
    C: int
    h_in: int


@dataclass(frozen=True)
class CellPlan:
    index: int
    reduction: bool
    C: int  # channels of every state inside the cell
    c_in0: int
    c_in1: int
    h_in0: int
    h_in1: int
    pre0: str | None  # "conv" | "reduce" | "stride" | "identity" | None (state 0 unused)
    pre1: str | None  # "conv" | "identity" | None (state 1 unused)
    ops: tuple[OpPlan, ...]
    concat: tuple[int, ...]  # live states concatenated into the output
    h_out: int

    @property
    def c_out(self) -> int:
        return len(self.concat) * self.C


@dataclass(frozen=True)
class NetPlan:
    genotype: Genotype
    input_size: int
    C: int
    num_classes: int
    fc_dim: int
    stem: str  # "vit" | "simple" | "imagenet"
    stem_channels: int  # output channels of the (last) stem layer
    stem_ks: int  # kernel (and stride, for "vit") of the first stem conv
    stem_stride: int
    stem_sizes: tuple[int, ...]  # spatial sizes after each stem stage
    stem1_live: bool  # ImageNet-style stem: whether stem1 is used
    cells: tuple[CellPlan, ...]
    head_features: int
    fc: tuple[tuple[int, int], ...]  # (in, out) of each linear layer

    @property
    def norm(self) -> bool:
        return self.genotype.norm == "bn"


def conv_out(h: int, stride: int) -> int:
    """Spatial size after any 'same'-padded op of odd kernel with this stride."""
    return (h - 1) // stride + 1


@lru_cache(maxsize=4096)
def cell_structure(cell: Cell, concat: tuple[int, ...]):
    """Liveness of one cell type: (live op indices, live concat states, uses state 0, uses 1).

    Computed on the genotype alone: both cell inputs always exist (invalid genotypes are rejected).
    """
    steps = len(cell) // 2
    avail = [True, True] + [False] * steps
    for k in range(steps):
        avail[k + 2] = any(op != "none" and avail[src] for op, src in cell[2 * k: 2 * k + 2])
    live_concat = tuple(i for i in concat if avail[i])
    live = [False] * (steps + 2)
    for i in live_concat:
        live[i] = True
    live_ops = []
    for k in range(steps - 1, -1, -1):
        if not live[k + 2]:
            continue
        for j in (2 * k, 2 * k + 1):
            op, src = cell[j]
            if op != "none" and avail[src]:
                live_ops.append(j)
                live[src] = True
    return tuple(sorted(live_ops)), live_concat, live[0], live[1]


def is_reduction(i: int, n_cells: int) -> bool:
    return i > 0 and i in (n_cells // 3, 2 * n_cells // 3)


def plan_network(g: Genotype, C: int = 32, num_classes: int = 10, fc_dim: int = 256,
                 input: str = "cifar", image_size: int | None = None) -> NetPlan:
    """Resolve ``g`` at width ``C`` for ``input`` ("cifar": small-image stem, 32x32 by default;
    "imagenet": 224x224 by default) images of ``image_size`` pixels (``None``: that default)."""
    size = plan_input_size(input, image_size)
    if C < 2 or C % 2:
        raise ValueError(f"C must be an even number >= 2; got {C}")
    if g.is_vit and C < 8:
        raise ValueError(f"C must be >= 8 for self-attention genotypes (8 heads); got {C}")
    imagenet = input == "imagenet"
    n = g.n_cells
    red_flags = [is_reduction(i, n) for i in range(n)]
    structs = [cell_structure(g.reduce, g.reduce_concat) if r else
               cell_structure(g.normal, g.normal_concat) for r in red_flags]
    for i, (_, concat, _, _) in enumerate(structs):
        if not concat:
            raise InvalidGenotype(f"cell {i} has no output: every concatenated node is fed by 'none' ops only")
    # which cell outputs reach the logits (cell i feeds i+1 as state 1 and i+2 as state 0)
    live = [False] * n
    live[n - 1] = True
    for i in range(n - 2, -1, -1):
        live[i] = (live[i + 1] and structs[i + 1][3]) or (i + 2 < n and live[i + 2] and structs[i + 2][2])
    if not all(live):
        dead = [i for i in range(n) if not live[i]]
        raise InvalidGenotype(f"cells {dead} do not reach the output (their outputs are never used)")

    vit = g.is_vit
    # ---- stem
    stem1_live = False
    if vit:
        stem, ks = "vit", (16 if imagenet else 3)
        stride = ks
        h = (size + 2 * int(ks < 4) - ks) // ks + 1
        stem_sizes = (h,)
        c_stem = C
        outs = [(C, h), (C, h)]  # (channels, size) of the two most recent outputs: s0, s1
    elif g.stem_type == 0:
        stem, ks, stride = "simple", g.ks, (4 if imagenet else 1)
        c_stem = C * (3 if (g.preproc and not imagenet) else 1)
        h = conv_out(size, stride)
        stem_sizes = (h, conv_out(h, 2)) if g.stem_pool else (h,)
        h = stem_sizes[-1]
        outs = [(c_stem, h), (c_stem, h)]
    else:
        stem, ks, stride = "imagenet", g.ks, (2 if imagenet else 1)
        h0 = conv_out(conv_out(size, stride), stride)
        h1 = conv_out(h0, 2)
        stem_sizes = (h0, h1)
        c_stem = C
        stem1_live = structs[0][3] or (n > 1 and structs[1][2])
        if not stem1_live:
            raise InvalidGenotype("the second stem layer is unused (cells 0 and 1 ignore it)")
        outs = [(C, h0), (C, h1)]

    # ---- cells
    cells = []
    c_curr = C
    reduction_prev = stem == "imagenet"
    for i in range(n):
        reduction = red_flags[i]
        if reduction:
            c_curr *= g.C_mult
        live_ops, concat, uses0, uses1 = structs[i]
        (c0, h_in0), (c1, h_in1) = outs
        c_cell = c_curr if g.preproc else c1
        if not uses0:
            pre0 = None
        elif g.preproc:
            pre0 = "reduce" if (reduction_prev and not vit) else "conv"
        else:
            pre0 = "stride" if (reduction_prev and not vit) else "identity"
        pre1 = None if not uses1 else ("conv" if g.preproc else "identity")
        cell = g.reduce if reduction else g.normal
        ops = []
        for j in live_ops:
            name, src = cell[j]
            s = 2 if (reduction and src < 2 and not vit) else 1
            h_src = h_in1 if src < 2 else (conv_out(h_in1, 2) if (reduction and not vit) else h_in1)
            ops.append(OpPlan(j, name, src, j // 2 + 2, s, c_cell, h_src))
        h_out = conv_out(h_in1, 2) if (reduction and not vit) else h_in1
        plan = CellPlan(i, reduction, c_cell, c0, c1, h_in0, h_in1, pre0, pre1, tuple(ops),
                        concat, h_out)
        cells.append(plan)
        outs = [outs[1], (plan.c_out, h_out)]
        reduction_prev = reduction

    c_last, h_last = outs[1]
    feats = c_last if g.glob_avg else c_last * h_last * h_last
    dims = [feats] + [fc_dim] * (g.fc_layers - 1) + [num_classes]
    fc = tuple(zip(dims[:-1], dims[1:]))
    return NetPlan(g, size, C, num_classes, fc_dim, stem, c_stem, ks, stride, stem_sizes,
                   stem1_live, tuple(cells), feats, fc)
