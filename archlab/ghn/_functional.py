"""Running a target network on predicted parameters."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase


def use_batch_stats(model: nn.Module) -> nn.Module:
    """Make every BatchNorm (and InstanceNorm with running stats) normalise with batch statistics.

    GHNs do not predict running statistics, so a model with predicted parameters must use the
    statistics of each input batch, in train and in eval mode: ``track_running_stats`` is set to
    False and the running buffers to None. Modifies ``model`` in place and returns it.
    """
    for m in model.modules():
        if isinstance(m, _NormBase) and (m.track_running_stats or m.running_mean is not None):
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
    return model


def functional_logits(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` with its parameters replaced by ``params`` (e.g. one dict of
    :meth:`GHN.forward`), differentiable w.r.t. ``params``; BatchNorm uses batch statistics
    (``model`` is switched with :func:`use_batch_stats`). Parameters missing from ``params`` keep
    the model's own values; tied weights follow their first name."""
    use_batch_stats(model)
    return torch.func.functional_call(model, params, (x,), strict=False, tie_weights=True)


@contextlib.contextmanager
def predicted_parameters(model: nn.Module, params: dict[str, torch.Tensor]) -> Iterator[nn.Module]:
    """Within the block, ``model``'s parameters named in ``params`` are those tensors (BatchNorm
    switched to batch statistics, as :func:`functional_logits`). Unlike a functional call, the
    swap lasts until the block ends, so a backward pass that recomputes activations (checkpointed
    cells) still sees the predicted values. Unknown names raise a KeyError naming them."""
    use_batch_stats(model)
    saved: list[tuple[nn.Module, str, torch.Tensor | None]] = []
    try:
        for name, tensor in params.items():
            owner, _, attr = name.rpartition(".")
            try:
                module = model.get_submodule(owner) if owner else model
            except AttributeError:
                module = None
            if module is None or attr not in module._parameters:
                raise KeyError(f"{name!r} is not a parameter of {type(model).__name__}")
            saved.append((module, attr, module._parameters[attr]))
            module._parameters[attr] = tensor
        yield model
    finally:
        for module, attr, original in reversed(saved):
            module._parameters[attr] = original
