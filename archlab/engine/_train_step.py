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

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from archlab.engine._common import is_oom, topk_correct
from archlab.engine._ddp import DistInfo, all_sum
from archlab.ghn import functional_logits


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
) -> StepStats:
    """Update ``ghn`` (possibly DDP-wrapped) on ``models`` (this rank's share) and one image batch."""

    stats = StepStats()
    amp = scaler.is_enabled()
    device_type = images.device.type
    optimizer.zero_grad(set_to_none=True)
    limit = explode_limit(running_loss, explode_floor, explode_factor)

    losses: list[torch.Tensor] = []
    try:
        with torch.autocast(device_type, enabled=amp):
            predicted = ghn(graphs) if graphs else []
    except RuntimeError as e:  # the whole meta-batch did not fit
        if not is_oom(e):
            raise
        _free(device_type)
        predicted = []
        stats.skipped["oom"] += len(models)

    for model, params in zip(models, predicted, strict=False):
        try:
            with torch.autocast(device_type, enabled=amp):
                logits = functional_logits(model, params, images)
            loss = F.cross_entropy(logits.float(), targets)
        except RuntimeError as e:
            if not is_oom(e):
                raise
            _free(device_type)
            stats.skipped["oom"] += 1
            continue
        value = float(loss.detach())
        if not math.isfinite(value):
            stats.skipped["nan"] += 1
            continue
        stats.finite_sum += value
        stats.n_finite += 1
        if value > limit:
            stats.skipped["explode"] += 1
            continue
        losses.append(loss)
        stats.loss_sum += value
        stats.n_ok += 1
        c1, _ = topk_correct(logits.detach().float(), targets)
        stats.correct += c1
        stats.seen += len(targets)

    n_ok_global = all_sum(stats.n_ok, info)
    # zero-weighted term: every parameter receives a gradient on every rank (DDP-safe)
    anchor = sum(p.sum() for p in ghn.parameters() if p.requires_grad) * 0.0
    if n_ok_global > 0 and losses:
        total = torch.stack(losses).sum() * (info.world / n_ok_global) + anchor
    else:
        total = anchor
    scaler.scale(total).backward()
    if n_ok_global == 0:
        optimizer.zero_grad(set_to_none=True)
        return stats

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


def _free(device_type: str) -> None:
    if device_type == "cuda":
        torch.cuda.empty_cache()
