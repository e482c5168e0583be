"""Sampling DeepNets-1M genotypes (the generator of the GHN-2 paper, re-implemented).

Per attempt (one numpy ``Generator``, draws in this order):

1. ``n_cells ~ U{min_cells..max_cells}``; a "deep" threshold ``~ U(deep_cells)``;
   ``steps ~ U{min_steps..max_steps}`` (``..medium_steps`` if ``n_cells`` exceeds the threshold).
2. ``only_pool`` (p=.5): the reduction cell uses only none/pool/skip; ``drop_concat`` (p=.5, if
   ``steps > 1``): each node but the last is concatenated into the output with p=.5.
3. Each cell: node ``i`` picks 2 distinct inputs among the ``i + 2`` earlier states and an op per
   input, uniformly among the allowed ops (``none`` only if ``steps > 1``). Both cells share the
   concat list.
4. Stem kernel ``ks ~ U{3,5,7}``. Rejection (start over): a cell with > 1 ``cse`` or > 1 dense
   5x5/7x7 conv; ``cse`` without any conv op; no learnable op (no conv, msa or cse).
5. ``C_mult ~ U{1,2}``; ``preproc`` (1x1 input convs) unless ``steps == 1 and C_mult == 1`` where
   it is kept for non-attention nets and with p=.2 for attention nets (search split: p=.8 / .2);
   ``glob_avg`` always for attention nets and nets above the deep threshold, else p=.9;
   norm: ``none`` for BN-free splits, else BN, except that shallow nets
   (``n_cells <= min_cells + 1`` and ``steps <= medium_steps``) are BN-free with p=.5;
   ``stem_type ~ U{0,1}``, ``stem_pool`` p=.5 for the simple stem; ``fc_layers ~ U{1,2}``.
6. Rejection: networks with an unused or missing cell output (disconnected graph) and networks
   with more than ``max_params`` parameters at C=32, fc 256, on CIFAR or ImageNet input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._genotype import CELL_OPS, POOL_ONLY_OPS, Genotype
from ._plan import InvalidGenotype, plan_network
from ._stats import plan_stats


@dataclass(frozen=True)
class SamplerSpec:
    """Ranges of the genotype sampler for one split."""

    min_steps: int = 1
    medium_steps: int = 2
    max_steps: int = 4
    min_cells: int = 4
    deep_cells: tuple[int, ...] = (7, 8, 9, 10)
    max_cells: int = 18
    max_params: int = 10**7
    norm: str = "random"  # "random" (BN-free allowed for shallow nets) | "bn" | "none"
    search_preproc: bool = False


SAMPLERS: dict[str, SamplerSpec] = {
    "train": SamplerSpec(),
    "val": SamplerSpec(),
    "test": SamplerSpec(),
    "wide": SamplerSpec(),
    "bnfree": SamplerSpec(norm="none"),
    "deep": SamplerSpec(min_cells=10, deep_cells=(18,), max_cells=36, max_params=10**8),
    "dense": SamplerSpec(min_steps=2, medium_steps=6, max_steps=10, max_params=10**8),
    "search": SamplerSpec(medium_steps=3, max_steps=6, min_cells=6, deep_cells=(10,),
                          max_cells=20, norm="bn", search_preproc=True),
}

_LARGE_CONVS = ("conv_5x5", "conv_7x7")


def _sample_cell(rng: np.random.Generator, steps: int, ops: tuple[str, ...]):
    cell = []
    for i in range(steps):
        inputs = rng.choice(i + 2, size=2, replace=False)
        for src in inputs:
            cell.append((ops[int(rng.integers(len(ops)))], int(src)))
    return tuple(cell)


def _rejected_by_rules(normal, reduce) -> bool:
    both = normal + reduce
    has_cse = any(op == "cse" for op, _ in both)
    has_conv = any("conv" in op for op, _ in both)
    has_msa = any(op == "msa" for op, _ in both)
    for cell in (normal, reduce):
        if sum(op == "cse" for op, _ in cell) > 1 or sum(op in _LARGE_CONVS for op, _ in cell) > 1:
            return True
    if has_cse and not has_conv:
        return True
    return not (has_cse or has_msa or has_conv)


def _attempt(rng: np.random.Generator, spec: SamplerSpec) -> Genotype | None:
    n_cells = int(rng.integers(spec.min_cells, spec.max_cells + 1))
    deep = spec.deep_cells[int(rng.integers(len(spec.deep_cells)))]
    top = spec.max_steps if n_cells <= deep else spec.medium_steps
    steps = int(rng.integers(spec.min_steps, top + 1))
    only_pool = bool(rng.random() > 0.5)
    drop_concat = bool(rng.random() > 0.5) if steps > 1 else False
    allowed = CELL_OPS if steps > 1 else CELL_OPS[1:]
    pool_ops = POOL_ONLY_OPS if steps > 1 else POOL_ONLY_OPS[1:]
    normal = _sample_cell(rng, steps, allowed)
    reduce = _sample_cell(rng, steps, pool_ops if only_pool else allowed)
    if drop_concat:
        concat = tuple(i for i in range(2, steps + 2) if i == steps + 1 or rng.random() > 0.5)
    else:
        concat = tuple(range(2, steps + 2))
    ks = (3, 5, 7)[int(rng.integers(3))]
    if _rejected_by_rules(normal, reduce):
        return None
    is_vit = any(op == "msa" for op, _ in normal + reduce)
    C_mult = 1 + int(rng.integers(2))
    if steps > 1 or C_mult > 1:
        preproc = True
    elif spec.search_preproc:
        preproc = bool(rng.random() > (0.8 if is_vit else 0.2))
    else:
        preproc = bool(not is_vit or rng.random() > 0.8)
    glob_avg = bool(is_vit or n_cells > deep or rng.random() > 0.1)
    if spec.norm == "random":
        shallow = n_cells <= spec.min_cells + 1 and steps <= spec.medium_steps
        norm = ("bn", "none")[int(rng.integers(2))] if shallow else "bn"
    else:
        norm = spec.norm
    stem_type = int(rng.integers(2))
    stem_pool = bool(stem_type == 0 and rng.random() > 0.5)
    fc_layers = int(rng.integers(1, 3))
    return Genotype(normal=normal, normal_concat=concat, reduce=reduce, reduce_concat=concat,
                    n_cells=n_cells, ks=ks, stem_type=stem_type, stem_pool=stem_pool, norm=norm,
                    preproc=preproc, C_mult=C_mult, fc_layers=fc_layers, glob_avg=glob_avg)


def sample_with_stats(rng: np.random.Generator, spec: SamplerSpec,
                      exclude: frozenset[str] | set[str] = frozenset()) -> tuple[Genotype, dict]:
    """Sample until a genotype passes every rule; return it with its CIFAR stats (C=32, fc 256)."""
    while True:
        g = _attempt(rng, spec)
        if g is None or g.hash in exclude:
            continue
        try:
            stats = plan_stats(plan_network(g, input="cifar"))
            if stats["params"] > spec.max_params:
                continue
            big = plan_stats(plan_network(g, input="imagenet"))["params"]
        except InvalidGenotype:
            continue
        if big > spec.max_params:
            continue
        stats["params_imagenet"] = big
        stats["n_cells"] = g.n_cells
        return g, stats


def sample_genotype(rng: np.random.Generator, split: str = "train") -> Genotype:
    """Sample one valid genotype of ``split``'s distribution from ``rng`` (a numpy Generator)."""
    if split not in SAMPLERS:
        raise ValueError(f"split {split!r} has no genotype sampler; choose from {', '.join(SAMPLERS)}")
    return sample_with_stats(rng, SAMPLERS[split])[0]
