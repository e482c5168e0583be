"""Shortest-path lengths over a graph's data-flow edges (for virtual edges and attention biases)."""

from __future__ import annotations

import numpy as np


def shortest_path_lengths(edge_index: np.ndarray, num_nodes: int, cutoff: int = 50,
                          directed: bool = True) -> np.ndarray:
    """``[N, N]`` int matrix of hop counts ``i -> j`` (0 where unreachable, beyond ``cutoff`` or i == j)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    if num_nodes == 0:
        return np.zeros((0, 0), dtype=np.int64)
    data = np.ones(edge_index.shape[1], dtype=np.float64)
    adj = csr_matrix((data, (edge_index[0], edge_index[1])), shape=(num_nodes, num_nodes))
    dist = shortest_path(adj, method="D", directed=directed, unweighted=True)
    dist[~np.isfinite(dist)] = 0
    dist[dist > cutoff] = 0
    return dist.astype(np.int64)
