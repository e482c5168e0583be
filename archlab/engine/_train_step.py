"""One GHN meta-batch update: predict parameters for several architectures, run each on the
shared image batch, average the losses and take one optimiser step.

Robustness rules (the reference implementation's running loss reached ~1e24):

* an architecture whose forward pass runs out of memory is dropped from the meta-batch;
* an architecture whose loss is NaN/inf, or "explodes" (above :func:`explode_limit`: ``max(floor,
  factor * running average)``, the floor by default 3x the chance loss ``ln(num_classes)``), is
  dropped and counted (on digits, single architectures reached losses of 15-95 early in training,
  6-40x chance). The running average includes dropped losses, so a run whose losses all start
  above the floor is not locked out: the limit rises to meet them;
* if no architecture is left, or the gradient norm is not finite, the update is skipped.

Under ``DistributedDataParallel`` every rank always runs a backward pass (a zero-weighted sum of
all GHN parameters keeps the reducer in step), so ranks never deadlock on a dropped architecture.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from archlab.engine._common import is_oom, topk_correct
from archlab.engine._ddp import DistInfo, all_sum
from archlab.ghn import predicted_parameters


@dataclass
class StepStats:
    """What one meta-batch update did (counts are for this rank's architectures)."""

    loss_sum: float = 0.0
    n_ok: int = 0
    correct: int = 0
    seen: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: {"nan": 0, "explode": 0, "oom": 0})
    stepped: bool = False
    grad_norm: float = float("nan")
    finite_sum: float = 0.0  # every finite per-architecture loss, kept or dropped (the guard's average)
    n_finite: int = 0

    @property
    def loss(self) -> float:
        return self.loss_sum / self.n_ok if self.n_ok else float("nan")


def chance_floor(num_classes: int, multiple: float = 3.0) -> float:
    """Default explosion floor: ``multiple`` x the loss of a uniform guess, ``ln(num_classes)``."""
    return multiple * math.log(max(num_classes, 2))


def explode_limit(running_loss: float | None, floor: float, factor: float) -> float:
    """The loss above which an architecture is dropped: ``max(floor, factor * running_loss)``."""
    if running_loss is not None and math.isfinite(running_loss):
        return max(floor, factor * running_loss)
    return floor


def meta_step(
    ghn: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    models: list[torch.nn.Module],
    graphs: list,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    info: DistInfo,
    grad_clip: float,
    running_loss: float | None,
    explode_floor: float,
    explode_factor: float = 3.0,
    timings: dict[str, float] | None = None,
    checkpoint_activations: bool = False,
) -> StepStats:
    """Update ``ghn`` (possibly DDP-wrapped) on ``models`` (this rank's share) and one image batch.

    Memory-lean: the GHN predicts every architecture's parameters in one pass; each target network
    then runs forward and backward on its own *detached copies* of them, so only one network's
    activations are alive at a time; the collected gradients go back through the GHN in one
    backward pass (the same gradient as back-propagating the mean loss, without holding all the
    networks' graphs at once). ``checkpoint_activations``: DeepNets-1M target networks also
    recompute their cells' activations in the backward pass instead of keeping them (about one
    more forward pass; peak memory about one cell's activations). ``timings`` (optional)
    accumulates seconds per phase.
    """

    stats = StepStats()
    amp = scaler.is_enabled()
    device_type = images.device.type
    phase = _Phases(timings, device_type)
    optimizer.zero_grad(set_to_none=True)
    limit = explode_limit(running_loss, explode_floor, explode_factor)

    outputs: list[torch.Tensor] = []  # predicted tensors of kept architectures (GHN graph attached)
    grads: list[torch.Tensor] = []  # d(scaled loss)/d(tensor) for each of them
    try:
        with phase("ghn forward"), torch.autocast(device_type, enabled=amp):
            predicted = ghn(graphs) if graphs else []
    except RuntimeError as e:  # the whole meta-batch did not fit
        if not is_oom(e):
            raise
        _free(device_type)
        predicted = []
        stats.skipped["oom"] += len(models)

    with phase("target fwd/bwd"):
        for model, params in zip(models, predicted, strict=False):
            kept = _target_step(model, params, images, targets, scaler, amp, limit, stats,
                                checkpoint_activations)
            if kept is not None:
                outputs.extend(params[name] for name in kept)
                grads.extend(kept.values())
        del predicted

    n_ok_global = all_sum(stats.n_ok, info)
    with phase("ghn backward"):
        # zero-weighted term: every parameter receives a gradient on every rank (DDP-safe)
        anchor = sum(p.sum() for p in ghn.parameters() if p.requires_grad) * 0.0
        weight = info.world / n_ok_global if n_ok_global else 0.0
        torch.autograd.backward([anchor, *outputs],
                                [torch.ones_like(anchor), *(g.mul_(weight) for g in grads)])
        del outputs, grads
    if n_ok_global == 0:
        optimizer.zero_grad(set_to_none=True)
        return stats

    with phase("optimiser"):
        scaler.unscale_(optimizer)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
        stats.grad_norm = float(norm)
        if not math.isfinite(stats.grad_norm):
            stats.skipped["nan_grad"] = 1
            optimizer.zero_grad(set_to_none=True)
            if amp:
                scaler.update()  # lowers the scale after an overflow
            return stats
        scaler.step(optimizer)
        scaler.update()
    stats.stepped = True
    return stats


