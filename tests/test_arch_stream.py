"""The training architecture stream (graphs built ahead in a worker process) and bit-reproducible
GHN gradients on 2 CPU threads. Real DeepNets-1M genotypes, real graphs, real GHN-2."""

from __future__ import annotations

import itertools

import pytest
import torch

from archlab.engine._arch_stream import ArchSteps, build_networks, meta_batches, networks_of
from archlab.ghn import build_ghn
from archlab.ghn._config import GHNConfig
from archlab.graph import build_graph
from archlab.space import train_stream

STEPS = dict(seed=3, meta_batch=2, widths=(8, 16), num_classes=10, image_size=16, fc_dim=16)


def _summary(step: list[tuple], params: bool) -> list[tuple]:
    """What identifies a step: genotypes, widths, the graphs' structure and (``params``) the
    networks' initial parameters, which depend on the caller's RNG state."""
    nets = networks_of(step, STEPS["num_classes"], STEPS["image_size"], STEPS["fc_dim"], "cpu")
    return [(g, c, [(k, v.tolist() if params else v.shape) for k, v in net.state_dict().items()],
             tuple(graph.node_type.tolist()), graph.edge_index.tolist(), dict(graph.param_shapes))
            for (g, c, _, graph), net in zip(step, nets, strict=True)]


def _take(steps: ArchSteps, workers: int, n: int, params: bool = False) -> list[list[tuple]]:
    it = meta_batches(steps, workers)
    try:
        return [_summary(s, params) for s in itertools.islice(it, n)]
    finally:
        if hasattr(it, "close"):
            it.close()


def test_worker_process_yields_what_the_training_process_would_build():
    torch.manual_seed(7)
    local = _take(ArchSteps(start=5, **STEPS), 0, 3, params=True)
    after_local = torch.get_rng_state()
    torch.manual_seed(7)
    prefetched = _take(ArchSteps(start=5, **STEPS), 1, 3, params=True)
    assert prefetched == local  # same genotypes, widths, graphs and initial parameters
    assert torch.equal(after_local, torch.get_rng_state())  # and the same RNG stream afterwards
    genos = list(itertools.islice(train_stream(seed=3), 5, 11))
    assert [g for step in local for g, *_ in step] == genos
    assert {c for step in local for _, c, *_ in step} <= {8, 16}


def test_resuming_at_a_stream_position_continues_the_same_sequence():
    full = _take(ArchSteps(start=0, **STEPS), 0, 3)
    resumed = _take(ArchSteps(start=4, **STEPS), 0, 1)  # after two steps of meta-batch 2
    assert resumed == full[2:]


def test_ranks_split_each_meta_batch():
    whole = _take(ArchSteps(start=0, **{**STEPS, "meta_batch": 4}), 0, 2)
    shares = [_take(ArchSteps(start=0, **{**STEPS, "meta_batch": 4}, rank=r, world=2), 0, 2) for r in (0, 1)]
    for i, step in enumerate(whole):
        assert step[0::2] == shares[0][i] and step[1::2] == shares[1][i]


def test_more_than_one_arch_worker_is_refused():
    with pytest.raises(ValueError, match="arch_workers must be 0"):
        meta_batches(ArchSteps(start=0, **STEPS), 2)


def test_ghn2_gradients_are_bit_identical_on_two_threads():
    """Message sources repeat within a level; gathering them by advanced indexing accumulated its
    gradient in a thread-dependent order on CPU, so two identical backward passes differed."""
    prev = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        ghn = build_ghn(GHNConfig.preset("ghn2", num_classes=10, image_size=16))
        genos = list(itertools.islice(train_stream(seed=0), 2))
        graphs = [build_graph(n) for n in build_networks([(g, 32) for g in genos], 10, 16, 256)]

        def grads() -> dict[str, torch.Tensor]:
            ghn.zero_grad()
            loss = sum((w ** 2).sum() for pred in ghn(graphs) for w in pred.values())
            loss.backward()
            return {k: p.grad.clone() for k, p in ghn.named_parameters()}

        a, b = grads(), grads()
    finally:
        torch.set_num_threads(prev)
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"gradients differ between identical passes: {differ}"
