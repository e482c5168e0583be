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

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
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
    weight: list[torch.Tensor]  # [E_l, 2, 1]: (1 if a real edge else 0, 1 / hop distance)

    def to(self, device: torch.device) -> LevelSchedule:
        mv = lambda ts: [t.to(device) for t in ts]  # noqa: E731
        return LevelSchedule(mv(self.nodes), mv(self.src), mv(self.pos), mv(self.weight))


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
    out = LevelSchedule([], [], [], [])
    t = torch.from_numpy
    for lv in range(len(counts)):
        a, b = e_bounds[lv], e_bounds[lv + 1]
        d = dist[a:b]
        out.nodes.append(t(np.ascontiguousarray(order[bounds[lv]:bounds[lv + 1]])))
        out.src.append(t(np.ascontiguousarray(src[a:b])))
        out.pos.append(t(pos_in_level[dst[a:b]]))
        w = np.stack([(d == 1), 1.0 / np.maximum(d, 1)], axis=1).astype(np.float32)
        out.weight.append(t(w).view(-1, 2, 1))
    return out


@contextlib.contextmanager
def few_threads(device: torch.device, n: int = 1) -> Iterator[None]:
    """Run many tiny CPU ops with ``n`` intra-op threads (restored afterwards).

    Per-level ops act on a handful of rows; with several OpenMP threads their synchronisation
    costs far more than the work (milliseconds per op on a busy machine).
    """
    prev = torch.get_num_threads()
    if device.type != "cpu" or prev <= n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


class GatedGNN(nn.Module):
    """GHN-2 message passing; ``forward(x [N, C], fw, bw) -> [N, C]``."""

    def __init__(self, hid: int, virtual_edges: bool = True, steps: int = 1):
        super().__init__()
        self.hid, self.ve, self.steps = hid, virtual_edges, steps
        self.mlp = mlp((hid, hid // 2 if virtual_edges else hid, hid), last_act=True)
        self.mlp_ve = mlp((hid, hid // 2, hid), last_act=True) if virtual_edges else None
        self.gru = nn.GRUCell(hid, hid)

    def forward(self, x: torch.Tensor, fw: LevelSchedule, bw: LevelSchedule) -> torch.Tensor:
        # fp32 even under autocast: GRU outputs must match the state tensor's dtype, and the
        # per-level updates are launch-bound, so half precision would gain nothing here
        with few_threads(x.device), torch.autocast(x.device.type, enabled=False):
            return self._propagate(x.float(), fw, bw)

    def _fused_messages(self):
        """Both message MLPs as one: ``hn -> [mlp(hn) | mlp_ve(hn)]`` (block-diagonal 2nd layer)."""
        if not self.ve:
            return lambda hn: self.mlp(hn)
        a, b = self.mlp, self.mlp_ve
        w1, b1 = torch.cat([a[0].weight, b[0].weight]), torch.cat([a[0].bias, b[0].bias])
        w2, b2 = torch.block_diag(a[2].weight, b[2].weight), torch.cat([a[2].bias, b[2].bias])
        return lambda hn: torch.relu(F.linear(torch.relu(F.linear(hn, w1, b1)), w2, b2))

    def _propagate(self, x: torch.Tensor, fw: LevelSchedule, bw: LevelSchedule) -> torch.Tensor:
        h = x.clone()
        c = self.hid
        messages = self._fused_messages()
        # per node [mlp(h) | mlp_ve(h)] of already-updated nodes: read only after being written
        # in the same traversal, since message sources always sit at lower levels
        buf = x.new_zeros(x.shape[0], 2 * c if self.ve else c)
        for _ in range(self.steps):
            for sched in (fw, bw):
                for lv in range(len(sched.nodes)):
                    nodes, src = sched.nodes[lv], sched.src[lv]
                    m = x.new_zeros(len(nodes), c)
                    if len(src):
                        g = buf.index_select(0, src)  # backward: deterministic index_add
                        if self.ve:
                            g = (g.view(-1, 2, c) * sched.weight[lv]).sum(1)
                        else:
                            g = g * sched.weight[lv][:, 0]
                        m = m.index_add(0, sched.pos[lv], g)
                    hn = self.gru(m, h.index_select(0, nodes))
                    h.index_copy_(0, nodes, hn)
                    buf.index_copy_(0, nodes, messages(hn))
        return h


class NodeMLP(nn.Module):
    """Baseline without message passing: the same MLP applied to every node."""

    def __init__(self, hid: int):
        super().__init__()
        self.mlp = mlp((hid, hid, hid), last_act=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
