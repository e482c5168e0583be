"""Coverage of graph building over the torchvision classification zoo."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch


@dataclass
class ZooRow:
    model: str
    nodes: int
    edges: int
    params: int
    coverage: float
    fallbacks: int
    build_s: float
    error: str = ""


def zoo_models(pattern: str = "*") -> list[str]:
    """torchvision classification model names matching a glob ``pattern``."""
    import torchvision

    return [n for n in torchvision.models.list_models(module=torchvision.models) if fnmatch(n, pattern)]


def zoo_model(name: str, meta: bool = True):
    """Construct a torchvision model; on the meta device (no weight init) unless its constructor
    needs real values (RegNet), in which case on the CPU."""
    import torch
    import torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if meta:
            try:
                with torch.device("meta"):
                    return torchvision.models.get_model(name, weights=None)
            except RuntimeError:  # e.g. "Cannot copy out of meta tensor"
                pass
        return torchvision.models.get_model(name, weights=None)


def zoo_coverage(names: list[str]) -> Iterator[ZooRow]:
    """Build each model's graph; yield one row per model (errors are reported, not raised)."""
    from ._build import build_graph

    for name in names:
        model = zoo_model(name)
        try:
            t0 = time.perf_counter()
            g = build_graph(model)
            yield ZooRow(name, g.num_nodes, g.num_edges, g.num_params, g.coverage, len(g.fallbacks),
                         time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - a zoo report lists failures instead of stopping
            yield ZooRow(name, 0, 0, 0, 0.0, 0, 0.0, f"{type(e).__name__}: {e}")
