"""A define-by-run Optuna space over DeepNets-1M genotypes: :func:`suggest_genotype`.

Every parameter name always has the same choice set (so TPE, CMA-ES and NSGA-II can model it),
and every sampled genotype is valid, with no retry loop:

By construction

- both cells have ``steps`` nodes; node ``i`` takes one categorical ``{cell}_n{i}_inputs`` over
  the fixed pairs of distinct earlier states (``"a-b"``, ``a < b``), op ``op0`` on ``a`` and
  ``op1`` on ``b``; node 0 always reads states 0 and 1;
- node 0 (state 2) is always concatenated and its op on state 1 is never ``none``: every cell
  then has an output and uses the previous cell's output, so no cell (and no stem layer) is
  disconnected (:func:`archlab.space.plan_network` accepts every genotype);
- the last node is always concatenated, middle nodes on ``concat_n{i}`` (shared by both cells);
- a pool-only reduction cell (``reduce_pool_only``) draws from ``reduce_pool_*`` parameters whose
  choices are none/pools/skip only;
- ``preproc`` is asked only when ``steps == 1 and C_mult == 1`` (else it is required: True);
  ``glob_avg`` is asked only for nets without self-attention (attention nets: True);
  ``stem_pool`` only for the simple stem.

Deterministic repair (recorded in the trial's ``repairs`` user attribute), in this order:

1. a second or later ``cse`` in a cell becomes ``skip_connect``;
2. a second or later dense 5x5/7x7 conv in a cell becomes ``conv_3x3``;
3. ``cse`` with no conv op in either cell: the first ``cse`` becomes ``conv_1x1``;
4. no learnable op at all (conv, msa, cse): normal node 0's op on state 1 becomes ``conv_3x3``.

Unlike the DeepNets-1M generator, ``none`` is allowed on node 0's state-0 input when
``steps == 1`` (the cell then ignores the cell two back, a valid plain chain).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from archlab.space import CELL_OPS, Genotype
from archlab.space._genotype import POOL_ONLY_OPS

STEPS = (1, 2, 3, 4)
N_CELLS = (4, 18)
WIDTHS = (16, 24, 32)
LARGE_CONVS = ("conv_5x5", "conv_7x7")


def input_pairs(node: int) -> tuple[str, ...]:
    """The fixed choices of node ``node``'s inputs: pairs ``"a-b"`` of distinct earlier states."""
    return tuple(f"{a}-{b}" for a, b in combinations(range(node + 2), 2))


def _suggest_cell(trial: Any, prefix: str, steps: int, ops: tuple[str, ...]) -> list[tuple[str, int]]:
    cell: list[tuple[str, int]] = []
    for i in range(steps):
        pair = input_pairs(i)
        a, b = (int(s) for s in (trial.suggest_categorical(f"{prefix}_n{i}_inputs", pair)
                                 if len(pair) > 1 else pair[0]).split("-"))
        op0 = trial.suggest_categorical(f"{prefix}_n{i}_op0", ops)
        # node 0's op on state 1 is never "none": the cell keeps an output and uses its input
        op1 = trial.suggest_categorical(f"{prefix}_n{i}_op1", ops[1:] if i == 0 else ops)
        cell += [(op0, a), (op1, b)]
    return cell


def _repair(normal: list, reduce: list) -> list[str]:
    """Apply the documented repairs in place; returns what was changed."""
    notes: list[str] = []
    for name, cell in (("normal", normal), ("reduce", reduce)):
        for kinds, repl in (({"cse"}, "skip_connect"), (set(LARGE_CONVS), "conv_3x3")):
            seen = False
            for k, (op, src) in enumerate(cell):
                if op in kinds:
                    if seen:
                        cell[k] = (repl, src)
                        notes.append(f"{name}[{k}]: second {op} -> {repl}")
                    seen = True
    both = [(name, k, cell) for name, cell in (("normal", normal), ("reduce", reduce))
            for k in range(len(cell))]
    has_conv = any("conv" in c[k][0] for _, k, c in both)
    if not has_conv:
        for name, k, cell in both:
            if cell[k][0] == "cse":
                cell[k] = ("conv_1x1", cell[k][1])
                notes.append(f"{name}[{k}]: cse without any conv -> conv_1x1")
                break
    learnable = any("conv" in c[k][0] or c[k][0] in ("msa", "cse") for _, k, c in both)
    if not learnable:
        normal[1] = ("conv_3x3", normal[1][1])
        notes.append("normal[1]: no learnable op -> conv_3x3")
    return notes


