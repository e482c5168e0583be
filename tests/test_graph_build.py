"""Graph building on custom models with the hard cases, and bad input."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from archlab.graph import ArchGraph, GraphError, build_graph, collate, resolve_model, to_dense
from tests.graph_checks import assert_well_formed
from tests.models import tricky

TRICKY = Path(tricky.__file__)


@pytest.mark.parametrize("cls", [tricky.LayerScaleNet, tricky.TokenNet, tricky.NormZooNet,
                                 tricky.RelPosNet, tricky.AuxHeadNet, tricky.SharedWeightNet,
                                 tricky.DataDependentNet])
def test_tricky_models_fully_covered(cls):
    g = build_graph(cls())
    assert_well_formed(g)


def test_layer_scale_and_tokens_are_typed_by_use():
    g = build_graph(tricky.LayerScaleNet())
    by_name = {n.name: n for n in g.nodes}
    assert by_name["gamma"].op == "ln"
    assert by_name["dw.weight"].op == "sep_conv"
    t = build_graph(tricky.TokenNet())
    by_name = {n.name: n for n in t.nodes}
    assert by_name["cls_token"].op == "pos_enc" and by_name["pos"].op == "pos_enc"
    assert by_name["attn.in_proj_weight"].op == "conv"
    assert by_name["attn.in_proj_bias"].op == "bias"
    assert t.op_counts()["msa"] == 1 and t.op_counts()["concat"] == 1
    # the class token feeds the concat, the positional embedding feeds a sum
    G = t.to_networkx()
    succ_ops = lambda name: {t.nodes[j].op for j in G.successors(next(i for i, n in enumerate(t.nodes) if n.name == name))}  # noqa: E731
    assert succ_ops("cls_token") == {"concat"} and succ_ops("pos") == {"sum"}


def test_norms_embedding_and_bare_parameter():
    g = build_graph(tricky.NormZooNet())
    by_name = {n.name: n for n in g.nodes}
    assert by_name["gn.weight"].op == "ln" and set(by_name["gn.weight"].params) == {"gn.weight", "gn.bias"}
    assert by_name["ln2d.weight"].op == "ln"
    assert by_name["row_embed.weight"].op == "pos_enc"
    assert by_name["extra_bias"].op == "bias"
    assert not g.fallbacks


def test_relative_position_table_feeds_attention():
    g = build_graph(tricky.RelPosNet())
    table = next(i for i, n in enumerate(g.nodes) if n.name == "table")
    assert g.nodes[table].op == "pos_enc"
    G = g.to_networkx()
    assert any(g.nodes[j].op == "msa" for j in nx_descendants(G, table))


def nx_descendants(G, i):
    import networkx as nx

    return nx.descendants(G, i)


def test_auxiliary_head_needs_train_mode_and_model_mode_is_restored():
    m = tricky.AuxHeadNet().eval()
    g = build_graph(m)
    assert g.meta["mode"] == "train" and "aux.weight" in g.owner_of()
    assert len(g.outputs) == 2
    assert not m.training


def test_weight_sharing_one_owner_two_uses():
    g = build_graph(tricky.SharedWeightNet())
    uses = [n for n in g.nodes if n.name == "conv.weight"]
    assert len(uses) == 2
    assert uses[0].params == ("conv.weight",) and uses[1].params == () and uses[1].uses == "conv.weight"
    biases = [n for n in g.nodes if n.name == "conv.bias"]
    assert [b.params for b in biases] == [("conv.bias",), ()]


def test_data_dependent_forward_falls_back_to_real_tensors():
    g = build_graph(tricky.DataDependentNet())
    assert g.meta["traced_on"] == "real" and "meta tracing failed" in g.meta["notes"][0]


def test_unused_parameter_is_reported_and_strict_raises():
    g = build_graph(tricky.UnusedParamNet())
    assert g.unused == ["orphan"] and g.coverage < 1.0
    with pytest.raises(GraphError, match="orphan"):
        build_graph(tricky.UnusedParamNet(), strict=True)


def test_strict_passes_on_plain_cnn_and_model_untouched():
    m = resolve_model("resnet18")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    build_graph(m, strict=True)
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.device.type == "cpu" for p in m.parameters())


def test_frozen_parameters_do_not_count():
    m = tricky.SharedWeightNet()
    m.fc.weight.requires_grad_(False)
    g = build_graph(m)
    assert g.coverage == 1.0 and g.num_params == sum(p.numel() for p in m.parameters() if p.requires_grad)


def test_input_size_forms_and_native_size():
    m = resolve_model("resnet18")
    assert build_graph(m).input_size == (3, 224, 224)
    assert build_graph(m, input_size=64).input_size == (3, 64, 64)
    assert build_graph(m, input_size="3x96x96").input_size == (3, 96, 96)
    assert build_graph(resolve_model("inception_v3")).input_size == (3, 299, 299)
    assert build_graph(tricky.TokenNet()).input_size == (3, 32, 32)


def test_virtual_edges_include_real_edges_and_respect_cutoff():
    g = build_graph(tricky.LayerScaleNet())
    ei, dist = g.virtual_edges(cutoff=50)
    real = {tuple(e) for e in g.edge_index.T.tolist()}
    pairs = {tuple(e): d for e, d in zip(ei.T.tolist(), dist.tolist())}
    assert all(pairs[e] == 1 for e in real)
    assert max(dist) > 1
    ei2, dist2 = g.virtual_edges(cutoff=2)
    assert dist2.max() == 2 and ei2.shape[1] < ei.shape[1]


def test_dense_batch_distances_are_symmetric_views():
    gs = [build_graph(tricky.TokenNet()), build_graph(tricky.SharedWeightNet())]
    d = to_dense(gs)
    assert d.node_type.shape == (2, max(g.num_nodes for g in gs))
    assert torch.equal(d.dist_bwd, d.dist_fwd.transpose(1, 2))
    assert (d.node_type[1, gs[1].num_nodes:] == -1).all()
    p = collate(gs)
    assert p.batch.tolist() == [0] * gs[0].num_nodes + [1] * gs[1].num_nodes
    assert p.edge_index.max() < p.node_type.numel()


# ----------------------------------------------------------------- bad input
def test_not_a_module():
    with pytest.raises(GraphError, match="expects a torch.nn.Module, got str"):
        build_graph("resnet50")


def test_impossible_input_size_names_the_size():
    with pytest.raises(GraphError, match="cannot run at input size 3x16x16"):
        build_graph(resolve_model("vit_b_16"), input_size=16)
    with pytest.raises(GraphError, match="input size"):
        build_graph(resolve_model("resnet18"), input_size="3xbig")


def test_failing_forward_is_reported():
    with pytest.raises(GraphError, match="broken on purpose"):
        build_graph(tricky.BrokenForwardNet(), input_size=8)


def test_resolve_file_specs():
    m = resolve_model(f"{TRICKY}:TokenNet", num_classes=7)
    assert type(m).__name__ == "TokenNet" and m.head.out_features == 7
    with pytest.raises(GraphError, match="does not exist"):
        resolve_model("no/such/file.py:Net")
    with pytest.raises(GraphError, match="has no class 'Nope'.*TokenNet"):
        resolve_model(f"{TRICKY}:Nope")
    with pytest.raises(GraphError, match="could not construct NeedsArgs"):
        resolve_model(f"{TRICKY}:NeedsArgs")
    with pytest.raises(GraphError, match="unknown model 'resnet5'.*resnet50"):
        resolve_model("resnet5")


def test_corrupt_json_is_rejected(tmp_path):
    g = build_graph(tricky.SharedWeightNet())
    d = g.to_dict()
    d["edge_index"] = [[3], [1]]
    with pytest.raises(GraphError, match="not in topological order"):
        ArchGraph.from_dict(d)
    with pytest.raises(GraphError, match="not an archlab graph"):
        ArchGraph.from_dict({"format": "other"})
    bad = g.to_dict()
    bad["nodes"][1]["op"] = "relu"
    with pytest.raises(GraphError, match="unknown op 'relu'"):
        ArchGraph.from_dict(bad)


def test_validate_rejects_double_ownership():
    g = build_graph(tricky.SharedWeightNet())
    d = g.to_dict()
    second = next(i for i, n in enumerate(d["nodes"]) if n["uses"] == "conv.weight")
    d["nodes"][second]["params"] = ["conv.weight"]
    with pytest.raises(GraphError, match="owned by nodes"):
        ArchGraph.from_dict(d)


def test_graph_is_numpy_int64():
    g = build_graph(tricky.TokenNet())
    assert g.edge_index.dtype == np.int64 and g.node_type.dtype == np.int64
    assert g.nodes[0].op == "input"


def test_build_does_not_leak_into_sys_modules_for_file_models():
    before = set(sys.modules)
    resolve_model(f"{TRICKY}:SharedWeightNet")
    new = {m for m in set(sys.modules) - before if m.startswith("archlab_user_")}
    assert len(new) <= 1
