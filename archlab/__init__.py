"""archlab: neural-architecture analysis and search with Graph HyperNetworks.

Public API (heavy dependencies are imported on first use)::

    g = archlab.build_graph(model)      # ArchGraph
    ghn = archlab.load_ghn(path)        # a trained GHN
    ghn.predict(model); ghn.embed(models)
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "build_graph", "ArchGraph", "load_ghn"]

_LAZY = {
    "build_graph": ("archlab.graph", "build_graph"),
    "ArchGraph": ("archlab.graph", "ArchGraph"),
    "load_ghn": ("archlab.ghn", "load_ghn"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archlab' has no attribute {name!r}")
