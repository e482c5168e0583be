"""Short fine-tunes as architecture-quality proxies: :func:`short_finetune`, :func:`proxy_score`.

Proxies (the same seed gives every candidate the same data order and noise):

- ``ghn``: top-1 of the GHN-predicted parameters, no training;
- ``ghn-ft``: GHN-predicted parameters + post-processing (default ``noise``, GHN-2 2022; or
  ``orth``, ``none``: :func:`archlab.engine.postprocess`), then K steps;
- ``random-ft``: the network's default initialisation, then the same K steps.

Training follows ppuda's fine-tuning recipe: SGD with Nesterov momentum 0.9, weight decay 5e-4,
a cosine learning-rate schedule over the K steps and gradients clipped to norm 5. BatchNorm runs
on batch statistics in training and evaluation alike, as everywhere in archlab (predicted
parameters come without running statistics), so the three proxies are comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archlab._device import resolve_device
from archlab.data import dataset_info, load_dataset, make_loader
from archlab.engine._candidate import Candidate
from archlab.engine._common import seed_everything
from archlab.engine._evaluate import accuracy, fixed_subset
from archlab.engine._postprocess import POSTPROCESS, postprocess
from archlab.errors import UsageError
from archlab.ghn import use_batch_stats

PROXIES = ("ghn", "ghn-ft", "random-ft")

#: ``on_eval(step, top1)``: called after every evaluation; returning True stops the fine-tune.
EvalCallback = Callable[[int, float], bool]


@dataclass
class ShortFTResult:
    """Evaluations ``(step, top1 %)`` from step 0 (the initialisation) to the last step run."""

    history: list[tuple[int, float]] = field(default_factory=list)
    steps: int = 0  # optimisation steps actually run
    stopped: bool = False  # on_eval asked to stop early
    train_loss: float = float("nan")  # mean loss of the last eval interval

    @property
    def init_top1(self) -> float:
        return self.history[0][1]

    @property
    def final_top1(self) -> float:
        return self.history[-1][1]


@dataclass
class ProxyData:
    """Training and evaluation sets of a proxy; loaders are made fresh per call (same order)."""

    train: Any
    eval: Any
    num_classes: int
    image_size: int
    batch_size: int = 64
    eval_batch_size: int = 128

    def train_loader(self, seed: int) -> Iterable:
        return make_loader(self.train, self.batch_size, shuffle=True, seed=seed, drop_last=True)

    def eval_loader(self) -> Iterable:
        return make_loader(self.eval, self.eval_batch_size, shuffle=False)


def proxy_data(dataset: str = "digits", data_dir: str | None = None, batch_size: int = 64,
               max_eval_images: int | None = None, seed: int = 0, download: bool = False) -> ProxyData:
    """The proxy's data: the ``train`` split to fine-tune on, the held-out ``val`` split (a fixed
    subset of ``max_eval_images``) to score on; the test split is never seen by a search."""
    info = dataset_info(dataset)
    train = load_dataset(dataset, data_dir, split="train", seed=seed, download=download)
    val = fixed_subset(load_dataset(dataset, data_dir, split="val", seed=seed, download=download),
                       max_eval_images, seed)
    if len(train) < batch_size:
        raise UsageError(f"{dataset} has {len(train)} training images, fewer than one batch of {batch_size}")
    return ProxyData(train, val, info.num_classes, info.image_size, batch_size)


def _logits(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def short_finetune(model: nn.Module, train_loader: Iterable, eval_loader: Iterable, steps: int,
                   lr: float = 0.025, device: Any = "cpu", eval_every: int | None = None,
                   on_eval: EvalCallback | None = None, momentum: float = 0.9,
                   weight_decay: float = 5e-4, grad_clip: float = 5.0) -> ShortFTResult:
    """Fine-tune ``model`` for ``steps`` SGD steps (the loader is cycled) and evaluate top-1 at
    step 0, every ``eval_every`` steps (default: only at the end) and after the last step.

    ``on_eval(step, top1)`` returning True stops early (pruning). ``steps=0`` only evaluates.
    Data order is the loader's: make it with :func:`archlab.data.make_loader` and a fixed seed
    for every call to give each model the same batches.
    """
    if steps < 0:
        raise UsageError(f"steps must be >= 0, got {steps}")
    if eval_every is not None and eval_every < 1:
        raise UsageError(f"eval_every must be >= 1, got {eval_every}")
    dev = resolve_device(device)
    use_batch_stats(model)
    model.to(dev)
    result = ShortFTResult()

    def evaluate(step: int) -> bool:
        top1 = accuracy(model, eval_loader, dev)[0]
        result.history.append((step, float(top1)))
        return bool(on_eval(step, float(top1))) if on_eval is not None else False

    if evaluate(0) or steps == 0:
        result.stopped = steps > 0
        return result
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=True,
                          weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    loss_sum, seen = 0.0, 0
    while result.steps < steps:
        n_batches = 0
        for x, y in train_loader:
            n_batches += 1
            model.train()
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            loss = F.cross_entropy(_logits(model(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            sched.step()
            result.steps += 1
            loss_sum, seen = loss_sum + float(loss.detach()), seen + 1
            last = result.steps == steps
            if last or (eval_every is not None and result.steps % eval_every == 0):
                result.train_loss = loss_sum / seen
                loss_sum, seen = 0.0, 0
                if evaluate(result.steps) and not last:
                    result.stopped = True
                    return result
            if last:
                break
        if n_batches == 0:
            raise UsageError("the training loader yields no batch (fewer images than one batch?)")
    return result


def proxy_score(candidate: Candidate, proxy: str, ghn: Any, data: ProxyData, steps: int,
                seed: int = 0, on_eval: EvalCallback | None = None, lr: float = 0.025,
                device: Any = "cpu", eval_every: int | None = None, post: str = "noise") -> ShortFTResult:
    """Score ``candidate`` with ``proxy`` (see :data:`PROXIES`) on ``data``.

    ``ghn`` predicts the parameters for ``ghn``/``ghn-ft`` (unused by ``random-ft``); ``post``
    post-processes them before a ``ghn-ft`` fine-tune. Every candidate starts from ``seed``
    (initialisation, noise and data order), so scores compare.
    """
    if proxy not in PROXIES:
        raise UsageError(f"unknown proxy {proxy!r}; choose from {', '.join(PROXIES)}")
    if post not in POSTPROCESS:
        raise UsageError(f"unknown post-processing {post!r}; choose from {', '.join(POSTPROCESS)}")
    if proxy != "random-ft" and ghn is None:
        raise UsageError(f"proxy {proxy!r} needs a GHN")
    seed_everything(seed)
    model = candidate.build(data.num_classes, data.image_size)
    if proxy != "random-ft":
        ghn.predict(model)
    if proxy == "ghn-ft":
        postprocess(model, post, seed=seed)
    seed_everything(seed)
    return short_finetune(model, data.train_loader(seed), data.eval_loader(),
                          0 if proxy == "ghn" else steps, lr=lr, device=device,
                          eval_every=eval_every, on_eval=on_eval)
