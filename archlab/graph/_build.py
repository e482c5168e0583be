"""``build_graph``: trace a model and return its :class:`ArchGraph`."""

from __future__ import annotations

import logging

import torch.nn as nn

from ._assemble import assemble
from ._resolve import native_input_size, normalize_input_size
from ._rules import MODES, PUBLISHED
from ._trace import RawTrace, run_forward
from ._types import ArchGraph, GraphError

log = logging.getLogger("archlab.graph")
SIZE_HINT = "pass --input-size CxHxW (input_size=) with a size it runs at"
_noted: set[tuple] = set()


class _RunError(GraphError):
    """The model's forward pass failed at the traced input size."""


def build_graph(model: nn.Module, input_size: int | tuple[int, ...] | str | None = None,
                strict: bool = False, mode: str = "ghn2",
                fallback_size: int | tuple[int, ...] | str | None = None,
                published: bool = False) -> ArchGraph:
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
        fallback_size: with ``input_size=None``, the size to try when the model cannot run at its
            native size (e.g. the image size a GHN predicts for); a one-line warning on the
            ``archlab.graph`` logger and ``graph.meta["notes"]`` say so.
        published: build the graph exactly as the published code of the mode does (ppuda for
            ``"ghn2"``, ghn3 for ``"ghn3"``), for the published GHNs: parameters of modules that
            code does not know get no node (``graph.meta["not_modelled"]``), and its other
            differences (see ``archlab.graph._published``).

    Tracing runs on meta tensors (no compute, no activation memory) in eval mode; parameters used
    only in training mode (auxiliary heads) are picked up by a second, train-mode trace.
    """
    if not isinstance(model, nn.Module):
        raise GraphError(f"build_graph expects a torch.nn.Module, got {type(model).__name__}")
    if mode not in MODES:
        raise GraphError(f"unknown graph mode {mode!r}; choose from {MODES}")
    size = native_input_size(model) if input_size is None else normalize_input_size(input_size)
    fallback = normalize_input_size(fallback_size) if input_size is None and fallback_size is not None else None
    fallback = None if fallback == size else fallback
    param_shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    rules_mode = mode + PUBLISHED if published else mode
    trainable = {n: p.requires_grad for n, p in model.named_parameters()}

    try:
        graph = _graph_for_mode(model, size, param_shapes, False, rules_mode, hint=fallback is None)
    except _RunError as native_error:
        if fallback is None:
            raise
        graph = _at_fallback(model, size, fallback, param_shapes, rules_mode, native_error)
        size = fallback
    if _unused(graph, trainable):
        train_graph = _graph_for_mode(model, size, param_shapes, True, rules_mode)
        if len(_unused(train_graph, trainable)) < len(_unused(graph, trainable)):
            graph = train_graph
    if published:
        from ._published import published_graph

        graph = published_graph(model, graph, "ppuda" if mode == "ghn2" else "ghn3")
    graph.trainable = trainable
    graph.unused = [p for p in _unused(graph, trainable) if p not in graph.meta.get("not_modelled", ())]
    graph.meta["model"] = type(model).__name__
    if strict and (graph.fallbacks or graph.unused):
        problems = [f"{f.param} (module {f.module or '<root>'}): {f.reason}" for f in graph.fallbacks]
        problems += [f"{p}: never used by the forward pass" for p in graph.unused]
        raise GraphError(f"strict graph of {type(model).__name__} failed:\n  " + "\n  ".join(problems))
    return graph.validate()


def _at_fallback(model, native, fallback, param_shapes, mode: str, native_error: GraphError) -> ArchGraph:
    name, a, b = type(model).__name__, _size_s(native), _size_s(fallback)
    try:
        graph = _graph_for_mode(model, fallback, param_shapes, False, mode, hint=False)
    except _RunError as e:
        raise GraphError(f"{name} cannot run at its native input size {a} ({native_error.__cause__}) "
                         f"nor at {b} ({e.__cause__}); {SIZE_HINT}") from e
    note = f"{name} cannot run at its native input size {a}; built its graph at {b}, the image size it is used at"
    graph.meta.setdefault("notes", []).append(note)
    if (type(model), native, fallback) not in _noted:
        _noted.add((type(model), native, fallback))
        log.warning("note: %s (choose with --input-size)", note)
    return graph


def _size_s(size) -> str:
    return "x".join(map(str, size))


def _graph_for_mode(model, size, param_shapes, train: bool, mode: str, hint: bool = True) -> ArchGraph:
    trace = _trace(model, size, train, hint)
    graph = assemble(trace, param_shapes, size, mode)
    graph.meta.update({"traced_on": trace.device, "mode": trace.mode, "graph_mode": mode, **({"notes": trace.notes} if trace.notes else {})})
    return graph


def _trace(model: nn.Module, size, train: bool, hint: bool = True) -> RawTrace:
    name = type(model).__name__
    try:
        return run_forward(model, size, "meta", train)
    except Exception as meta_error:  # noqa: BLE001 - retried below with real tensors, then reported
        try:
            trace = run_forward(model, size, "real", train)
        except Exception as real_error:
            raise _RunError(
                f"{name} cannot run at input size {_size_s(size)}: {type(real_error).__name__}: "
                f"{real_error}" + (f"; {SIZE_HINT}" if hint else "")
            ) from real_error
        trace.notes.append(f"meta tracing failed ({type(meta_error).__name__}: {meta_error}); traced with real tensors")
        return trace


def _unused(graph: ArchGraph, trainable: dict[str, bool]) -> list[str]:
    used = {p for n in graph.nodes for p in n.params}
    return [p for p, t in trainable.items() if t and p not in used]
