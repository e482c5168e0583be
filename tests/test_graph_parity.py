"""Graphs agree with the published GHN-2 graph builder (facebookresearch/ppuda).

The reference numbers below were measured by running ppuda's ``deepnets1m.graph.Graph`` (commit
on GitHub main, torch 2.14.1) on the same torchvision models at 224px; archlab's graphs had the
same node-type sequence and edges (EXACT) or were node-type-preserving isomorphic (same DAG,
another valid topological order). ppuda itself fails on ViT/Swin and drops ConvNeXt layer scales.
"""

import pytest
import torchvision

from archlab.graph import GraphError, build_graph

# name: (nodes, edges, {op: count} for ops whose count is distinctive)
PPUDA_GHN2 = {
    "alexnet": (21, 20, {"conv": 8, "bias": 8, "max_pool": 3}),
    "vgg11": (29, 28, {"conv": 11, "bias": 11, "max_pool": 5}),
    "resnet18": (53, 60, {"conv": 21, "bn": 20, "sum": 8}),
    "resnet50": (127, 142, {"conv": 54, "bn": 53, "sum": 16}),
    "squeezenet1_0": (65, 72, {"concat": 8, "bias": 26}),
    "mobilenet_v2": (118, 127, {"sep_conv": 17}),
    "mobilenet_v3_small": (125, 139, {"cse": None}),
    "efficientnet_b0": (191, 215, {"cse": None, "glob_avg": 17}),
    "densenet121": (307, 841, {"concat": 58}),
}


@pytest.mark.parametrize("name", sorted(PPUDA_GHN2))
def test_ghn2_mode_matches_published_graph_sizes(name):
    g = build_graph(torchvision.models.get_model(name), mode="ghn2")
    nodes, edges, ops = PPUDA_GHN2[name]
    assert (g.num_nodes, g.num_edges) == (nodes, edges)
    counts = g.op_counts()
    for op, n in ops.items():
        assert counts.get(op) == n, (op, counts)


def test_ghn3_mode_types_sigmoid_gates_as_cse():
    m = torchvision.models.get_model("efficientnet_b0")
    g2, g3 = build_graph(m, mode="ghn2"), build_graph(m, mode="ghn3")
    assert "cse" not in g2.op_counts() and g3.op_counts()["cse"] == 16
    assert g3.num_nodes == g2.num_nodes + 16 and g3.coverage == 1.0


def test_unknown_mode():
    with pytest.raises(GraphError, match="unknown graph mode 'ghn4'"):
        build_graph(torchvision.models.get_model("resnet18"), mode="ghn4")
