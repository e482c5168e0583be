"""Initial node states: op-type embedding + parameter-shape embedding (as in GHN-2).

The shape of every node (``Node.shape``: a parameter's shape, a pool's ``(1, 1, kh, kw)``, or
``()``) is mapped to four indices (out channels, in channels, kernel h, kernel w) into two small
embedding tables; the four ``hid // 4`` vectors are concatenated and added to the op embedding.
Shapes never seen in training map to the closest known value.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from archlab.graph._vocab import OP_TYPES


def shape_to_4d(shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """Canonical ``(out, in, h, w)`` view of a tensor shape (GHN-2 convention); None for ``()``."""
    sz = tuple(int(s) for s in shape)
    if len(sz) == 0:
        return None
    if len(sz) == 1:
        return (sz[0], 1, 1, 1)
    if len(sz) == 2:
        return (sz[0], sz[1], 1, 1)
    if len(sz) == 3:
        if sz[0] == 1 and min(sz[1:]) > 1:  # e.g. positional encoding [1, 197, 768]
            s = int(np.floor(sz[1] ** 0.5))
            return (1, sz[2], s, s)
        return (sz[0], sz[1], sz[2], 1)
    if len(sz) == 4:
        return sz  # type: ignore[return-value]
    return (sz[0], sz[1], int(np.prod(sz[2:-1])), sz[-1])


def _nearest_lookup(values: np.ndarray, upto: int) -> np.ndarray:
    """Table ``t[v]`` = index of the closest entry of ``values`` (first on ties) for v in [0, upto]."""
    v = np.arange(upto + 1)
    return np.abs(v[:, None] - values[None, :]).argmin(axis=1)


class ShapeEncoder(nn.Module):
    """Embeds node shapes; ``forward(shape_idx [N, 4]) -> [N, hid]``."""

    def __init__(self, hid: int, num_classes: int, max_shape: tuple[int, int, int, int]):
        super().__init__()
        channels = np.unique(
            [1, 3, num_classes] + list(range(8, 64, 8)) + list(range(64, 4096, 16))
            + list(range(4096, 8193, 32))
        )
        spatial = np.unique(list(range(1, max(12, max_shape[3]), 2)) + [14, 16])
        ch_table = _nearest_lookup(channels, int(channels[-1]))
        ch_table[4:8] = int(np.searchsorted(channels, 8))  # 4-7 channels are treated as 8
        sp_table = _nearest_lookup(spatial, int(spatial[-1]))
        sp_table[2] = int(np.searchsorted(spatial, 3))  # 2x2 is treated as 3x3
        ch_table[0], sp_table[0] = len(channels) - 1, len(spatial) - 1
        self._ch_table, self._sp_table = ch_table, sp_table
        self._n_ch, self._n_sp = len(channels), len(spatial)
        self.embed_channel = nn.Embedding(len(channels) + 1, hid // 4)
        self.embed_spatial = nn.Embedding(len(spatial) + 1, hid // 4)

    def shape_indices(self, shapes: list[tuple[int, ...]]) -> np.ndarray:
        """``[N, 4]`` int64 embedding indices of ``shapes`` (the last row index means 'no shape')."""
        out = np.empty((len(shapes), 4), dtype=np.int64)
        out[:, :2], out[:, 2:] = self._n_ch, self._n_sp
        for i, shape in enumerate(shapes):
            sz = shape_to_4d(shape)
            if sz is None:
                continue
            for j in range(4):
                table = self._ch_table if j < 2 else self._sp_table
                out[i, j] = table[sz[j]] if sz[j] < len(table) else table[-1]
        return out

    def forward(self, shape_idx: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            (self.embed_channel(shape_idx[:, 0]), self.embed_channel(shape_idx[:, 1]),
             self.embed_spatial(shape_idx[:, 2]), self.embed_spatial(shape_idx[:, 3])), dim=1)


class NodeEncoder(nn.Module):
    """``embed(op type) + shape embedding`` for every node."""

    def __init__(self, hid: int, num_classes: int, max_shape: tuple[int, int, int, int]):
        super().__init__()
        self.embed = nn.Embedding(len(OP_TYPES), hid)
        self.shape_enc = ShapeEncoder(hid, num_classes, max_shape)

    def forward(self, node_type: torch.Tensor, shape_idx: torch.Tensor) -> torch.Tensor:
        return self.embed(node_type) + self.shape_enc(shape_idx)
