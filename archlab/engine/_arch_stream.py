"""The training stream of architectures: one meta-batch per step.

Graphs come straight from the genotypes (:func:`archlab.space.genotype_graph`, proven equal to
the traced graphs of the built networks in tests/test_space_graph.py) instead of tracing each
network on meta tensors (~70-150 ms per DARTS network, once a large share of a CPU step).
:func:`meta_batches` can also build the next steps in a background worker process (a
``DataLoader`` worker over :class:`ArchSteps`) while the main process trains; only the small
graphs cross the process boundary. The networks themselves are then built in the main process
(:func:`networks_of`) from the same genotypes and widths, so the parameter RNG stream (and with
it resumption) does not depend on the worker. Without a worker each network is built once, in
the stream, with the caller's RNG at the same point.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from archlab.space import build_network, genotype_graph, input_kind, train_stream


@dataclass
class ArchSteps(torch.utils.data.IterableDataset):
    """Endless ``[(genotype, width, network, graph), ...]`` per step: this rank's share of a
    meta-batch. In a worker process ``network`` is ``None`` (rebuilt by :func:`networks_of`).

    Genotypes come from :func:`archlab.space.train_stream` starting at position ``start``; every
    genotype gets a width drawn from ``random.Random(seed)`` in stream order (also for other
    ranks' shares), so the sequence only depends on ``seed``, never on where a run resumed.
    """

    seed: int
    start: int
    meta_batch: int
    widths: tuple[int, ...]
    num_classes: int
    image_size: int
    fc_dim: int
    rank: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        super().__init__()

    def __iter__(self) -> Iterator[list[tuple]]:

        width_rng = random.Random(self.seed)
        for _ in range(self.start):
            width_rng.choice(self.widths)
        stream = itertools.islice(train_stream(seed=self.seed), self.start, None)
        while True:
            genos = [next(stream) for _ in range(self.meta_batch)]
            pairs = [(g, width_rng.choice(self.widths)) for g in genos][self.rank :: self.world]
            in_worker = torch.utils.data.get_worker_info() is not None
            nets = [None] * len(pairs) if in_worker else build_networks(
                pairs, self.num_classes, self.image_size, self.fc_dim)
            kind = input_kind(self.image_size)
            yield [(g, c, n, genotype_graph(g, self.num_classes, input=kind, C=c, fc_dim=self.fc_dim,
                                            image_size=self.image_size))
                   for (g, c), n in zip(pairs, nets, strict=True)]


def networks_of(step: list[tuple], num_classes: int, image_size: int, fc_dim: int,
                device: torch.device | str) -> list[torch.nn.Module]:
    """The networks of one :class:`ArchSteps` step on ``device``, building those a worker left out."""
    return [(net if net is not None else build_networks([(g, c)], num_classes, image_size, fc_dim)[0]).to(device)
            for g, c, net, _ in step]


def build_networks(genos_widths, num_classes: int, image_size: int, fc_dim: int,
                   device: torch.device | str = "cpu") -> list[torch.nn.Module]:
    """The training networks (on ``device``) for ``(genotype, width)`` pairs."""

    kind = input_kind(image_size)
    return [build_network(g, num_classes, input=kind, C=c, fc_dim=fc_dim, image_size=image_size).to(device)
            for g, c in genos_widths]


def meta_batches(steps: ArchSteps, workers: int) -> Iterator[list[tuple]]:
    """Iterate ``steps``; with ``workers=1`` the graphs are built ahead in one worker process.

    More workers would hand steps over out of order, so ``workers`` is 0 or 1. Close the returned
    generator (or drop it) to stop the worker.
    """
    if workers not in (0, 1):
        raise ValueError(f"arch_workers must be 0 (build graphs in the training process) or 1, got {workers}")
    return _prefetched(steps) if workers else iter(steps)


def _prefetched(steps: ArchSteps) -> Iterator[list[tuple]]:
    # an own generator: the loader's worker seed must not be drawn from the global RNG stream
    loader = torch.utils.data.DataLoader(
        steps, batch_size=None, num_workers=1, collate_fn=_as_is, prefetch_factor=4,
        generator=torch.Generator().manual_seed(steps.seed),
        worker_init_fn=functools.partial(_die_with_parent, os.getpid()))
    it = iter(loader)
    try:
        yield from it
    finally:
        del it  # the DataLoader iterator shuts its worker down when dropped


def _die_with_parent(parent_pid: int, _worker_id: int) -> None:
    """Linux: the worker is killed when the training process dies, even by SIGKILL (the
    DataLoader's own watchdog can leave it hanging on its queue's feeder thread)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def _as_is(item):
    return item
