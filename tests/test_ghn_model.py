"""GHN models: shapes/coverage, gradients, in-place prediction, batching, embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from archlab.ghn import GHN, GHNConfig, build_ghn, functional_logits, use_batch_stats
from archlab.ghn._gnn import GatedGNN, longest_path_levels
from archlab.ghn._plan import channel_class, tile_into, tile_to
from archlab.ghn._transformer import EdgeBias
from archlab.ghn._traversal import traversal
from archlab.graph import ArchGraph, Node, build_graph

KINDS = ["ghn2", "ghn3-t", "mlp"]
SAMPLE = ["resnet18", "squeezenet1_0", "mobilenet_v3_small", "convnext_tiny", "vit_b_16",
          "efficientnet_b0", "shufflenet_v2_x0_5"]


class SmallNet(nn.Module):
    """Conv-BN-ReLU x2 with a residual sum, pooling and a linear classifier."""

    def __init__(self, width: int = 8, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = x + torch.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class SharedNet(nn.Module):
    """The same Linear applied twice (weight sharing)."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3 * 8 * 8, 16)
        self.shared = nn.Linear(16, 16)
        self.out = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.inp(x.flatten(1)))
        x = torch.relu(self.shared(x))
        return self.out(torch.relu(self.shared(x)))


def _ghn(preset: str, **kw) -> GHN:
    torch.manual_seed(0)
    return build_ghn(GHNConfig.preset(preset, num_classes=10, image_size=32, **kw))


