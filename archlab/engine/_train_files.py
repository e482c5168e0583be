"""The files of a GHN training run: claim ``out`` (lock + refuse to destroy what is not the
run's own), read the resumable state safely, and say at start-up what the run does.

See :mod:`archlab.engine._train` for the files: ``out``, ``<out>.resume.pt``,
``<out>.metrics.csv`` and ``<out>.lock``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from archlab._lock import hold_lock
from archlab.engine import _ddp
from archlab.engine._common import Budget
from archlab.errors import ArchlabError, OutputConflictError, UsageError
from archlab.ghn import CheckpointError
from archlab.ghn._checkpoint import load_torch_file, read_checkpoint

if TYPE_CHECKING:
    from archlab.engine._train import TrainConfig

_MUST_MATCH = ("ghn", "dataset", "meta_batch", "batch_size", "widths", "seed", "fc_dim", "ghn_overrides",
               "augment")


def _check_resumable(saved: dict[str, Any], cfg: TrainConfig) -> None:
    now = dataclasses.asdict(cfg)
    for k in _MUST_MATCH:
        a, b = saved.get(k), now.get(k)
        if (list(a) if isinstance(a, tuple) else a) != (list(b) if isinstance(b, tuple) else b):
            raise ValueError(
                f"cannot resume {cfg.state_path}: it was trained with {k}={a!r}, now {k}={b!r}"
            )


_REFUSE = "pass another out (--out), delete it, or pass overwrite=True (--overwrite)"


def _check_outputs(cfg: TrainConfig) -> None:
    """Refuse to start if the run would destroy a file that is not its own to replace."""
    out, state = Path(cfg.out), cfg.state_path
    if cfg.resume and cfg.overwrite:
        raise UsageError("resume (--resume) and overwrite (--overwrite) exclude each other")
    if out.is_dir():
        raise OutputConflictError(f"out {out} is a directory; give a file path such as {out / 'ghn.pt'}")
    if out.exists() and not out.is_file():
        raise OutputConflictError(f"out {out} exists and is not a regular file; pass another out (--out)")
    if state.exists() and not (cfg.resume or cfg.overwrite):
        raise ValueError(f"{state} exists; pass resume=True (--resume) to continue that run, "
                         "overwrite=True (--overwrite) to start afresh, or delete it")
    if cfg.overwrite or not out.exists():
        return
    try:
        read_checkpoint(out)
    except CheckpointError:
        raise OutputConflictError(f"{out} exists and is not an archlab GHN checkpoint; refusing "
                                  f"to replace it: {_REFUSE}") from None
    if not state.exists():
        raise OutputConflictError(f"{out} is a finished GHN checkpoint (no {state.name} beside it "
                                  f"to resume); refusing to replace it: {_REFUSE}")


@contextmanager
def claim_outputs(cfg: TrainConfig, info: _ddp.DistInfo) -> Iterator[None]:
    """Hold ``cfg.lock_path`` and check the outputs, on rank 0; every rank fails if that fails."""
    with ExitStack() as stack:
        err: Exception | None = None
        if info.is_main:
            try:
                stack.enter_context(hold_lock(cfg.lock_path, f"training {cfg.out}"))
                _check_outputs(cfg)
                if cfg.overwrite:  # afresh: a kill before the first checkpoint must not resume it
                    cfg.state_path.unlink(missing_ok=True)
            except (ArchlabError, ValueError) as e:
                err = e
        if _ddp.any_rank(err is not None, info):
            raise err if err is not None else UsageError(f"rank 0 could not claim {cfg.out}")
        yield


_RESUME_KEYS = ("config", "ghn", "optimizer", "scaler", "state", "rng")


def read_resume(cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    """The checked training state at ``cfg.state_path`` (loaded with ``weights_only=True``)."""
    path = cfg.state_path
    ck = load_torch_file(path, device, what="archlab training state (.resume.pt)")
    missing = [k for k in _RESUME_KEYS if k not in ck] if isinstance(ck, dict) else list(_RESUME_KEYS)
    if missing or not isinstance(ck["config"], dict):
        raise CheckpointError(f"{path}: not an archlab training state (lacks {missing or ['config']}); "
                              "delete it to start afresh")
    _check_resumable(ck["config"], cfg)
    return ck


def startup_line(cfg: TrainConfig, resumed: bool, step: int, budget: Budget) -> str:
    """Whether this run resumes (and from which step) or starts afresh, and where it saves."""
    every = f"every {cfg.ckpt_every} steps" + (
        f" or {cfg.ckpt_minutes:g} min" if cfg.ckpt_minutes is not None else "")
    if resumed:
        what = f"resuming {cfg.state_path} at step {step} (budget {budget.describe()})"
    elif cfg.resume:
        what = f"no training state at {cfg.state_path}: starting afresh at step 0"
    else:
        what = f"starting afresh at step 0 (budget {budget.describe()})"
    return f"{what}; checkpoints {every} to {cfg.state_path}"
