"""archlab.space networks: analytic params/FLOPs/graph nodes vs built modules and build_graph."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import archlab.space as S  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _space_helpers import hook_flops  # noqa: E402

SPLITS = ("val", "test", "wide", "deep", "dense", "bnfree", "search")


def _records(split: str, n: int, pick: int | None = None):
    recs = list(itertools.islice(S.generate_split(split), n))
    if pick is not None:  # the cheapest ones keep the fast suite fast
        recs = sorted(recs, key=lambda r: r["meta"]["flops"])[:pick]
    return recs


def _build_graph():
    try:
        from archlab.graph import build_graph
    except ImportError as e:  # pragma: no cover - graph layer not there yet
        pytest.skip(f"archlab.graph.build_graph not importable: {e}")
    return build_graph


def _check(rec, build_graph):
    g = S.Genotype.from_dict(rec["genotype"])
    meta = rec["meta"]
    net = S.build_network(g, num_classes=10, input="cifar", C=meta["C"], fc_dim=meta["fc_dim"])
    assert net.input_size == 32
    assert sum(p.numel() for p in net.parameters()) == meta["params"], g
    assert hook_flops(net, 32) == meta["flops"], g  # also runs a real forward pass
    graph = build_graph(net)
    assert graph.coverage == 1.0, g
    assert graph.op_counts() == meta["nodes"], (g, graph.op_counts(), meta["nodes"])
    assert graph.num_nodes == meta["num_nodes"]


@pytest.mark.parametrize("split", SPLITS)
def test_counts_match_built_network(split):
    build_graph = _build_graph()
    for rec in _records(split, 12, pick=2):
        _check(rec, build_graph)


@pytest.mark.slow
@pytest.mark.parametrize("split", SPLITS)
def test_counts_match_built_network_20_per_split(split):
    build_graph = _build_graph()
    for rec in _records(split, 20):
        _check(rec, build_graph)


def _check_imagenet(rec):
    g = S.Genotype.from_dict(rec["genotype"])
    net = S.build_network(g, num_classes=1000, input="imagenet")
    st = S.analytic_stats(g, num_classes=1000, input="imagenet")
    assert net.input_size == 224
    assert sum(p.numel() for p in net.parameters()) == st["params"]
    assert S.analytic_stats(g, input="imagenet")["params"] == rec["meta"]["params_imagenet"]
    assert hook_flops(net, 224) == st["flops"]


def test_imagenet_forward_smallest():
    _check_imagenet(_records("test", 30, pick=1)[0])


@pytest.mark.slow
def test_imagenet_forward_few():
    for rec in _records("test", 40, pick=4)[1:]:
        _check_imagenet(rec)
    vit = next(r for r in S.generate_split("test") if S.Genotype.from_dict(r["genotype"]).is_vit)
    _check_imagenet(vit)


def test_every_op_and_stem_builds_and_matches():
    """Hand-made genotypes covering every op, both strides, all stems and heads."""
    build_graph = _build_graph()
    ops = [op for op in S.CELL_OPS if op not in ("none", "msa")]
    for i, (a, b) in enumerate(zip(ops, ops[1:] + ops[:1])):
        g = S.Genotype(normal=((a, 0), (b, 1), ("none", 1), ("cse", 2)), normal_concat=(2, 3),
                       reduce=((b, 1), (a, 0), ("skip_connect", 2), ("none", 0)), reduce_concat=(2, 3),
                       n_cells=4, stem_type=i % 2, stem_pool=bool(i % 3 == 0), ks=(3, 5, 7)[i % 3],
                       norm=("bn", "none")[i % 2], fc_layers=1 + i % 2, glob_avg=bool(i % 4))
        _check({"genotype": g.to_dict(), "meta": {"C": 16, "fc_dim": 64, **S.analytic_stats(g, C=16, fc_dim=64)}},
               build_graph)
    vit = S.Genotype(normal=(("msa", 0), ("skip_connect", 1)), normal_concat=(2,),
                     reduce=(("avg_pool_3x3", 0), ("msa", 1)), reduce_concat=(2,), n_cells=4,
                     preproc=False, C_mult=1)
    _check({"genotype": vit.to_dict(), "meta": {"C": 16, "fc_dim": 64, **S.analytic_stats(vit, C=16, fc_dim=64)}},
           build_graph)


def test_predefined_models():
    build_graph = _build_graph()
    vit = S.build_predefined("vit")
    st = S.analytic_stats(S.VIT, C=128)
    assert sum(p.numel() for p in vit.parameters()) == st["params"]
    assert hook_flops(vit, 32) == st["flops"]
    assert build_graph(vit).op_counts() == st["nodes"]
    r50 = S.build_predefined("resnet50")
    assert r50.input_size == 32 and r50.conv1.stride == (1, 1)
    assert r50(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert build_graph(r50).coverage == 1.0
    with pytest.raises(ValueError, match="unknown predefined model 'vgg'"):
        S.build_predefined("vgg")


def test_build_network_errors():
    g = S.load_split("val")[0]
    with pytest.raises(ValueError, match="C must be an even number"):
        S.build_network(g, C=15)
    with pytest.raises(TypeError, match="expects a Genotype"):
        S.build_network(g.to_dict())


@pytest.mark.parametrize("size", [8, 16])
def test_networks_for_smaller_images(size):
    """Digits are 16x16: every kind of stem/classifier must build and run below 32 px."""
    build_graph = _build_graph()
    genos = S.load_split("test")
    wanted = {
        "flatten": lambda g: not g.glob_avg, "stem_pool": lambda g: g.stem_pool,
        "imagenet_stem": lambda g: g.stem_type == 1, "vit": lambda g: g.is_vit,
    }
    picked = {k: next(g for g in genos if f(g)) for k, f in wanted.items()}
    for kind, g in picked.items():
        net = S.build_network(g, num_classes=10, input="cifar", C=8, fc_dim=32, image_size=size)
        assert net.input_size == size, kind
        assert net(torch.randn(2, 3, size, size)).shape == (2, 10), kind
        graph = build_graph(net)
        assert graph.coverage == 1.0 and graph.input_size == (3, size, size), kind
    flat = S.build_network(picked["flatten"], C=8, fc_dim=32, image_size=size)
    at32 = S.build_network(picked["flatten"], C=8, fc_dim=32)
    assert flat.classifier[0].in_features < at32.classifier[0].in_features  # fewer pixels flattened
    r50 = S.build_predefined("resnet50", image_size=size)
    assert r50.input_size == size and r50(torch.randn(2, 3, size, size)).shape == (2, 10)


def test_image_size_errors():
    g = S.load_split("val")[0]
    with pytest.raises(ValueError, match="image_size must be >= 8"):
        S.build_network(g, image_size=4)
    with pytest.raises(ValueError, match="unknown input 'mnist'"):
        S.build_network(g, input="mnist")
    assert S.input_kind(16) == "cifar" and S.input_kind(224) == "imagenet"
