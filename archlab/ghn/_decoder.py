"""Decoders from node states to parameter tensors (GHN-2 conv decoder and its GHN-3 variant).

The conv decoder maps a node state to a tensor of at most ``max_shape = (M0, M1, S, S)``:
``fc: hid -> (4*hid, S, S)``, then two per-position linear layers ``4*hid -> 8*hid -> M0*M1``.
Only what a shape class needs is computed: the fc rows of the requested kernel positions
(top-left for GHN-2, centred for GHN-3) and the output rows of the first ``n_out x n_in``
channels. Kernels larger than ``S`` are tiled (GHN-2) or bilinearly resized (GHN-3).

1-D parameters (norm weights, biases) come from a separate MLP giving ``(2, max_ch)`` per node
(row 0 weights, row 1 biases); classifier weights and biases have their own heads mapping the
``M0`` (resp. ``max_ch``) axis to ``num_classes``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._gnn import mlp


class ConvDecoder(nn.Module):
    def __init__(self, hid: int, max_shape: tuple[int, int, int, int], num_classes: int,
                 centred: bool):
        super().__init__()
        self.max_shape, self.centred = tuple(max_shape), centred
        m0, m1, s, _ = max_shape
        self.fc = nn.Linear(hid, 4 * hid * s * s)
        self.conv = nn.Sequential(nn.Linear(4 * hid, 8 * hid), nn.ReLU(), nn.Linear(8 * hid, m0 * m1))
        self.class_layer_predictor = nn.Sequential(nn.ReLU(), nn.Linear(m0, num_classes))
        self._index_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _window(self, k: int) -> slice:
        s = self.max_shape[2]
        k = min(k, s)
        if not self.centred:
            return slice(0, k)
        off = s // 2
        return slice(max(0, off - k // 2), off + math.ceil(k / 2))

    def _indices(self, n_out: int, n_in: int, kh: int, kw: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (n_out, n_in, kh, kw, str(device))
        if key not in self._index_cache:
            m1, s = self.max_shape[1], self.max_shape[2]
            grid = torch.arange(self.fc.out_features).view(-1, s, s)
            fc_rows = grid[:, self._window(kh), self._window(kw)].reshape(-1)
            ch_rows = (torch.arange(n_out)[:, None] * m1 + torch.arange(n_in)[None, :]).reshape(-1)
            self._index_cache[key] = (fc_rows.to(device), ch_rows.to(device))
        return self._index_cache[key]

    def forward(self, x: torch.Tensor, n_out: int, n_in: int, kh: int, kw: int) -> torch.Tensor:
        """``[n, hid] -> [n, n_out, n_in, kh, kw]`` (``n_out <= M0``, ``n_in <= M1``)."""
        m0, m1, s, _ = self.max_shape
        n = x.shape[0]
        fc_rows, ch_rows = self._indices(n_out, n_in, kh, kw, x.device)
        wh, ww = min(kh, s), min(kw, s)
        h = F.relu(F.linear(x, self.fc.weight[fc_rows], self.fc.bias[fc_rows]))
        h = h.view(n, -1, wh * ww).transpose(1, 2)  # [n, positions, 4*hid]
        h = self.conv[1](self.conv[0](h))
        last = self.conv[2]
        if n_out * n_in == m0 * m1:
            h = last(h)
        else:
            h = F.linear(h, last.weight[ch_rows], last.bias[ch_rows])
        w = h.transpose(1, 2).reshape(n, n_out, n_in, wh, ww)
        if kh > wh or kw > ww:
            if self.centred:
                w = F.interpolate(w.reshape(n, n_out * n_in, wh, ww), size=(kh, kw), mode="bilinear")
                w = w.view(n, n_out, n_in, kh, kw)
            else:
                w = w.repeat(1, 1, 1, math.ceil(kh / wh), math.ceil(kw / ww))[..., :kh, :kw]
        return w

    def classifier(self, x: torch.Tensor, n_in: int) -> torch.Tensor:
        """``[n, hid] -> [n, num_classes, n_in]`` classifier weights."""
        w = self.forward(x, self.max_shape[0], n_in, 1, 1)[..., 0, 0]  # [n, M0, n_in]
        return self.class_layer_predictor(w.transpose(1, 2)).transpose(1, 2)


class Decoder1d(nn.Module):
    """Norm weights / biases (``row 0 / row 1`` of ``[n, 2, max_ch]``) and classifier biases."""

    def __init__(self, hid: int, max_ch: int, num_classes: int):
        super().__init__()
        self.max_ch = max_ch
        self.decoder_1d = mlp((hid, 2 * hid, 2 * max_ch), last_act=False)
        self.bias_class = nn.Sequential(nn.ReLU(), nn.Linear(max_ch, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder_1d(x).view(x.shape[0], 2, self.max_ch)

    def class_bias(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, hid] -> [n, num_classes]`` classifier biases."""
        return self.bias_class(self.forward(x))[:, 1]
