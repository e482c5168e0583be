"""Small training utilities shared by GHN training, evaluation and fine-tuning.

Budgets (epochs / steps / wall-clock minutes), capture and restore of every random-number generator, top-k accuracy, and an append-only metrics CSV that
can be rewound to a checkpoint's step when a run resumes.
"""

from __future__ import annotations

import csv
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Budget:
    """How long to train: exactly one of ``epochs``, ``steps`` or ``minutes``.

    ``total_steps(batches_per_epoch)`` is known for epoch/step budgets (a deterministic run);
    a minutes budget ends on the clock, so its progress is measured in time.
    """

    epochs: float | None = None
    steps: int | None = None
    minutes: float | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("epochs", "steps", "minutes") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of epochs, steps, minutes; got {given or 'none'}"
            )
        value = getattr(self, given[0])
        if not value > 0:
            raise ValueError(f"budget {given[0]} must be > 0; got {value}")

    def total_steps(self, batches_per_epoch: int) -> int | None:
        if self.steps is not None:
            return int(self.steps)
        if self.epochs is not None:
            return max(1, int(math.ceil(self.epochs * batches_per_epoch)))
        return None

    def progress(self, step: int, elapsed_s: float, batches_per_epoch: int) -> float:
        """Fraction of the budget used, in [0, 1] (drives the lr schedule and stopping)."""
        total = self.total_steps(batches_per_epoch)
        if total is not None:
            return min(1.0, step / total)
        return min(1.0, elapsed_s / (60.0 * float(self.minutes)))

    def describe(self) -> str:
        if self.steps is not None:
            return f"{self.steps} steps"
        if self.epochs is not None:
            return f"{self.epochs:g} epochs"
        return f"{self.minutes:g} minutes"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """States of Python's, numpy's, torch's CPU and (if present) CUDA generators, as tensors
    and plain numbers only, so that ``torch.load(weights_only=True)`` reads them back."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators from :func:`rng_state`'s dict."""
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss_next"]))
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks=(1, 5)) -> list[int]:
    """Number of samples whose target is among the top-k logits, for each k (k capped at C)."""
    maxk = min(max(ks), logits.shape[-1])
    pred = logits.topk(maxk, dim=-1).indices
    hit = pred.eq(targets.view(-1, 1))
    return [int(hit[:, : min(k, maxk)].any(dim=1).sum()) for k in ks]


def is_oom(err: BaseException) -> bool:
    """True for CUDA and CPU out-of-memory errors."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    msg = str(err)
    return "out of memory" in msg or "can't allocate memory" in msg or "not enough memory" in msg


class CSVLog:
    """Append rows (dicts with fixed ``fields``) to a CSV, flushing each row.

    With ``rewind_to=step`` an existing file is kept up to rows with ``step <= rewind_to``
    (rows written after the checkpoint a run resumes from are dropped); otherwise it is replaced.
    """

    def __init__(self, path: str | os.PathLike, fields: list[str], rewind_to: int | None = None):
        self.path = Path(path)
        self.fields = list(fields)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[dict[str, str]] = []
        if rewind_to is not None and self.path.exists():
            with open(self.path, newline="") as f:
                kept = [r for r in csv.DictReader(f) if int(float(r["step"])) <= rewind_to]
        self._f = open(self.path, "w", newline="")  # noqa: SIM115 (kept open for appends)
        self._w = csv.DictWriter(self._f, fieldnames=self.fields, extrasaction="ignore")
        self._w.writeheader()
        for r in kept:
            self._w.writerow(r)
        self._f.flush()

    def write(self, row: dict[str, Any]) -> None:
        self._w.writerow({k: _fmt(v) for k, v in row.items()})
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


class Stopwatch:
    """Wall-clock time that survives resumption: ``offset`` seconds were spent in earlier runs."""

    def __init__(self, offset: float = 0.0):
        self.offset = float(offset)
        self._t0 = time.monotonic()

    def elapsed(self) -> float:
        return self.offset + time.monotonic() - self._t0