def _check_prediction(g: ArchGraph, model: nn.Module, pred: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    trainable = {n for n, p in params.items() if p.requires_grad}
    assert set(pred) == trainable, sorted(set(pred) ^ trainable)[:5]
    for name, t in pred.items():
        assert tuple(t.shape) == tuple(params[name].shape), name
        assert torch.isfinite(t).all(), name


# ---------------------------------------------------------------------- config
def test_presets_and_parameter_counts():
    assert sum(p.numel() for p in _ghn("ghn2").parameters()) == 1_620_764  # ppuda GHN-2 CIFAR-10
    with torch.device("meta"):
        xl = build_ghn(GHNConfig.preset("ghn3-xl", num_classes=1000, image_size=224))
    assert xl.config.max_shape == (384, 384, 16, 16)
    assert sum(p.numel() for p in xl.parameters()) == 654_365_184  # published ghn3xlm16.pt
    t = GHNConfig.preset("ghn3-t", num_classes=10, image_size=32)
    assert (t.hid, t.layers, t.heads, t.max_shape) == (64, 3, 8, (64, 64, 11, 11))
    assert GHNConfig.from_dict(t.to_dict()) == t
    with pytest.raises(ValueError, match="unknown GHN preset 'ghn4'"):
        GHNConfig.preset("ghn4")
    with pytest.raises(ValueError, match="unknown GHN kind"):
        GHNConfig(kind="gnn")
    with pytest.raises(ValueError, match="unknown GHNConfig fields"):
        GHNConfig.from_dict({"kind": "ghn2", "hidden": 3})


# ---------------------------------------------------------------------- shapes and coverage
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", SAMPLE)
def test_torchvision_sample_shapes_and_coverage(kind, name):
    torch.manual_seed(0)
    model = torchvision.models.get_model(name)
    g = build_graph(model)
    assert g.coverage == 1.0
    with torch.no_grad():
        pred = _ghn(kind)([g])[0]
    _check_prediction(g, model, pred)


@pytest.mark.slow
def test_all_torchvision_models_ghn2():
    ghn = _ghn("ghn2")
    failures = []
    for name in torchvision.models.list_models(module=torchvision.models):
        model = torchvision.models.get_model(name)
        g = build_graph(model)
        with torch.no_grad():
            pred = ghn([g])[0]
        params = dict(model.named_parameters())
        owned = {p for node in g.nodes for p in node.params}
        bad = [k for k, t in pred.items() if t.shape != params[k].shape or not torch.isfinite(t).all()]
        if set(pred) != owned or bad or g.coverage < 1.0:
            failures.append((name, g.coverage, sorted(owned ^ set(pred))[:3], bad[:3]))
    assert not failures, failures


def test_shared_weights_predicted_once():
    model = SharedNet()
    g = build_graph(model, input_size=(3, 8, 8))
    assert sum(1 for n in g.nodes if n.uses) >= 1  # the second use of `shared`
    pred = _ghn("ghn2")([g])[0]
    _check_prediction(g, model, pred)


# ---------------------------------------------------------------------- training path
@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_ghn_through_functional_logits(kind):
    ghn = _ghn(kind)
    model = SmallNet()
    g = build_graph(model, input_size=(3, 16, 16))
    params = ghn([g])[0]
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    loss = nn.functional.cross_entropy(functional_logits(model, params, x), y)
    loss.backward()
    for name in ("encoder.embed.weight", "decoder.fc.weight", "decoder.conv.2.weight",
                 "decoder_1d.decoder_1d.0.weight", "decoder.class_layer_predictor.1.weight"):
        grad = dict(ghn.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    gnn_grads = [p.grad for p in ghn.gnn.parameters() if p.grad is not None]
    assert gnn_grads and any(gr.abs().sum() > 0 for gr in gnn_grads)
    for p in model.parameters():  # the target network's own weights are untouched
        assert p.grad is None


@pytest.mark.parametrize("kind", KINDS)
def test_mixed_precision_forward_and_backward(kind):
    """Under autocast (bf16 on CPU, as fp16 on CUDA) the GHN trains: no dtype clash, finite grads."""
    ghn = _ghn(kind)
    model = SmallNet()
    g = build_graph(model, input_size=(3, 16, 16))
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        params = ghn([g])[0]
        logits = functional_logits(model, params, x)
    assert logits.dtype == torch.bfloat16
    nn.functional.cross_entropy(logits.float(), y).backward()
    grads = [p.grad for p in ghn.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads)
    assert sum(float(gr.abs().sum()) for gr in grads) > 0


def test_functional_logits_matches_predicted_model():
    ghn, model = _ghn("ghn2"), SmallNet()
    g = build_graph(model, input_size=(3, 16, 16))
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        logits = functional_logits(model, ghn([g])[0], x)
        ghn.predict(model, input_size=(3, 16, 16))
        assert torch.allclose(model.eval()(x), logits, atol=1e-5)


# ---------------------------------------------------------------------- prediction
@pytest.mark.parametrize("kind", KINDS)
def test_predict_sets_every_parameter_in_place(kind):
    ghn = _ghn(kind)
    model = torchvision.models.resnet18(num_classes=10)
    before = {n: (p, p.detach().clone()) for n, p in model.named_parameters()}
    assert ghn.predict(model) is model
    expected = ghn.predict_params([model])[0]
    for name, p in model.named_parameters():
        assert p is before[name][0]  # same Parameter objects, filled in place
        assert not torch.equal(p, before[name][1]), name
        assert torch.allclose(p, expected[name], atol=1e-6), name
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.running_mean is None and not m.track_running_stats for m in bns)
    out = model.eval()(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_predicted_tensors_are_normalised():
    ghn = _ghn("ghn2")
    model = torchvision.models.resnet18()
    pred = ghn.predict_params([model])[0]
    assert ((pred["bn1.weight"] >= 0) & (pred["bn1.weight"] <= 2)).all()
    assert (pred["fc.bias"].abs() <= 1).all()
    # fan-in scaling: std well below 1 for a 3x3x64 fan-in
    assert pred["layer1.0.conv1.weight"].std() < 0.5


@pytest.mark.parametrize("kind", KINDS)
def test_batch_prediction_equals_single(kind):
    ghn = _ghn(kind)
    models = [torchvision.models.resnet18(), SmallNet(), torchvision.models.squeezenet1_0()]
    graphs = [build_graph(models[0]), build_graph(models[1], input_size=(3, 16, 16)),
              build_graph(models[2])]
    with torch.no_grad():
        batch = ghn(graphs)
        for g, b in zip(graphs, batch):
            single = ghn([g])[0]
            assert list(single) == list(b)
            for k in single:
                assert torch.allclose(single[k], b[k], atol=1e-5, rtol=1e-4), k


def test_predict_many_models_at_once():
    ghn = _ghn("ghn2")
    models = [SmallNet(width=w) for w in (4, 8, 12)]
    ghn.predict(models, input_size=(3, 16, 16), batch_size=2)
    for m in models:
        ref = ghn.predict_params([m], input_size=(3, 16, 16))[0]
        for n, p in m.named_parameters():
            assert torch.allclose(p, ref[n], atol=1e-5), n


# ---------------------------------------------------------------------- embeddings
@pytest.mark.parametrize("kind", KINDS)
def test_embed_shape_and_consistency(kind):
    ghn = _ghn(kind)
    models = [torchvision.models.resnet18(), torchvision.models.squeezenet1_0(), SmallNet()]
    graphs = [build_graph(models[0]), build_graph(models[1]), build_graph(models[2], input_size=(3, 16, 16))]
    emb = ghn.embed(graphs)
    assert emb.shape == (3, ghn.config.hid) and emb.dtype == np.float32
    assert np.isfinite(emb).all()
    np.testing.assert_allclose(ghn.embed(graphs[:1]), emb[:1], atol=1e-5)
    np.testing.assert_allclose(ghn.embed(graphs, batch_size=1), emb, atol=1e-5)
    assert not np.allclose(emb[0], emb[1])
    assert ghn.embed(models[:2]).shape == (2, ghn.config.hid)


# ---------------------------------------------------------------------- building blocks
def _sequential_gnn(gnn: GatedGNN, x: torch.Tensor, edges: np.ndarray, n: int) -> torch.Tensor:
    """GHN-2 reference: nodes one at a time, forward then backward (ppuda semantics)."""
    h = list(x.unbind(0))
    src, dst, dist = edges
    for _ in range(gnn.steps):
        for order in ("fw", "bw"):
            nodes = range(n) if order == "fw" else reversed(range(n))
            for v in nodes:
                m = torch.zeros(x.shape[1])
                into = np.nonzero(dst == v)[0] if order == "fw" else np.nonzero(src == v)[0]
                for e in into:
                    u = src[e] if order == "fw" else dst[e]
                    if not gnn.ve:
                        m = m + gnn.mlp(h[u])
                        continue
                    if dist[e] == 1:
                        m = m + gnn.mlp(h[u])
                    m = m + gnn.mlp_ve(h[u]) / float(dist[e])
                h[v] = gnn.gru(m[None], h[v][None])[0]
    return torch.stack(h)


def _graph_from_edges(n: int, edges: list[tuple[int, int]]) -> ArchGraph:
    nodes = [Node("input", "input")] + [Node("conv", f"c{i}.weight", (4, 4, 3, 3), (f"c{i}.weight",))
                                        for i in range(1, n)]
    return ArchGraph(nodes=nodes, edge_index=np.array(edges, dtype=np.int64).T.reshape(2, -1),
                     input_size=(3, 8, 8), param_shapes={f"c{i}.weight": (4, 4, 3, 3) for i in range(1, n)},
                     outputs=[n - 1]).validate()


@pytest.mark.parametrize("ve,steps", [(True, 1), (False, 1), (True, 2)])
def test_level_wise_gnn_equals_sequential_reference(ve, steps):
    """Two graphs packed in one batch (as in training): outputs and the gradients of the input
    and of every GNN parameter match the node-by-node definition."""
    torch.manual_seed(0)
    g = _graph_from_edges(7, [(0, 1), (1, 2), (0, 3), (2, 4), (3, 4), (1, 5), (4, 6), (5, 6)])
    g2 = _graph_from_edges(5, [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (0, 4)])
    per_graph = []
    for off, gr in ((0, g), (g.num_nodes, g2)):
        ei, dist = gr.virtual_edges(50) if ve else (gr.edge_index, np.ones(gr.num_edges, dtype=np.int64))
        per_graph.append(np.stack([ei[0] + off, ei[1] + off, dist]))
    edges = np.concatenate(per_graph, axis=1)
    n = g.num_nodes + g2.num_nodes
    real = np.concatenate([g.edge_index, g2.edge_index + g.num_nodes], axis=1)
    gnn = GatedGNN(8, virtual_edges=ve, steps=steps)
    x = torch.randn(n, 8, requires_grad=True)
    fw = traversal(longest_path_levels(real, n), edges[0], edges[1], edges[2], gnn.parts)
    bw_level = longest_path_levels(np.ascontiguousarray((n - 1 - real)[::-1]), n)[::-1].copy()
    bw = traversal(bw_level, edges[1], edges[0], edges[2], gnn.parts)
    fast = gnn(x, fw, bw)
    ref = _sequential_gnn(gnn, x, edges, n)
    assert torch.allclose(fast, ref, atol=1e-5)
    weights = torch.randn_like(ref)  # a loss whose gradient differs per node and channel
    inputs = [x, *gnn.parameters()]
    grads_fast = torch.autograd.grad((fast * weights).sum(), inputs)
    grads_ref = torch.autograd.grad((ref * weights).sum(), inputs)
    names = ["x"] + [k for k, _ in gnn.named_parameters()]
    for name, a, b in zip(names, grads_fast, grads_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-5), name
        assert b.abs().sum() > 0, name  # every parameter takes part


def test_edge_bias_table_equals_direct_computation():
    torch.manual_seed(0)
    eb = EdgeBias(16, 4)
    d = torch.randint(0, 6, (2, 5, 5))
    d_bwd = d.transpose(1, 2)
    emb = torch.cat([eb.edge_embed(d + 2), eb.edge_embed(d_bwd + 2)], dim=-1)
    direct = eb.proj_e(emb).permute(0, 3, 1, 2)
    assert torch.allclose(eb(d, d_bwd), direct, atol=1e-5)


def test_tiling_helpers():
    w = torch.arange(24.0).view(2, 3, 2, 2)
    for shape in [(5, 7, 2, 2), (4, 6, 2, 2), (1, 2, 2, 2)]:
        t = tile_to(w, shape)
        assert t.shape == shape
        assert torch.equal(t[0, 0], w[0, 0]) and torch.equal(t[-1, -1], w[(shape[0] - 1) % 2, (shape[1] - 1) % 3])
        dst = torch.empty(shape)
        tile_into(dst, w[: min(2, shape[0]), : min(3, shape[1])])
        assert torch.equal(dst, t)
    assert [channel_class(n, 64) for n in (1, 3, 16, 24, 33, 512)] == [1, 4, 16, 64, 64, 64]


def test_use_batch_stats():
    model = SmallNet()
    use_batch_stats(model)
    for m in (model.bn1, model.bn2):
        assert m.running_mean is None and m.running_var is None and not m.track_running_stats
    model.eval()
    x = torch.randn(8, 3, 16, 16)
    h = model.bn1(model.conv1(x))
    assert torch.allclose(h.mean(dim=(0, 2, 3)), model.bn1.bias, atol=1e-4)
