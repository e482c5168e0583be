"""Graphs built straight from genotypes equal the traced graphs of the built networks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from archlab.graph import build_graph
from archlab.space import (
    EVAL_SPLITS,
    SPLITS,
    build_network,
    genotype_graph,
    load_split,
    train_stream,
)


def assert_same_graph(fast, traced, what: str) -> None:
    assert len(fast.nodes) == len(traced.nodes), f"{what}: {len(fast.nodes)} nodes, traced {len(traced.nodes)}"
    for i, (a, b) in enumerate(zip(fast.nodes, traced.nodes)):
        assert a == b, f"{what}: node {i} differs: {a} vs traced {b}"
    assert np.array_equal(fast.edge_index, traced.edge_index), f"{what}: edges differ"
    assert list(fast.param_shapes.items()) == list(traced.param_shapes.items()), f"{what}: parameters differ"
    assert fast.outputs == traced.outputs and fast.input_size == traced.input_size, what
    assert fast.coverage == 1.0 and not fast.unused and not fast.fallbacks


def _width(split: str) -> int:
    return 128 if split == "wide" else 32


@pytest.mark.parametrize("mode", ["ghn2", "ghn3"])
@pytest.mark.parametrize("split", EVAL_SPLITS)
def test_first_genotypes_of_each_split(split, mode):
    for i, g in enumerate(load_split(split)[:4]):
        for size in (16, 32):
            net = build_network(g, 10, input="cifar", C=_width(split), image_size=size)
            fast = genotype_graph(g, 10, input="cifar", C=_width(split), image_size=size, mode=mode)
            assert_same_graph(fast, build_graph(net, mode=mode), f"{split}/{i} at {size}px, {mode}")


def test_imagenet_input_and_train_stream():
    for i, g in enumerate(itertools.islice(train_stream(0), 6)):
        net = build_network(g, 1000, input="imagenet")
        assert_same_graph(genotype_graph(g, 1000, input="imagenet"), build_graph(net), f"train/{i} imagenet")
    for i, g in enumerate(itertools.islice(train_stream(1), 12)):  # as `archlab train` builds them
        c = (16, 24, 32)[i % 3]
        net = build_network(g, 10, input="cifar", C=c, fc_dim=256, image_size=32)
        assert_same_graph(genotype_graph(g, 10, input="cifar", C=c, fc_dim=256, image_size=32), build_graph(net),
                          f"train/{i} cifar C={c}")


@pytest.mark.slow
@pytest.mark.parametrize("split", EVAL_SPLITS)
def test_every_genotype_of_every_shipped_split(split):
    genotypes = load_split(split)
    assert len(genotypes) == SPLITS[split]["n"]
    for i, g in enumerate(genotypes):
        for size in (16, 32):  # digits and CIFAR-10
            net = build_network(g, 10, input="cifar", C=_width(split), image_size=size)
            fast = genotype_graph(g, 10, input="cifar", C=_width(split), image_size=size)
            assert_same_graph(fast, build_graph(net), f"{split}/{i} at {size}px")
