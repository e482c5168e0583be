"""GHN-2 training learns on real CIFAR-10 (the unpacked ``ARCHLAB_CIFAR10`` tarball).

Sixty meta-batch updates on a fixed 100-image subset (10 per class, no augmentation), then the
trained GHN against the very GHN it started from, predicting parameters for the same twelve
unseen test-split architectures, scored on those 100 images. A bug that stops gradients reaching
the GHN, scrambles labels or breaks the predicted parameters' normalisation leaves the two equal.

The comparison is paired because the training curve itself is not a reliable signal at this
budget: over seeds 0-3 the median per-step loss fell by 0.008-0.038 between the first and last thirds
(one run's accuracy ended at 11.6% on one machine and 12.3% on another), while the paired loss
fell by 0.052-0.063 and accuracy rose by 1.2-4.9 points on every seed (12 architectures).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from archlab.data import load_dataset
from archlab.engine._candidate import from_split
from archlab.engine._common import seed_everything
from archlab.engine._train import TrainConfig, ghn_config_for, train_ghn
from archlab.ghn import build_ghn, load_ghn, use_batch_stats

STEPS = 60


def _loss_and_accuracy(ghn, candidates, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and top-1 over ``candidates`` with ``ghn``'s predicted parameters."""
    losses, hits = [], []
    for cand in candidates:
        torch.manual_seed(0)
        model = cand.build(10, 32)
        ghn.predict(model)
        use_batch_stats(model)
        with torch.no_grad():
            logits = model(images)
        losses.append(F.cross_entropy(logits, labels).item())
        hits.append((logits.argmax(1) == labels).float().mean().item())
    return sum(losses) / len(losses), sum(hits) / len(hits)


@pytest.mark.slow
def test_ghn2_learns_cifar10(cifar10_root: Path, tmp_path: Path):
    cfg = TrainConfig(
        dataset="cifar10", data_dir=str(cifar10_root), steps=STEPS, meta_batch=2, widths=(16,), lr=1e-3,
        lr_milestones=(), augment=False, n_per_class=10, log_every=1, progress=False, device="cpu", seed=0,
        out=str(tmp_path / "ghn.pt"))
    result = train_ghn(cfg)
    assert result.finished and result.steps == STEPS
    with open(result.metrics_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["loss"] not in ("", "nan")]
    assert len(rows) >= STEPS - 5, "most updates must keep their architectures"

    seed_everything(cfg.seed)  # what training starts from: the same seed, the same construction
    start = build_ghn(ghn_config_for(cfg, num_classes=10, image_size=32))
    trained = load_ghn(result.out)
    ds = load_dataset("cifar10", cfg.data_dir, split="train", seed=cfg.seed, augment=False, n_per_class=10)
    images = torch.stack([ds[i][0] for i in range(len(ds))])
    labels = torch.tensor([ds[i][1] for i in range(len(ds))])
    candidates = from_split("test", limit=12, width=16)
    loss_start, acc_start = _loss_and_accuracy(start, candidates, images, labels)
    loss_end, acc_end = _loss_and_accuracy(trained, candidates, images, labels)
    assert loss_end < loss_start - 0.025, (loss_start, loss_end)
    assert acc_end > acc_start, (acc_start, acc_end)
