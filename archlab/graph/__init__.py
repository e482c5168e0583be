"""Architecture graphs: trace any ``nn.Module`` into an :class:`ArchGraph`.

Lower layer: never imports ``archlab.ghn``, ``archlab.engine`` or ``archlab.cli``.
"""

from ._batch import DenseGraphs, PackedGraphs, collate, to_dense, uncollate
from ._build import build_graph
from ._plot import plot_graph
from ._resolve import native_input_size, normalize_input_size, register_input_size, resolve_model
from ._rules import ParamUse, register_op_rule, register_param_rule
from ._types import ArchGraph, Fallback, GraphError, Node
from ._vocab import OP_INDEX, OP_TYPES, op_index
from ._zoo import ZooRow, zoo_coverage, zoo_model, zoo_models

__all__ = [
    "ArchGraph", "Node", "Fallback", "GraphError", "build_graph", "resolve_model",
    "native_input_size", "normalize_input_size", "register_input_size",
    "register_param_rule", "register_op_rule", "ParamUse",
    "collate", "to_dense", "uncollate", "PackedGraphs", "DenseGraphs",
    "OP_TYPES", "OP_INDEX", "op_index", "plot_graph", "zoo_coverage", "zoo_models", "zoo_model", "ZooRow",
]