def suggest_genotype(trial: Any) -> tuple[Genotype, int, list[str]]:
    """Ask ``trial`` (an Optuna trial, or ``FixedTrial``) for a genotype and its width ``C``.

    Returns ``(genotype, C, repairs)``; the genotype is valid (see the module docstring).
    """
    steps = trial.suggest_categorical("steps", STEPS)
    middle = [trial.suggest_categorical(f"concat_n{i}", (True, False)) for i in range(1, steps - 1)]
    concat = tuple([2] + [i + 2 for i, keep in enumerate(middle, 1) if keep]
                   + ([steps + 1] if steps > 1 else []))
    normal = _suggest_cell(trial, "normal", steps, CELL_OPS)
    if trial.suggest_categorical("reduce_pool_only", (True, False)):
        reduce = _suggest_cell(trial, "reduce_pool", steps, POOL_ONLY_OPS)
    else:
        reduce = _suggest_cell(trial, "reduce", steps, CELL_OPS)
    repairs = _repair(normal, reduce)
    is_vit = any(op == "msa" for op, _ in normal + reduce)
    n_cells = trial.suggest_int("n_cells", *N_CELLS)
    ks = trial.suggest_categorical("ks", (3, 5, 7))
    stem_type = trial.suggest_categorical("stem_type", (0, 1))
    stem_pool = trial.suggest_categorical("stem_pool", (True, False)) if stem_type == 0 else False
    norm = trial.suggest_categorical("norm", ("bn", "none"))
    C_mult = trial.suggest_categorical("C_mult", (1, 2))
    preproc = trial.suggest_categorical("preproc", (True, False)) if steps == 1 and C_mult == 1 else True
    fc_layers = trial.suggest_categorical("fc_layers", (1, 2))
    glob_avg = True if is_vit else trial.suggest_categorical("glob_avg", (True, False))
    width = trial.suggest_categorical("C", WIDTHS)
    g = Genotype(normal=tuple(normal), normal_concat=concat, reduce=tuple(reduce), reduce_concat=concat,
                 n_cells=n_cells, ks=ks, stem_type=stem_type, stem_pool=stem_pool, norm=norm,
                 preproc=preproc, C_mult=C_mult, fc_layers=fc_layers, glob_avg=glob_avg)
    return g, int(width), repairs


def rule_violations(g: Genotype) -> list[str]:
    """The DeepNets-1M rules ``g`` breaks (empty: valid); the network must also plan."""
    out = []
    both = g.normal + g.reduce
    for name, cell in (("normal", g.normal), ("reduce", g.reduce)):
        if sum(op == "cse" for op, _ in cell) > 1:
            out.append(f"{name}: more than one cse")
        if sum(op in LARGE_CONVS for op, _ in cell) > 1:
            out.append(f"{name}: more than one dense 5x5/7x7 conv")
    has_conv = any("conv" in op for op, _ in both)
    if any(op == "cse" for op, _ in both) and not has_conv:
        out.append("cse without a conv")
    if not any("conv" in op or op in ("msa", "cse") for op, _ in both):
        out.append("no learnable op")
    if not g.preproc and (g.steps > 1 or g.C_mult > 1):
        out.append("preproc missing")
    if g.is_vit and not g.glob_avg:
        out.append("attention net without glob_avg")
    return out
