"""Shared assertions on ArchGraphs used by several test modules."""

import json

import networkx as nx
import numpy as np

from archlab.graph import OP_TYPES, ArchGraph, collate, to_dense, uncollate

SOURCE_OPS = {"pos_enc", "conv", "bias", "ln"}  # parameter nodes may start a branch (tables, tokens)


def assert_well_formed(g: ArchGraph) -> None:
    """Coverage 1.0, valid types, topological edges, input->output connectivity, round-trips."""
    g.validate()
    assert g.coverage == 1.0, (g.coverage, g.unused)
    assert set(n.op for n in g.nodes) <= set(OP_TYPES)
    G = g.to_networkx()
    assert nx.is_directed_acyclic_graph(G)
    assert nx.is_weakly_connected(G)
    reach_out = set()
    for o in g.outputs:
        reach_out |= nx.ancestors(G, o) | {o}
    assert reach_out == set(G.nodes), "every node must reach an output"
    from_input = nx.descendants(G, 0) | {0}
    for i in set(G.nodes) - from_input:
        assert g.nodes[i].op in SOURCE_OPS, f"node {i} {g.nodes[i]} is not reachable from the input"
    assert all(g.outputs) and max(g.outputs) == g.num_nodes - 1
    # every trainable parameter owned exactly once
    owned = [p for n in g.nodes for p in n.params]
    assert len(owned) == len(set(owned))
    assert set(owned) == {p for p, t in g.trainable.items() if t}
    # JSON round trip
    g2 = ArchGraph.from_json(g.to_json())
    assert g2.nodes == g.nodes and np.array_equal(g2.edge_index, g.edge_index)
    assert json.loads(g2.to_json()) == json.loads(g.to_json())
    # batching round trip (packed and dense) with a second graph to exercise offsets
    packed = collate([g, g2], virtual_cutoff=50)
    assert packed.ptr.tolist() == [0, g.num_nodes, 2 * g.num_nodes]
    assert uncollate(packed)[1] is g2
    dense = to_dense([g2, g])
    assert int(dense.mask.sum()) == 2 * g.num_nodes
    assert uncollate(dense)[0] is g2
