"""Draw an :class:`ArchGraph` with matplotlib (layered layout; no graphviz needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from archlab.plots._figure import pyplot, save_figure

from ._types import ArchGraph
from ._vocab import OP_TYPES


def layer_positions(graph: ArchGraph) -> np.ndarray:
    """``[N, 2]`` positions: y = longest-path depth from the inputs, x spread within a layer."""
    depth = np.zeros(graph.num_nodes, dtype=np.int64)
    for s, d in graph.edge_index.T:  # edges are sorted by source, sources precede targets
        depth[d] = max(depth[d], depth[s] + 1)
    pos = np.zeros((graph.num_nodes, 2))
    for level in np.unique(depth):
        members = np.nonzero(depth == level)[0]
        pos[members, 0] = np.arange(len(members)) - (len(members) - 1) / 2
        pos[members, 1] = -level
    return pos


def _label(node) -> str:
    """Short label: the owning module's last name (``downsample.0`` for numbered ones)."""
    if not node.module:
        return node.op
    parts = node.module.split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]


def plot_graph(graph: ArchGraph, path: str | Path, title: str | None = None, labels: bool | None = None) -> Path:
    """Save a drawing of ``graph`` to ``path`` (PNG/PDF/SVG by extension); returns the path."""
    plt = pyplot()
    pos = layer_positions(graph)
    depth = int(-pos[:, 1].min()) + 1
    width = int(np.abs(pos[:, 0]).max() * 2) + 1
    fig, ax = plt.subplots(figsize=(min(4 + width * 1.2, 30), min(3 + depth * 0.28, 60)))
    cmap = plt.get_cmap("tab20")
    colors = {op: cmap(i % 20) for i, op in enumerate(OP_TYPES)}
    for s, d in graph.edge_index.T:
        ax.annotate("", xy=pos[d], xytext=pos[s],
                    arrowprops={"arrowstyle": "-|>", "lw": 0.6, "color": "0.4", "shrinkA": 4, "shrinkB": 4})
    ops = [n.op for n in graph.nodes]
    for op in dict.fromkeys(ops):
        idx = [i for i, o in enumerate(ops) if o == op]
        ax.scatter(pos[idx, 0], pos[idx, 1], s=60, color=colors[op], edgecolors="k", linewidths=0.5,
                   label=f"{op} ({len(idx)})", zorder=3)
    if labels if labels is not None else graph.num_nodes <= 60:
        for i, n in enumerate(graph.nodes):
            ax.text(pos[i, 0] + 0.08, pos[i, 1], _label(n), fontsize=6, va="center")
    ax.set_title(title or f"{graph.meta.get('model', 'model')}: {graph.num_nodes} nodes, "
                 f"{graph.num_edges} edges, {graph.num_params:,} params")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title="node type")
    ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
