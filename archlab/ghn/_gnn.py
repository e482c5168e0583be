"""GHN-2 gated graph network (GRU updates, one forward and one backward traversal) and the MLP
baseline.

GHN-2 updates nodes one at a time in topological order: a node's message is the sum of an MLP
of its predecessors' *already updated* states, plus (virtual edges) a second MLP of every
ancestor within ``ve_cutoff`` hops divided by the hop distance; then ``h = GRU(message, h)``.
The backward traversal does the same over successors in reverse order.

Nodes are processed level by level (a node's level is the length of the longest path reaching
it), all graphs of a batch together. Nodes of one level never feed each other, so this is
exactly the sequential update, with a few tensor ops per level instead of per node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


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


@dataclass
class LevelSchedule:
    """Per-level index tensors for one traversal direction over a packed batch."""

    nodes: list[torch.Tensor]  # nodes updated at each level
    src: list[torch.Tensor]  # message sources of the edges entering that level
    pos: list[torch.Tensor]  # position of each edge's target within ``nodes[level]``
    inv_dist: list[torch.Tensor]  # [E_l, 1] 1/hop distance (virtual edges)
    hop1: list[torch.Tensor]  # indices (into the level's edges) of 1-hop edges

    def to(self, device: torch.device) -> LevelSchedule:
        mv = lambda ts: [t.to(device) for t in ts]  # noqa: E731
        return LevelSchedule(mv(self.nodes), mv(self.src), mv(self.pos), mv(self.inv_dist), mv(self.hop1))


def level_schedule(level: np.ndarray, src: np.ndarray, dst: np.ndarray, dist: np.ndarray) -> LevelSchedule:
    """Group nodes by ``level`` and edges ``src -> dst`` by their target's level."""
    n = len(level)
    order = np.argsort(level, kind="stable")
    counts = np.bincount(level, minlength=int(level.max()) + 1 if n else 0)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    pos_in_level = np.empty(n, dtype=np.int64)
    pos_in_level[order] = np.arange(n) - np.repeat(bounds[:-1], counts)
    e_level = level[dst]
    e_order = np.argsort(e_level, kind="stable")
    e_counts = np.bincount(e_level, minlength=len(counts))
    e_bounds = np.concatenate([[0], np.cumsum(e_counts)])
    src, dst, dist = src[e_order], dst[e_order], dist[e_order]
    out = LevelSchedule([], [], [], [], [])
    t = torch.from_numpy
    for lv in range(len(counts)):
        a, b = e_bounds[lv], e_bounds[lv + 1]
        d = dist[a:b]
        out.nodes.append(t(np.ascontiguousarray(order[bounds[lv]:bounds[lv + 1]])))
        out.src.append(t(np.ascontiguousarray(src[a:b])))
        out.pos.append(t(pos_in_level[dst[a:b]]))
        out.inv_dist.append(t((1.0 / np.maximum(d, 1)).astype(np.float32)).view(-1, 1))
        out.hop1.append(t(np.nonzero(d == 1)[0]))
    return out


class GatedGNN(nn.Module):
    """GHN-2 message passing; ``forward(x [N, C], fw, bw) -> [N, C]``."""

    def __init__(self, hid: int, virtual_edges: bool = True, steps: int = 1):
        super().__init__()
        self.hid, self.ve, self.steps = hid, virtual_edges, steps
        self.mlp = mlp((hid, hid // 2 if virtual_edges else hid, hid), last_act=True)
        self.mlp_ve = mlp((hid, hid // 2, hid), last_act=True) if virtual_edges else None
        self.gru = nn.GRUCell(hid, hid)

    def forward(self, x: torch.Tensor, fw: LevelSchedule, bw: LevelSchedule) -> torch.Tensor:
        h = x.clone()
        # messages of already-updated nodes; read only after being written in the same traversal
        msg = x.new_zeros(x.shape)
        msg_ve = x.new_zeros(x.shape) if self.ve else None
        for _ in range(self.steps):
            for sched in (fw, bw):
                for lv in range(len(sched.nodes)):
                    nodes, src, pos = sched.nodes[lv], sched.src[lv], sched.pos[lv]
                    m = x.new_zeros(len(nodes), self.hid)
                    if len(src):
                        hop1 = sched.hop1[lv]
                        m = m.index_add(0, pos[hop1], msg[src[hop1]])
                        if self.ve:
                            m = m.index_add(0, pos, msg_ve[src] * sched.inv_dist[lv])
                    hn = self.gru(m, h[nodes])
                    h.index_copy_(0, nodes, hn)
                    msg.index_copy_(0, nodes, self.mlp(hn))
                    if self.ve:
                        msg_ve.index_copy_(0, nodes, self.mlp_ve(hn))
        return h


class NodeMLP(nn.Module):
    """Baseline without message passing: the same MLP applied to every node."""

    def __init__(self, hid: int):
        super().__init__()
        self.mlp = mlp((hid, hid, hid), last_act=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
