"""DeepNets-1M splits: definitions, deterministic generation, loading of the shipped files.

Determinism: a split is generated in chunks of :data:`CHUNK` genotypes; chunk ``c`` of split
``s`` with seed ``seed`` draws from ``numpy.random.Generator(PCG64(SeedSequence([seed,
SPLIT_KEYS[s], c])))``. The output is therefore identical on every machine, for any number of
worker processes, and a shorter split is a prefix of a longer one. Within a chunk, genotypes are
unique; every split except VAL (and WIDE, which *is* the first 100 TEST genotypes) re-samples any
genotype whose hash is in the reserved set: the default VAL split (and, for all but TEST, the
default TEST split).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from functools import cache

import numpy as np

from ._genotype import Genotype
from ._sample import SAMPLERS, sample_with_stats
from ._stats import analytic_stats
from ._storage import read_genotypes, split_path

CHUNK = 1000
SPLIT_KEYS = {"train": 0, "val": 1, "test": 2, "wide": 3, "deep": 4, "dense": 5, "bnfree": 6,
              "search": 7}

SPLITS: dict[str, dict] = {
    "train": {"seed": 0, "n": 1_000_000, "sampler": "train", "reserved": ("val", "test"),
              "doc": "4-18 cells, 1-4 nodes per cell (1-2 for nets deeper than 7-10 cells), <= 10M params"},
    "val": {"seed": 0, "n": 500, "sampler": "val", "reserved": (),
            "doc": "in-distribution validation (train distribution)"},
    "test": {"seed": 0, "n": 500, "sampler": "test", "reserved": ("val",),
             "doc": "in-distribution test (train distribution)"},
    "wide": {"seed": 0, "n": 100, "source": "test", "reserved": (),
             "width_mult": {"cifar": 4, "imagenet": 2},
             "doc": "the first 100 TEST genotypes built wider: C x4 (CIFAR) or x2 (ImageNet)"},
    "deep": {"seed": 0, "n": 100, "sampler": "deep", "reserved": ("val", "test"),
             "doc": "10-36 cells, <= 100M params"},
    "dense": {"seed": 0, "n": 100, "sampler": "dense", "reserved": ("val", "test"),
              "doc": "2-10 nodes per cell (2-6 for deep nets), <= 100M params"},
    "bnfree": {"seed": 0, "n": 100, "sampler": "bnfree", "reserved": ("val", "test"),
               "doc": "train distribution without any BatchNorm"},
    "search": {"seed": 0, "n": 1000, "sampler": "search", "reserved": ("val", "test"),
               "doc": "for architecture search: BN, 6-20 cells, up to 6 nodes per cell"},
    "predefined": {"models": ("resnet50", "vit"),
                   "doc": "torchvision ResNet-50 (CIFAR stem for 32x32) and the ViT-like genotype (C=128, 12 cells); "
                          "build with archlab.space.build_predefined"},
}
EVAL_SPLITS = ("val", "test", "wide", "deep", "dense", "bnfree")
META_C, META_FC = 32, 256


def _check_split(split: str) -> dict:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    spec = SPLITS[split]
    if "models" in spec:
        raise ValueError(f"split {split!r} holds torchvision/predefined models, not genotypes; "
                         "use archlab.space.build_predefined(name) with names " + ", ".join(spec["models"]))
    return spec


@cache
def _default_hashes(split: str) -> frozenset[str]:
    return frozenset(r["hash"] for r in generate_split(split))


@cache
def reserved_hashes(split: str) -> frozenset[str]:
    """Hashes a split must not contain (those of the default VAL / TEST splits)."""
    return frozenset().union(*(_default_hashes(o) for o in SPLITS[split].get("reserved", ())))


def _iter_chunk(split: str, seed: int, chunk: int, count: int) -> Iterator[tuple[Genotype, dict]]:
    spec = SPLITS[split]
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, SPLIT_KEYS[split], chunk])))
    exclude = set(reserved_hashes(split))
    for _ in range(count):
        g, stats = sample_with_stats(rng, SAMPLERS[spec["sampler"]], exclude)
        exclude.add(g.hash)
        yield g, stats


def _chunk_records(split: str, seed: int, chunk: int, count: int) -> list[dict]:
    return [_record(chunk * CHUNK + j, g, stats)
            for j, (g, stats) in enumerate(_iter_chunk(split, seed, chunk, count))]


def _record(idx: int, g: Genotype, stats: dict, C: int = META_C, C_imagenet: int = META_C) -> dict:
    meta = {"C": C, "fc_dim": META_FC, "params": stats["params"], "flops": stats["flops"],
            "params_imagenet": stats["params_imagenet"], "n_cells": g.n_cells,
            "num_nodes": stats["num_nodes"], "nodes": stats["nodes"]}
    if C_imagenet != C:
        meta["C_imagenet"] = C_imagenet
    return {"id": idx, "hash": g.hash, "genotype": g.to_dict(), "meta": meta}


def _wide_records(n: int) -> Iterator[dict]:
    mult = SPLITS["wide"]["width_mult"]
    for rec in itertools.islice(generate_split("test"), n):
        g = Genotype.from_dict(rec["genotype"])
        c, ci = META_C * mult["cifar"], META_C * mult["imagenet"]
        stats = analytic_stats(g, C=c)
        stats["params_imagenet"] = analytic_stats(g, C=ci, input="imagenet")["params"]
        yield _record(rec["id"], g, stats, C=c, C_imagenet=ci)


def _chunk_job(args: tuple[str, int, int, int]) -> list[dict]:
    return _chunk_records(*args)


def generate_split(split: str, n: int | None = None, seed: int | None = None,
                   workers: int = 1) -> Iterator[dict]:
    """Yield the records ``{"id", "hash", "genotype", "meta"}`` of ``split`` (deterministic).

    ``n`` defaults to the split's size in :data:`SPLITS` and ``seed`` to its documented seed;
    ``workers > 1`` generates chunks in that many processes (same output, in order).
    ``meta``: ``params``/``flops`` (MACs)/``num_nodes``/``nodes`` (graph nodes by op type) at
    CIFAR size with width ``meta["C"]`` (32; WIDE: 128) and fc width 256, ``params_imagenet``
    and ``n_cells`` (see :func:`archlab.space.analytic_stats`).
    """
    spec = _check_split(split)
    n = spec["n"] if n is None else int(n)
    seed = spec["seed"] if seed is None else int(seed)
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    if split == "wide":
        if n > SPLITS["test"]["n"]:
            raise ValueError(f"wide has at most {SPLITS['test']['n']} genotypes (the TEST split); got n={n}")
        yield from _wide_records(n)
        return
    jobs = [(split, seed, c, min(CHUNK, n - c * CHUNK)) for c in range((n + CHUNK - 1) // CHUNK)]
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield from _chunk_job(job)
        return
    yield from _parallel(jobs, workers)


def _parallel(jobs: list, workers: int) -> Iterator[dict]:
    import multiprocessing as mp
    import sys
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    reserved_hashes(jobs[0][0])  # computed once here; forked workers inherit the cache
    fork_ok = "fork" in mp.get_all_start_methods() and "torch" not in sys.modules
    ctx = mp.get_context("fork" if fork_ok else "spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending: deque = deque()
        it = iter(jobs)
        for job in itertools.islice(it, 2 * workers):
            pending.append(pool.submit(_chunk_job, job))
        while pending:
            records = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(_chunk_job, nxt))
            yield from records


def train_stream(seed: int = 0) -> Iterator[Genotype]:
    """Endless deterministic stream of TRAIN genotypes (with ``seed=0``: the TRAIN split, then on)."""
    for chunk in itertools.count():
        for g, _ in _iter_chunk("train", seed, chunk, CHUNK):
            yield g


def load_split(name: str, root: str | os.PathLike | None = None) -> list[Genotype]:
    """Genotypes of split ``name``: the shipped file inside the package, or ``<root>/<name>.jsonl``
    for splits generated into a user folder (``archlab generate --split NAME --out ROOT``)."""
    _check_split(name)
    path = split_path(name, root)
    if not path.is_file():
        where = f"folder {str(root)!r}" if root is not None else "the installed package (not shipped)"
        raise FileNotFoundError(
            f"split file {name}.jsonl not found in {where}; generate it with "
            f"`archlab generate --split {name} --out {root or 'DIR'}` and pass that folder")
    return list(read_genotypes(path))
