"""Distributed (multi-GPU / multi-node) helpers for GHN training, on top of ``torch.distributed``.

Launch with ``torchrun --nproc_per_node N -m archlab train ...`` (or any launcher that sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``). Each rank builds and runs its share of a
meta-batch; gradients are averaged by :class:`torch.nn.parallel.DistributedDataParallel`.
CUDA ranks use NCCL, CPU ranks use gloo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from archlab._device import resolve_device


@dataclass(frozen=True)
class DistInfo:
    """Where this process runs: ``rank`` of ``world`` processes, on ``device``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1); else one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    base = resolve_device(device)
    if world <= 1:
        return DistInfo(device=base)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if base.type == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
        backend = "nccl"
    else:
        dev = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world=world, local_rank=local_rank, device=dev)


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``DistributedDataParallel`` around ``module`` when distributed, else ``module`` itself.

    ``device_ids`` stays ``None`` so that graph inputs are passed through untouched; the GHN
    moves them to its own device.
    """
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=None, broadcast_buffers=False)


def all_sum(value: float, info: DistInfo) -> float:
    """Sum a number over ranks (identity when not distributed)."""
    if not info.enabled:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=_comm_device(info))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank if ``flag`` is true on any rank."""
    return all_sum(1.0 if flag else 0.0, info) > 0


def params_in_sync(module: torch.nn.Module, info: DistInfo) -> bool:
    """Whether every rank holds bit-identical parameters (compares a float64 checksum)."""
    if not info.enabled:
        return True
    with torch.no_grad():
        s = sum(
            (p.detach().double() * (i + 1)).sum() for i, p in enumerate(module.parameters())
        )
    hi = s.reshape(1).to(_comm_device(info))
    neg_lo = (-s).reshape(1).to(_comm_device(info))
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(neg_lo, op=dist.ReduceOp.MAX)
    return bool(hi.item() == -neg_lo.item())


def _comm_device(info: DistInfo) -> torch.device:
    return info.device if info.device.type == "cuda" else torch.device("cpu")
