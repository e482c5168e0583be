"""GHN-2 gated graph network (GRU updates, one forward and one backward traversal) and the MLP
baseline.

GHN-2 updates nodes one at a time in topological order: a node's message is the sum of an MLP
of its predecessors' *already updated* states, plus (virtual edges) a second MLP of every
ancestor within ``ve_cutoff`` hops divided by the hop distance; then ``h = GRU(message, h)``.
The backward traversal does the same over successors in reverse order.

Nodes are processed level by level (a node's level is the length of the longest path reaching
it), all graphs of a batch together. Nodes of one level never feed each other, so this is
exactly the sequential update, with a few array ops per level instead of per node; each
traversal is one autograd node that runs in NumPy on the host, with a hand-written backward pass
(:mod:`._traversal`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._traversal import Traversal, traverse


def mlp(sizes: tuple[int, ...], last_act: bool) -> nn.Sequential:
    """``Linear -> ReLU -> ... -> Linear`` (+ ReLU if ``last_act``), as in GHN-2's MLP."""
    layers: list[nn.Module] = []
    for j in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[j], sizes[j + 1]))
        last = j == len(sizes) - 2
        layers.append(nn.ReLU() if (not last or last_act) else nn.Identity())
    return nn.Sequential(*layers)


def longest_path_levels(edge_index: np.ndarray, num_nodes: int) -> np.ndarray:
    """``[N]`` level of each node: 0 for sources, else 1 + max level of its predecessors.

    ``edge_index`` must be in topological order (``src < dst``), as in :class:`ArchGraph`.
    """
    level = np.zeros(num_nodes, dtype=np.int64)
    if edge_index.size == 0:
        return level
    order = np.argsort(edge_index[1], kind="stable")
    src, dst = edge_index[0][order].tolist(), edge_index[1][order].tolist()
    lv = [0] * num_nodes
    for s, d in zip(src, dst):  # dst ascending and src < dst: lv[s] is final when read
        if lv[s] + 1 > lv[d]:
            lv[d] = lv[s] + 1
    level[:] = lv
    return level


class GatedGNN(nn.Module):
    """GHN-2 message passing; ``forward(x [N, C], fw, bw) -> [N, C]`` with the
    :func:`archlab.ghn._traversal.traversal` schedules of both directions."""

    def __init__(self, hid: int, virtual_edges: bool = True, steps: int = 1):
        super().__init__()
        self.hid, self.ve, self.steps = hid, virtual_edges, steps
        self.mlp = mlp((hid, hid // 2 if virtual_edges else hid, hid), last_act=True)
        self.mlp_ve = mlp((hid, hid // 2, hid), last_act=True) if virtual_edges else None
        self.gru = nn.GRUCell(hid, hid)

    @property
    def parts(self) -> int:
        """Message MLPs per node: 2 with virtual edges (real-edge and virtual-edge MLP), else 1."""
        return 2 if self.ve else 1

    def forward(self, x: torch.Tensor, fw: Traversal, bw: Traversal) -> torch.Tensor:
        # fp32 even under autocast: the traversals run in NumPy on the host
        with torch.autocast(x.device.type, enabled=False):
            params = (*self._fused_messages(), *self._gru_params())
            h = x.float()
            for _ in range(self.steps):
                for trav in (fw, bw):
                    h = traverse(h, params, trav)
            return h

    def _fused_messages(self) -> tuple[torch.Tensor, ...]:
        """Both message MLPs as one, ``hn -> [mlp(hn) | mlp_ve(hn)]``: ``(w1, b1, w2, b2)`` with
        stacked first layers and a block-diagonal second layer."""
        a = self.mlp
        if not self.ve:
            return a[0].weight, a[0].bias, a[2].weight, a[2].bias
        b = self.mlp_ve
        return (torch.cat([a[0].weight, b[0].weight]), torch.cat([a[0].bias, b[0].bias]),
                torch.block_diag(a[2].weight, b[2].weight), torch.cat([a[2].bias, b[2].bias]))

    def _gru_params(self) -> tuple[torch.Tensor, ...]:
        g = self.gru
        return g.weight_ih, g.bias_ih, g.weight_hh, g.bias_hh


class NodeMLP(nn.Module):
    """Baseline without message passing: the same MLP applied to every node."""

    def __init__(self, hid: int):
        super().__init__()
        self.mlp = mlp((hid, hid, hid), last_act=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
