"""The :class:`Genotype`: one DeepNets-1M-style architecture, independent of width.

A genotype holds two DARTS-style cells (``normal`` and ``reduce``) plus the macro choices of the
network (number of cells, stem, head, normalisation). The channel width ``C`` and the width of
the hidden fully connected layers are *build* arguments (see :func:`archlab.space.build_network`).

Cell encoding (as in DARTS / DeepNets-1M): a cell with ``steps`` intermediate nodes has
``2 * steps`` entries ``(op, input)``; entries ``2i`` and ``2i + 1`` feed node ``i + 2``, whose
value is the sum of the two op outputs. States ``0`` and ``1`` are the outputs of the two previous
cells; ``*_concat`` lists the states concatenated (channel-wise) into the cell output.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

#: Cell operations, in the order of the DeepNets-1M generator (the order is part of sampling).
CELL_OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "conv_1x1",
    "conv_7x1_1x7",
    "conv_3x3",
    "conv_5x5",
    "conv_7x7",
    "msa",
    "cse",
)

#: Ops allowed in a pool-only reduction cell (no learnable parameters).
POOL_ONLY_OPS: tuple[str, ...] = CELL_OPS[:4]

NORMS: tuple[str, ...] = ("bn", "none")

Cell = tuple[tuple[str, int], ...]


def _as_cell(entries: Any, name: str) -> Cell:
    cell = tuple((str(op), int(i)) for op, i in entries)
    if not cell or len(cell) % 2:
        raise ValueError(f"{name} must have an even, non-zero number of (op, input) entries; got {len(cell)}")
    for k, (op, i) in enumerate(cell):
        if op not in CELL_OPS:
            raise ValueError(f"unknown op {op!r} in {name}; choose from {', '.join(CELL_OPS)}")
        if not 0 <= i < 2 + k // 2:
            raise ValueError(f"{name}[{k}] = ({op!r}, {i}): input must be in [0, {2 + k // 2})")
    return cell


@dataclass(frozen=True)
class Genotype:
    """A DeepNets-1M architecture (see the module docstring for the cell encoding).

    Attributes:
        normal, reduce: cells as tuples of ``(op, input_state)``.
        normal_concat, reduce_concat: states concatenated into each cell's output.
        n_cells: total number of cells; reduction cells sit at ``n_cells // 3`` and
            ``2 * n_cells // 3``.
        ks: kernel size of the first stem convolution (3, 5 or 7).
        stem_type: 0 = simple stem (one conv + norm [+ max pool]), 1 = DARTS ImageNet-style stem.
        stem_pool: max pool after the simple stem.
        norm: ``"bn"`` (BatchNorm) or ``"none"`` (normalisation-free).
        preproc: 1x1 ReLU-conv-norm layers at each cell input (required if ``steps > 1`` or
            ``C_mult > 1``).
        C_mult: channel multiplier at each reduction cell (1 or 2).
        fc_layers: number of fully connected layers of the classifier (1 or 2).
        glob_avg: global average pooling before the classifier (else flatten, VGG-style).
    """

    normal: Cell
    normal_concat: tuple[int, ...]
    reduce: Cell
    reduce_concat: tuple[int, ...]
    n_cells: int = 8
    ks: int = 3
    stem_type: int = 0
    stem_pool: bool = False
    norm: str = "bn"
    preproc: bool = True
    C_mult: int = 2
    fc_layers: int = 1
    glob_avg: bool = True
    _hash: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        normal = _as_cell(self.normal, "normal")
        reduce = _as_cell(self.reduce, "reduce")
        object.__setattr__(self, "normal", normal)
        object.__setattr__(self, "reduce", reduce)
        for name, cell in (("normal_concat", normal), ("reduce_concat", reduce)):
            concat = tuple(int(i) for i in getattr(self, name))
            n_states = 2 + len(cell) // 2
            if not concat or any(not 0 <= i < n_states for i in concat):
                raise ValueError(f"{name} = {list(concat)} must list states in [0, {n_states})")
            object.__setattr__(self, name, concat)
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}; got {self.norm!r}")
        if self.stem_type not in (0, 1):
            raise ValueError(f"stem_type must be 0 (simple) or 1 (ImageNet-style); got {self.stem_type!r}")
        if self.n_cells < 1 or self.fc_layers < 1 or self.C_mult < 1 or self.ks < 1:
            raise ValueError(f"n_cells, fc_layers, C_mult and ks must be >= 1; got {self}")
        if not self.preproc and (self.steps > 1 or self.C_mult > 1):
            raise ValueError("preproc=False needs steps == 1 and C_mult == 1 (channel counts must match)")
        for name in ("n_cells", "ks", "stem_type", "C_mult", "fc_layers"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("stem_pool", "preproc", "glob_avg"):
            object.__setattr__(self, name, bool(getattr(self, name)))
        digest = hashlib.sha1(self.to_json().encode("ascii")).hexdigest()
        object.__setattr__(self, "_hash", digest)

    @property
    def steps(self) -> int:
        """Number of intermediate (sum) nodes per cell."""
        return len(self.normal) // 2

    @property
    def hash(self) -> str:
        """SHA-1 hex digest of the canonical JSON (:meth:`to_json`); stable across machines."""
        return self._hash

    @property
    def is_vit(self) -> bool:
        """True if any cell uses self-attention (the network then gets a patch stem)."""
        return any(op == "msa" for op, _ in self.normal + self.reduce)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (lists, ints, strings, bools); inverse of :meth:`from_dict`."""
        return {
            "normal": [[op, i] for op, i in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, i] for op, i in self.reduce],
            "reduce_concat": list(self.reduce_concat),
            "n_cells": self.n_cells,
            "ks": self.ks,
            "stem_type": self.stem_type,
            "stem_pool": self.stem_pool,
            "norm": self.norm,
            "preproc": self.preproc,
            "C_mult": self.C_mult,
            "fc_layers": self.fc_layers,
            "glob_avg": self.glob_avg,
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Genotype:
        """Build a genotype from :meth:`to_dict` output; unknown keys are an error."""
        known = set(cls.__dataclass_fields__) - {"_hash"}
        extra = set(d) - known
        if extra:
            raise ValueError(f"unknown genotype keys {sorted(extra)}; expected {sorted(known)}")
        return cls(**d)


#: The ViT-like genotype of the PREDEFINED split (used with C=128, 12 cells).
VIT = Genotype(
    normal=(("none", 0), ("msa", 1)),
    normal_concat=(2,),
    reduce=(("none", 0), ("avg_pool_3x3", 1)),
    reduce_concat=(2,),
    n_cells=12,
    ks=3,
    stem_type=0,
    norm="bn",
    preproc=False,
    C_mult=1,
    fc_layers=1,
    glob_avg=True,
)
