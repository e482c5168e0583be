"""Ground truth for rankings: each candidate trained with SGD, cached per candidate id.

:func:`ground_truth` trains every candidate from its default initialisation for ``epochs``
passes over the training split (SGD with Nesterov momentum 0.9, weight decay 5e-4, a cosine
schedule, gradients clipped at 5; the dataset's training augmentation) and records its top-1 on
the test split, together with the properties the GHN-2 paper predicts from graph embeddings: top-1
under Gaussian input noise (σ = ``NOISE_STD`` in normalised units, fixed noise), inference time,
the accuracy after the first epoch (convergence speed), training time and parameter count.
``GroundTruthSpec.train_images`` / ``test_images`` cut the splits to fixed seeded subsets (a
ground truth that fits a CPU on CIFAR-10). Each result is one JSON file in ``DIR/ground_truth/`` written
atomically, so a killed run resumes where it stopped; a worker takes a lock per candidate
(:mod:`archlab._lock`), so several processes share one cache without training anything twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from archlab._device import resolve_device
from archlab._io import atomic_write_text
from archlab._lock import LockHeldError, hold_lock
from archlab.data import dataset_info, load_dataset, make_loader
from archlab.engine import Candidate
from archlab.engine._common import seed_everything
from archlab.engine._evaluate import accuracy, fixed_subset
from archlab.engine._short_ft import short_finetune
from archlab.errors import UsageError

#: "-evalmode": scored with dropout off (results from before that fix are not reused)
RECIPE = "sgd-nesterov0.9-wd5e-4-cosine-clip5-evalmode"
NOISE_STD = 0.5


@dataclass(frozen=True)
class GroundTruthSpec:
    """What a ground-truth run is; results of another spec are never mixed in."""

    dataset: str = "digits"
    epochs: int = 10
    lr: float = 0.05
    batch_size: int = 64
    seed: int = 0
    #: train on / score on a fixed seeded subset of this many images (None: the whole split),
    #: a CPU-sized ground truth for CIFAR-10.
    train_images: int | None = None
    test_images: int | None = None

    def __post_init__(self) -> None:
        for name in ("train_images", "test_images"):
            n = getattr(self, name)
            if n is not None and n < self.batch_size:
                raise UsageError(f"GroundTruthSpec.{name}={n}: fewer images than one batch ({self.batch_size})")

    def key(self) -> dict[str, Any]:
        key = {"dataset": self.dataset, "epochs": self.epochs, "lr": self.lr,
               "batch_size": self.batch_size, "seed": self.seed, "recipe": RECIPE,
               "noise_std": NOISE_STD}
        subsets = {k: v for k, v in (("train_images", self.train_images), ("test_images", self.test_images))
                   if v is not None}
        return key | subsets  # whole-split specs keep the key (and caches) they always had


def cache_file(root: Path, candidate_id: str) -> Path:
    """``root/ground_truth/<readable id>-<hash>.json`` (ids may hold ``/`` and ``:``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", candidate_id)[-60:]
    digest = hashlib.sha1(candidate_id.encode()).hexdigest()[:10]
    return root / "ground_truth" / f"{safe}-{digest}.json"


def read_result(path: Path, spec: GroundTruthSpec) -> dict[str, Any] | None:
    """A cached result of ``spec``, or None (missing, or made with other settings)."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if rec.get("spec") == spec.key() else None


def train_candidate(candidate: Candidate, spec: GroundTruthSpec, data_dir: str | None = None,
                    device: Any = "cpu") -> dict[str, Any]:
    """Train one candidate from its default initialisation; return its result record."""
    info = dataset_info(spec.dataset)
    train = fixed_subset(load_dataset(spec.dataset, data_dir, split="train", seed=spec.seed),
                         spec.train_images, spec.seed)
    test = fixed_subset(load_dataset(spec.dataset, data_dir, split="test", seed=spec.seed),
                        spec.test_images, spec.seed)
    loader = make_loader(train, spec.batch_size, shuffle=True, seed=spec.seed, drop_last=True)
    steps_per_epoch = max(1, len(train) // spec.batch_size)
    seed_everything(spec.seed)
    model = candidate.build(info.num_classes, info.image_size)
    test_loader = make_loader(test, 256, shuffle=False)
    t0 = time.perf_counter()
    first_epoch: list[float] = []

    def after_eval(step: int, top1: float) -> bool:
        if step == steps_per_epoch:
            first_epoch.append(top1)
        return False

    res = short_finetune(model, loader, test_loader, spec.epochs * steps_per_epoch, lr=spec.lr,
                         device=device, eval_every=steps_per_epoch, on_eval=after_eval)
    seconds = time.perf_counter() - t0
    noisy = _NoisyImages(test_loader, NOISE_STD, seed=spec.seed)
    top1_noise = accuracy(model, noisy, resolve_device(device))[0]
    return {"id": candidate.id, "spec": spec.key(), "top1": res.final_top1, "seconds": seconds,
            "top1_noise": top1_noise,
            "top1_epoch1": first_epoch[0] if first_epoch else res.final_top1,
            "history": res.history, "n_params": sum(p.numel() for p in model.parameters()),
            "inference_ms": _inference_ms(model, info.image_size, device)}


class _NoisyImages:
    """``loader`` with fixed Gaussian noise (std ``std``) added to every image batch."""

    def __init__(self, loader, std: float, seed: int) -> None:
        self.loader, self.std, self.seed = loader, std, seed

    def __iter__(self):
        import torch

        gen = torch.Generator().manual_seed(self.seed)
        for x, y in self.loader:
            yield x + self.std * torch.randn(x.shape, generator=gen, dtype=x.dtype), y


def _inference_ms(model, image_size: int, device: Any) -> float:
    """Median milliseconds of one forward pass of a batch of 64 images (an inference-time property)."""
    import statistics

    import torch

    x = torch.zeros(64, 3, image_size, image_size, device=device)
    model.eval()
    times = []
    with torch.no_grad():
        for _ in range(5):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times[1:])


def ground_truth(candidates: Iterable[Candidate], root: str | Path, spec: GroundTruthSpec,
                 data_dir: str | None = None, device: Any = "cpu", progress: bool = True,
                 wait_s: float = 2.0) -> dict[str, dict[str, Any]]:
    """Results for every candidate (``{id: record}``), training the missing ones.

    Candidates another live worker holds are skipped on the first pass and waited for at the end.
    """
    root = Path(root)
    (root / "ground_truth").mkdir(parents=True, exist_ok=True)
    candidates = list(candidates)
    results: dict[str, dict[str, Any]] = {}
    pending: list[Candidate] = []
    for cand in tqdm(candidates, desc="ground truth", unit="net", disable=not progress):
        rec = _try(cand, root, spec, data_dir, device)
        if rec is None:
            pending.append(cand)
        else:
            results[cand.id] = rec
    while pending:  # held by other workers: wait for their results (or take over a dead one's)
        time.sleep(wait_s)
        still = []
        for cand in pending:
            rec = _try(cand, root, spec, data_dir, device)
            if rec is None:
                still.append(cand)
            else:
                results[cand.id] = rec
        pending = still
    return results


def _try(cand: Candidate, root: Path, spec: GroundTruthSpec, data_dir, device) -> dict[str, Any] | None:
    path = cache_file(root, cand.id)
    rec = read_result(path, spec)
    if rec is not None:
        return rec
    try:
        with hold_lock(path.with_suffix(".lock"), f"ground truth of {cand.id}"):
            rec = read_result(path, spec)  # finished by another worker meanwhile
            if rec is None:
                rec = train_candidate(cand, spec, data_dir, device)
                atomic_write_text(json.dumps(rec, default=_json_default) + "\n", path)
            return rec
    except LockHeldError:
        return None


def _json_default(v: Any) -> Any:
    f = float(v)
    return None if math.isnan(f) else f