def _target_step(model, params: dict[str, torch.Tensor], images, targets, scaler, amp: bool,
                 limit: float, stats: StepStats, checkpoint: bool) -> dict[str, torch.Tensor] | None:
    """Forward and backward of one target network on detached copies of its predicted
    parameters; the gradients (of the scaled loss) by name, or None when it is dropped.
    ``checkpoint``: recompute cell activations in the backward pass (DeepNets-1M networks)."""
    device_type = images.device.type
    leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    names = [k for k in leaves if params[k].requires_grad]
    if hasattr(model, "checkpoint_cells"):
        model.checkpoint_cells = checkpoint
    try:
        with predicted_parameters(model, leaves):
            with torch.autocast(device_type, enabled=amp):
                out = model(images)
            logits = (out[0] if isinstance(out, tuple) else out).float()
            loss = F.cross_entropy(logits, targets)
            value = float(loss.detach())
            if not math.isfinite(value):
                stats.skipped["nan"] += 1
                return None
            stats.finite_sum += value
            stats.n_finite += 1
            if value > limit:
                stats.skipped["explode"] += 1
                return None
            found = torch.autograd.grad(scaler.scale(loss), [leaves[k] for k in names], allow_unused=True)
    except RuntimeError as e:
        if not is_oom(e):
            raise
        _free(device_type)
        stats.skipped["oom"] += 1
        return None
    finally:
        if hasattr(model, "checkpoint_cells"):
            model.checkpoint_cells = False
    stats.loss_sum += value
    stats.n_ok += 1
    c1, _ = topk_correct(logits.detach().float(), targets)
    stats.correct += c1
    stats.seen += len(targets)
    return {k: g for k, g in zip(names, found, strict=True) if g is not None}


class _Phases:
    """``with phases("name"):`` adds the block's wall time to ``timings[name]`` (no-op if None);
    on CUDA it synchronises first so the time belongs to the phase that queued the work."""

    def __init__(self, timings: dict[str, float] | None, device_type: str) -> None:
        self.timings, self.cuda = timings, device_type == "cuda"

    @contextlib.contextmanager
    def __call__(self, name: str):
        if self.timings is None:
            yield
            return
        if self.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self.cuda:
                torch.cuda.synchronize()
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0


def _free(device_type: str) -> None:
    if device_type == "cuda":
        torch.cuda.empty_cache()
