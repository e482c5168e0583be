"""The :class:`ArchGraph` data type: an architecture's operation graph.

Layout (all arrays are numpy, CPU, int64 unless stated):

- ``nodes``: list of :class:`Node` in topological order; node 0 is the ``input`` node.
- ``edge_index`` ``[2, E]``: data-flow edges ``src -> dst`` (``src < dst`` in topological order).
- ``node_type`` ``[N]``: index of each node's op in :data:`archlab.graph.OP_TYPES`.

A node that *owns* parameters lists their qualified names (``model.named_parameters()``) in
``Node.params``; every trainable parameter is owned by exactly one node. A parameter used at
several places (weight sharing) appears as a node at each use (``Node.uses``) and is owned by
the first use in topological order.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from archlab.errors import ArchlabError

from ._vocab import OP_INDEX, OP_TYPES


class GraphError(ArchlabError, ValueError):
    """An architecture graph could not be built or is malformed."""


@dataclass(frozen=True)
class Node:
    """One operation of the graph.

    Attributes:
        op: op type, one of :data:`OP_TYPES`.
        name: the parameter this node stands for (``"layer1.0.conv1.weight"``) or, for
            parameter-free ops, the op label (``"max_pool"``, ``"sum"``).
        shape: shape of the parameter the node stands for, the pooling kernel as
            ``(1, 1, kh, kw)`` for pools, or ``()`` for other parameter-free ops.
        params: qualified names of the parameters this node owns (predicts); ``()`` if none.
        uses: name of a parameter this node uses but does not own (a shared weight's
            later use); ``""`` otherwise.
        module: qualified name of the module whose computation made the node (``""`` unknown).
    """

    op: str
    name: str
    shape: tuple[int, ...] = ()
    params: tuple[str, ...] = ()
    uses: str = ""
    module: str = ""


@dataclass(frozen=True)
class Fallback:
    """A parameter typed by a fallback rule because its consuming op was not recognised."""

    param: str
    module: str
    consumer: str
    op: str
    reason: str


@dataclass
class ArchGraph:
    """Operation graph of one architecture (see the module docstring for the layout)."""

    nodes: list[Node]
    edge_index: np.ndarray
    input_size: tuple[int, ...]
    param_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    trainable: dict[str, bool] = field(default_factory=dict)
    fallbacks: list[Fallback] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------- basic views
    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    @cached_property
    def node_type(self) -> np.ndarray:
        """``[N]`` op-type index of every node."""
        return np.fromiter((OP_INDEX[n.op] for n in self.nodes), dtype=np.int64, count=len(self.nodes))

    @property
    def coverage(self) -> float:
        """Owned trainable parameter elements / all trainable parameter elements (1.0 = all)."""
        total = sum(_numel(s) for n, s in self.param_shapes.items() if self.trainable.get(n, True))
        if total == 0:
            return 1.0
        owned = sum(
            _numel(self.param_shapes[p])
            for node in self.nodes
            for p in node.params
            if self.trainable.get(p, True)
        )
        return owned / total

    @property
    def num_params(self) -> int:
        """Number of trainable parameter elements of the model."""
        return sum(_numel(s) for n, s in self.param_shapes.items() if self.trainable.get(n, True))

    def owner_of(self) -> dict[str, int]:
        """Map each owned parameter name to the index of the node that owns it."""
        return {p: i for i, node in enumerate(self.nodes) for p in node.params}

    def op_counts(self) -> dict[str, int]:
        """Number of nodes of each op type (only types that occur)."""
        counts = np.bincount(self.node_type, minlength=len(OP_TYPES))
        return {OP_TYPES[i]: int(c) for i, c in enumerate(counts) if c}

    # ----------------------------------------------------------------- derived structure
    def virtual_edges(self, cutoff: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """Shortest-path (forward direction) pairs up to ``cutoff`` hops.

        Returns ``(edge_index [2, E'], distance [E'])`` including the real edges (distance 1),
        as GHN-2 uses them (messages weighted by 1/distance).
        """
        from ._paths import shortest_path_lengths

        dist = shortest_path_lengths(self.edge_index, self.num_nodes, cutoff=cutoff)
        src, dst = np.nonzero(dist > 0)
        return np.stack([src, dst]).astype(np.int64), dist[src, dst].astype(np.int64)

    def to_networkx(self):
        """Return a ``networkx.DiGraph`` with node attributes ``op, name, shape, params``."""
        import networkx as nx

        g = nx.DiGraph()
        for i, n in enumerate(self.nodes):
            g.add_node(i, op=n.op, name=n.name, shape=n.shape, params=n.params, module=n.module)
        g.add_edges_from(map(tuple, self.edge_index.T.tolist()))
        return g

    # ----------------------------------------------------------------- checks
    def validate(self) -> ArchGraph:
        """Check the invariants; raise :class:`GraphError` saying what was found. Returns self."""
        n = self.num_nodes
        ei = self.edge_index
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise GraphError(f"edge_index must have shape [2, E], found {tuple(ei.shape)}")
        if n == 0 or self.nodes[0].op != "input":
            raise GraphError("node 0 must be the 'input' node")
        for i, node in enumerate(self.nodes):
            if node.op not in OP_INDEX:
                raise GraphError(f"node {i} ({node.name!r}) has unknown op {node.op!r}; choices {OP_TYPES}")
        if ei.size:
            if ei.min() < 0 or ei.max() >= n:
                raise GraphError(f"edge_index refers to nodes outside [0, {n}): min {ei.min()}, max {ei.max()}")
            back = ei[0] >= ei[1]
            if back.any():
                k = int(np.argmax(back))
                raise GraphError(f"edge {ei[0, k]}->{ei[1, k]} is not in topological order (or a self loop)")
        owners: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            for p in node.params:
                if p in owners:
                    raise GraphError(f"parameter {p!r} owned by nodes {owners[p]} and {i}")
                if p not in self.param_shapes:
                    raise GraphError(f"node {i} owns {p!r}, which is not a parameter of the model")
                owners[p] = i
        return self

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; :meth:`from_dict` inverts it exactly."""
        return {
            "format": "archlab.graph/1",
            "nodes": [asdict(n) for n in self.nodes],
            "edge_index": self.edge_index.tolist(),
            "input_size": list(self.input_size),
            "param_shapes": {k: list(v) for k, v in self.param_shapes.items()},
            "trainable": dict(self.trainable),
            "fallbacks": [asdict(f) for f in self.fallbacks],
            "unused": list(self.unused),
            "outputs": list(self.outputs),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchGraph:
        if d.get("format") != "archlab.graph/1":
            raise GraphError(f"not an archlab graph (format {d.get('format')!r}, expected 'archlab.graph/1')")
        nodes = [
            Node(op=n["op"], name=n["name"], shape=tuple(n["shape"]), params=tuple(n["params"]),
                 uses=n.get("uses", ""), module=n.get("module", ""))
            for n in d["nodes"]
        ]
        ei = np.asarray(d["edge_index"], dtype=np.int64).reshape(2, -1)
        return cls(
            nodes=nodes,
            edge_index=ei,
            input_size=tuple(d["input_size"]),
            param_shapes={k: tuple(v) for k, v in d["param_shapes"].items()},
            trainable=dict(d.get("trainable", {})),
            fallbacks=[Fallback(**f) for f in d.get("fallbacks", [])],
            unused=list(d.get("unused", [])),
            outputs=list(d.get("outputs", [])),
            meta=dict(d.get("meta", {})),
        ).validate()

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict())
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> ArchGraph:
        p = Path(text_or_path) if not str(text_or_path).lstrip().startswith("{") else None
        text = p.read_text() if p is not None else str(text_or_path)
        return cls.from_dict(json.loads(text))

    def __repr__(self) -> str:
        return (f"ArchGraph(nodes={self.num_nodes}, edges={self.num_edges}, "
                f"params={self.num_params:,}, coverage={self.coverage:.3f}, fallbacks={len(self.fallbacks)})")


def _numel(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out
