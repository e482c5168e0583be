"""``build_graph``: trace a model and return its :class:`ArchGraph`."""

from __future__ import annotations

import torch.nn as nn

from ._assemble import assemble
from ._resolve import native_input_size, normalize_input_size
from ._rules import MODES
from ._trace import RawTrace, run_forward
from ._types import ArchGraph, GraphError


def build_graph(model: nn.Module, input_size: int | tuple[int, ...] | str | None = None,
                strict: bool = False, mode: str = "ghn2") -> ArchGraph:
    """Trace ``model`` and return its operation graph.

    Args:
        model: any ``nn.Module`` taking one image batch ``[B, C, H, W]``.
        input_size: ``None`` for the model's native size (see ``native_input_size``), else
            ``224``, ``(3, 224, 224)`` or ``"3x224x224"``.
        strict: raise instead of typing a parameter by a fallback rule or leaving it unused.
        mode: ``"ghn2"`` builds the graphs of the published GHN-2 code (facebookresearch/ppuda)
            for the networks it handles (same node types and edges, up to the choice among valid
            topological orders); ``"ghn3"`` follows GHN-3 where it differs (sigmoid-gated
            squeeze-excitation products become ``cse`` nodes).

    Tracing runs on meta tensors (no compute, no activation memory) in eval mode; parameters used
    only in training mode (auxiliary heads) are picked up by a second, train-mode trace.
    """
    if not isinstance(model, nn.Module):
        raise GraphError(f"build_graph expects a torch.nn.Module, got {type(model).__name__}")
    if mode not in MODES:
        raise GraphError(f"unknown graph mode {mode!r}; choose from {MODES}")
    size = native_input_size(model) if input_size is None else normalize_input_size(input_size)
    param_shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    trainable = {n: p.requires_grad for n, p in model.named_parameters()}

    graph = _graph_for_mode(model, size, param_shapes, False, mode)
    if _unused(graph, trainable):
        train_graph = _graph_for_mode(model, size, param_shapes, True, mode)
        if len(_unused(train_graph, trainable)) < len(_unused(graph, trainable)):
            graph = train_graph
    graph.trainable = trainable
    graph.unused = _unused(graph, trainable)
    graph.meta["model"] = type(model).__name__
    if strict and (graph.fallbacks or graph.unused):
        problems = [f"{f.param} (module {f.module or '<root>'}): {f.reason}" for f in graph.fallbacks]
        problems += [f"{p}: never used by the forward pass" for p in graph.unused]
        raise GraphError(f"strict graph of {type(model).__name__} failed:\n  " + "\n  ".join(problems))
    return graph.validate()


def _graph_for_mode(model, size, param_shapes, train: bool, mode: str) -> ArchGraph:
    trace = _trace(model, size, train)
    graph = assemble(trace, param_shapes, size, mode)
    graph.meta.update({"traced_on": trace.device, "mode": trace.mode, "graph_mode": mode, **({"notes": trace.notes} if trace.notes else {})})
    return graph


def _trace(model: nn.Module, size, train: bool) -> RawTrace:
    name = type(model).__name__
    size_s = "x".join(map(str, size))
    try:
        return run_forward(model, size, "meta", train)
    except Exception as meta_error:  # noqa: BLE001 - retried below with real tensors, then reported
        try:
            trace = run_forward(model, size, "real", train)
        except Exception as real_error:
            raise GraphError(
                f"{name} cannot run at input size {size_s}: {type(real_error).__name__}: {real_error}"
            ) from real_error
        trace.notes.append(f"meta tracing failed ({type(meta_error).__name__}: {meta_error}); traced with real tensors")
        return trace


def _unused(graph: ArchGraph, trainable: dict[str, bool]) -> list[str]:
    used = {p for n in graph.nodes for p in n.params}
    return [p for p, t in trainable.items() if t and p not in used]
