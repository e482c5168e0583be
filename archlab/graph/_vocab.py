"""The operation vocabulary shared with published GHN-2/GHN-3 checkpoints.

The order is part of the contract: node-type embedding tables of published checkpoints are
indexed by position in :data:`OP_TYPES`. Never reorder; append only (and only with a new
checkpoint format version).
"""

from __future__ import annotations

OP_TYPES: tuple[str, ...] = (
    "max_pool",
    "avg_pool",
    "sep_conv",
    "dil_conv",
    "conv",
    "msa",
    "cse",
    "sum",
    "concat",
    "input",
    "bias",
    "bn",
    "ln",
    "pos_enc",
    "glob_avg",
)

OP_INDEX: dict[str, int] = {name: i for i, name in enumerate(OP_TYPES)}


def op_index(name: str) -> int:
    """Return the vocabulary index of ``name``; raise a ValueError naming the choices."""
    try:
        return OP_INDEX[name]
    except KeyError:
        raise ValueError(
            f"could not resolve op type {name!r} among choices {sorted(OP_TYPES)}"
        ) from None
