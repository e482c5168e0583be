"""DeepNets-1M-style architecture space (the GHN-2 paper's generator), without torch at import.

::

    from archlab.space import generate_split, build_network, load_split
    for rec in generate_split("test", n=10):      # {"id", "hash", "genotype", "meta"}
        ...
    net = build_network(load_split("test")[0], num_classes=10, input="cifar", C=32)

Lower layer: never imports ``archlab.ghn``, ``archlab.engine`` or ``archlab.cli``. Torch is
imported only by :func:`build_network` / :func:`build_predefined` (first use).
"""

from __future__ import annotations

from ._genotype import CELL_OPS, VIT, Genotype
from ._plan import InvalidGenotype, input_kind, plan_network
from ._sample import SAMPLERS, SamplerSpec, sample_genotype
from ._splits import CHUNK, EVAL_SPLITS, SPLITS, generate_split, load_split, train_stream
from ._stats import analytic_stats
from ._storage import read_genotypes, read_split, write_split

__all__ = [
    "genotype_graph",
    "Genotype", "CELL_OPS", "VIT", "InvalidGenotype", "plan_network", "input_kind",
    "sample_genotype", "SAMPLERS", "SamplerSpec",
    "SPLITS", "EVAL_SPLITS", "CHUNK", "generate_split", "train_stream", "load_split",
    "analytic_stats", "read_split", "write_split", "read_genotypes",
    "build_network", "build_predefined", "Network",
]

_LAZY = {"build_network", "build_predefined", "Network", "genotype_graph"}


def __getattr__(name: str):
    if name in _LAZY:
        from . import _graph, _network

        value = getattr(_graph if name == "genotype_graph" else _network, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archlab.space' has no attribute {name!r}")
