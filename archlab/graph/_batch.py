"""Batching many :class:`ArchGraph` s into tensors, and undoing it.

Two layouts, both pure functions of the graphs (no device moves, no dtype changes beyond int64):

- :func:`collate` -> :class:`PackedGraphs` for message-passing GHNs: nodes of all graphs stacked,
  ``edge_index [2, E]`` offset by each graph's first node, ``batch [N]`` graph id per node and
  ``ptr [B+1]`` node offsets (graph ``b`` is ``ptr[b]:ptr[b+1]``). Optional virtual edges
  (shortest-path pairs up to a cutoff) with their distances.
- :func:`to_dense` -> :class:`DenseGraphs` for transformer GHNs: node types padded to
  ``[B, Nmax]`` with ``mask``, shortest-path distances ``[B, Nmax, Nmax]`` in both directions,
  and in/out degrees.

:func:`uncollate` returns the original graphs from either layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._paths import shortest_path_lengths
from ._types import ArchGraph


@dataclass
class PackedGraphs:
    """Graphs packed into one disconnected graph (see module docstring)."""

    node_type: torch.Tensor  # [N] int64
    edge_index: torch.Tensor  # [2, E] int64
    batch: torch.Tensor  # [N] int64
    ptr: torch.Tensor  # [B+1] int64
    graphs: list[ArchGraph]
    ve_index: torch.Tensor | None = None  # [2, E'] int64, virtual edges incl. real ones
    ve_dist: torch.Tensor | None = None  # [E'] int64 hop distance

    @property
    def num_graphs(self) -> int:
        return len(self.graphs)

    def to(self, device: torch.device | str) -> PackedGraphs:
        """Return a copy with all tensors on ``device``."""
        mv = lambda t: None if t is None else t.to(device)  # noqa: E731
        return PackedGraphs(mv(self.node_type), mv(self.edge_index), mv(self.batch), mv(self.ptr),
                            self.graphs, mv(self.ve_index), mv(self.ve_dist))


@dataclass
class DenseGraphs:
    """Graphs padded to a common node count (see module docstring)."""

    node_type: torch.Tensor  # [B, Nmax] int64, padding = -1
    mask: torch.Tensor  # [B, Nmax] bool, True for real nodes
    dist_fwd: torch.Tensor  # [B, Nmax, Nmax] int64, hops i->j along edges (0 = none/self)
    dist_bwd: torch.Tensor  # [B, Nmax, Nmax] int64, hops j->i (transpose of dist_fwd)
    in_degree: torch.Tensor  # [B, Nmax] int64
    out_degree: torch.Tensor  # [B, Nmax] int64
    graphs: list[ArchGraph]

    @property
    def num_graphs(self) -> int:
        return len(self.graphs)

    def to(self, device: torch.device | str) -> DenseGraphs:
        return DenseGraphs(self.node_type.to(device), self.mask.to(device), self.dist_fwd.to(device),
                           self.dist_bwd.to(device), self.in_degree.to(device),
                           self.out_degree.to(device), self.graphs)


def collate(graphs: list[ArchGraph], virtual_cutoff: int | None = None) -> PackedGraphs:
    """Pack ``graphs``; with ``virtual_cutoff`` also attach virtual edges up to that many hops."""
    if not graphs:
        raise ValueError("collate needs at least one graph")
    sizes = np.array([g.num_nodes for g in graphs], dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum(sizes)])
    node_type = np.concatenate([g.node_type for g in graphs])
    edge_index = np.concatenate([g.edge_index + off for g, off in zip(graphs, ptr[:-1])], axis=1)
    batch = np.repeat(np.arange(len(graphs), dtype=np.int64), sizes)
    ve_index = ve_dist = None
    if virtual_cutoff is not None:
        parts = [g.virtual_edges(virtual_cutoff) for g in graphs]
        ve_index = torch.from_numpy(np.concatenate([ei + off for (ei, _), off in zip(parts, ptr[:-1])], axis=1))
        ve_dist = torch.from_numpy(np.concatenate([d for _, d in parts]))
    return PackedGraphs(
        node_type=torch.from_numpy(node_type),
        edge_index=torch.from_numpy(edge_index.reshape(2, -1)),
        batch=torch.from_numpy(batch),
        ptr=torch.from_numpy(ptr),
        graphs=list(graphs),
        ve_index=ve_index,
        ve_dist=ve_dist,
    )


def to_dense(graphs: list[ArchGraph], max_dist: int = 50) -> DenseGraphs:
    """Pad ``graphs`` to a common size with distance matrices clipped at ``max_dist`` hops."""
    if not graphs:
        raise ValueError("to_dense needs at least one graph")
    parts = [
        (g.node_type, shortest_path_lengths(g.edge_index, g.num_nodes, cutoff=max_dist),
         np.bincount(g.edge_index[1], minlength=g.num_nodes),
         np.bincount(g.edge_index[0], minlength=g.num_nodes))
        for g in graphs
    ]
    return pad_dense(parts, graphs=list(graphs))


def pad_dense(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
              graphs: list[ArchGraph], device: torch.device | str = "cpu") -> DenseGraphs:
    """The :class:`DenseGraphs` layout from per-graph ``(node_type [n], dist [n, n], in_degree [n],
    out_degree [n])`` arrays (callers that cache distances pass them here); tensors on ``device``."""
    if not parts:
        raise ValueError("pad_dense needs at least one graph")
    b, nmax = len(parts), max(len(p[0]) for p in parts)
    node_type = np.full((b, nmax), -1, dtype=np.int64)
    dist = np.zeros((b, nmax, nmax), dtype=np.int64)
    in_deg = np.zeros((b, nmax), dtype=np.int64)
    out_deg = np.zeros((b, nmax), dtype=np.int64)
    for i, (nt, d, din, dout) in enumerate(parts):
        n = len(nt)
        node_type[i, :n], dist[i, :n, :n], in_deg[i, :n], out_deg[i, :n] = nt, d, din, dout
    d = torch.from_numpy(dist).to(device)
    return DenseGraphs(
        node_type=torch.from_numpy(node_type).to(device),
        mask=torch.from_numpy(node_type >= 0).to(device),
        dist_fwd=d,
        dist_bwd=d.transpose(1, 2).contiguous(),
        in_degree=torch.from_numpy(in_deg).to(device),
        out_degree=torch.from_numpy(out_deg).to(device),
        graphs=list(graphs),
    )


def uncollate(batch: PackedGraphs | DenseGraphs) -> list[ArchGraph]:
    """Recover the individual graphs from a packed or dense batch (checked against its tensors)."""
    if isinstance(batch, PackedGraphs):
        ptr = batch.ptr.cpu().numpy()
        nt = batch.node_type.cpu().numpy()
        ei = batch.edge_index.cpu().numpy()
        out = []
        for b, g in enumerate(batch.graphs):
            lo, hi = ptr[b], ptr[b + 1]
            sel = (ei[0] >= lo) & (ei[0] < hi)
            if not np.array_equal(nt[lo:hi], g.node_type) or not np.array_equal(ei[:, sel] - lo, g.edge_index):
                raise ValueError(f"packed batch disagrees with graph {b}: tensors were modified")
            out.append(g)
        return out
    nt = batch.node_type.cpu().numpy()
    for b, g in enumerate(batch.graphs):
        if not np.array_equal(nt[b, : g.num_nodes], g.node_type) or (nt[b, g.num_nodes:] != -1).any():
            raise ValueError(f"dense batch disagrees with graph {b}: tensors were modified")
    return list(batch.graphs)
