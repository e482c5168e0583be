"""Fine-tune a network from GHN-predicted (optionally post-processed) or random parameters.

SGD with momentum 0.9 and a cosine learning-rate schedule (as ppuda's ``train_net.py``); the test
accuracy is measured before training (epoch 0) and after every epoch, with BatchNorm on batch
statistics as in :func:`archlab.engine.evaluate`, so epoch 0 shows the quality of the init.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from archlab._device import resolve_device
from archlab._io import atomic_write_text
from archlab.data import dataset_info, load_dataset, make_loader
from archlab.engine._adapt import adapt_to_small_images
from archlab.engine._common import CSVLog, seed_everything
from archlab.engine._evaluate import accuracy, fixed_subset, open_ghn
from archlab.engine._postprocess import POSTPROCESS, postprocess
from archlab.errors import UsageError
from archlab.graph import resolve_model
from archlab.plots._curves import plot_curves
from archlab.space import input_kind

CURVE_FIELDS = ["epoch", "step", "lr", "train_loss", "train_acc", "test_top1", "test_top5"]


@dataclass
class FinetuneConfig:
    """What to fine-tune and how. Give ``epochs`` or ``steps``."""

    model: str = "resnet18"
    init: str = "ghn"  # ghn | random
    ckpt: str | None = None
    post: str = "none"  # none | noise | orth
    from_layer: int = 0
    noise_eps: float = 0.1
    epochs: float | None = None
    steps: int | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    n_per_class: int | None = None
    batch_size: int = 64
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    adapt: bool = True
    max_test_images: int | None = None
    device: str = "auto"
    seed: int = 0
    out: str | None = None
    progress: bool = True
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: str | None = None  # GHN graph input size (default: native, else the GHN's)


@dataclass
class FinetuneResult:
    history: Any  # DataFrame with CURVE_FIELDS
    final_top1: float
    init_top1: float
    postprocessed: list[str]
    out: str | None

    def summary(self) -> dict[str, Any]:
        return {"final_top1": self.final_top1, "init_top1": self.init_top1,
                "postprocessed": len(self.postprocessed), "out": self.out}


def build_model(cfg: FinetuneConfig, num_classes: int, image_size: int) -> torch.nn.Module:
    """The network to fine-tune: resolved spec, adapted to small images if needed, then its init."""

    model = resolve_model(cfg.model, num_classes=num_classes)
    if cfg.adapt and input_kind(image_size) == "cifar":
        adapt_to_small_images(model, image_size)
    return model


def check_config(cfg: FinetuneConfig, ghn=None) -> None:
    """Refuse an inconsistent or out-of-range configuration (UsageError) before any work."""
    if (cfg.epochs is None) == (cfg.steps is None):
        raise UsageError("give exactly one of epochs, steps")
    if cfg.init not in ("ghn", "random"):
        raise UsageError(f"unknown init {cfg.init!r}; choose from ghn, random")
    if cfg.post not in POSTPROCESS:
        raise UsageError(f"unknown post-processing {cfg.post!r}; choose from {', '.join(POSTPROCESS)}")
    if cfg.init == "random" and cfg.post != "none":
        raise UsageError(f"post-processing {cfg.post!r} needs init='ghn'")
    if cfg.init == "ghn" and ghn is None and not cfg.ckpt:
        raise UsageError("init='ghn' needs a GHN checkpoint (ckpt=...)")
    if cfg.epochs is not None and not cfg.epochs > 0:
        raise UsageError(f"epochs must be > 0, got {cfg.epochs}")
    for name in ("steps", "batch_size", "n_per_class", "max_test_images"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise UsageError(f"{name} must be >= 1, got {value}")
    if cfg.from_layer < 0:
        raise UsageError(f"from_layer must be >= 0, got {cfg.from_layer}")
    if not cfg.lr > 0 or cfg.weight_decay < 0 or cfg.noise_eps < 0:
        raise UsageError(f"need lr > 0, weight_decay >= 0 and noise_eps >= 0; got {cfg.lr}, "
                         f"{cfg.weight_decay}, {cfg.noise_eps}")


def init_model(model: torch.nn.Module, cfg: FinetuneConfig, ghn=None) -> list[str]:
    """Apply ``cfg.init`` (predict with ``ghn`` or keep the default init) and ``cfg.post``."""

    check_config(cfg, ghn)
    if cfg.init == "random":
        return []
    ghn = open_ghn(cfg.ckpt) if ghn is None else ghn
    ghn.predict(model, input_size=cfg.input_size)
    return postprocess(model, cfg.post, from_layer=cfg.from_layer, eps=cfg.noise_eps, seed=cfg.seed)


def finetune(cfg: FinetuneConfig, ghn=None) -> FinetuneResult:
    """Fine-tune ``cfg.model``; writes ``curve.csv``, ``curve.png`` and ``summary.json`` to ``cfg.out``."""
    import pandas as pd

    check_config(cfg, ghn)
    dev = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    info = dataset_info(cfg.dataset)
    train = load_dataset(cfg.dataset, cfg.data_dir, split="train", seed=cfg.seed, download=cfg.download,
                         n_per_class=cfg.n_per_class)
    test = fixed_subset(load_dataset(cfg.dataset, cfg.data_dir, split="test", download=cfg.download),
                       cfg.max_test_images, cfg.seed)
    train_loader = make_loader(train, cfg.batch_size, shuffle=True, seed=cfg.seed, drop_last=False)
    test_loader = make_loader(test, 64, shuffle=False)
    model = build_model(cfg, info.num_classes, info.image_size)
    changed = init_model(model, cfg, ghn)
    model.to(dev)

    per_epoch = len(train_loader)
    total = cfg.steps if cfg.steps is not None else max(1, math.ceil(cfg.epochs * per_epoch))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    out = Path(cfg.out) if cfg.out else None
    log = CSVLog(out / "curve.csv", CURVE_FIELDS) if out else None
    rows: list[dict[str, Any]] = []

    def record(step: int, loss_sum: float, correct: int, seen: int) -> None:
        t1, t5, _ = accuracy(model, test_loader, dev, num_classes=info.num_classes)
        row = {"epoch": step / per_epoch, "step": step, "lr": opt.param_groups[0]["lr"],
               "train_loss": loss_sum / seen if seen else math.nan,
               "train_acc": 100.0 * correct / seen if seen else math.nan,
               "test_top1": t1, "test_top5": t5}
        rows.append(row)
        if log:
            log.write(row)

    record(0, 0.0, 0, 0)
    step, loss_sum, correct, seen = 0, 0.0, 0, 0
    bar = tqdm(total=total, desc=f"finetune {cfg.model} ({cfg.init}, {cfg.post})",
               disable=not cfg.progress)
    while step < total:
        for x, y in train_loader:
            model.train()
            x, y = x.to(dev), y.to(dev)
            logits = model(x)
            logits = logits[0] if isinstance(logits, tuple) else logits
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.update(1)
            if step % per_epoch == 0 or step == total:
                record(step, loss_sum, correct, seen)
                bar.set_postfix(test_top1=f"{rows[-1]['test_top1']:.1f}")
                loss_sum, correct, seen = 0.0, 0, 0
            if step >= total:
                break
    bar.close()
    history = pd.DataFrame(rows, columns=CURVE_FIELDS)
    result = FinetuneResult(history, float(history["test_top1"].iloc[-1]),
                            float(history["test_top1"].iloc[0]), changed, str(out) if out else None)
    if out:
        log.close()
        label = f"{cfg.init} init" + (f" + {cfg.post}" if cfg.post != "none" else "")
        plot_curves({label: history}, out / "curve.png",
                    title=f"{cfg.model} on {cfg.dataset}" + (f" ({cfg.n_per_class}-shot)" if cfg.n_per_class else ""))
        meta = {**result.summary(), "config": asdict(cfg),
                "note": "test accuracy uses BatchNorm batch statistics (batches of 64)"}
        atomic_write_text(json.dumps(meta, indent=2, default=str), out / "summary.json")
    return result


