"""Train a GHN on a stream of DeepNets-1M-style architectures: :func:`train_ghn`.

Each step draws ``meta_batch`` genotypes from :func:`archlab.space.train_stream`, gives each a
width sampled from ``widths``, predicts all their parameters with the GHN and trains on one shared
image batch (mean loss over the meta-batch; see :mod:`archlab.engine._train_step`). Defaults follow
GHN-2 (Knyazev et al. 2021): meta-batch 8, image batch 64, Adam lr 1e-3, weight decay 1e-5,
gradient clipping at 5 and a x0.1 step decay at 2/3 and 5/6 of the budget (ppuda: epochs 200 and
250 of 300).

Resumption: a checkpoint (GHN + optimiser + grad scaler + step + position in the image epoch and
in the architecture stream + every RNG state, all tensors and plain containers, read back with
``weights_only=True``) is written atomically every ``ckpt_every`` steps or ``ckpt_minutes``
minutes, whichever comes first, when the run is interrupted (SIGINT/SIGTERM) and at the end.
With a step or epoch budget on CPU a resumed run ends with bit-identical weights to an
uninterrupted one.

Outputs: a run holds ``<out>.lock`` (:mod:`archlab._lock`) while it runs, and never replaces a
file at ``out`` that is not an archlab GHN checkpoint, nor a finished one (no ``.resume.pt``
beside it), unless ``overwrite``.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from archlab._heap import returning_freed_memory
from archlab._io import atomic_save
from archlab.data import dataset_info, load_dataset
from archlab.engine import _ddp
from archlab.engine._arch_stream import ArchSteps, meta_batches, networks_of
from archlab.engine._common import (
    Budget,
    CSVLog,
    Stopwatch,
    rng_state,
    seed_everything,
    set_rng_state,
)
from archlab.engine._train_files import claim_outputs, read_resume, startup_line
from archlab.engine._train_step import chance_floor, meta_step
from archlab.ghn import CheckpointError, GHNConfig, build_ghn, save_ghn

log = logging.getLogger("archlab.train")

METRIC_FIELDS = ["step", "epoch", "lr", "loss", "loss_avg", "acc", "archs_per_s", "skipped", "elapsed_s"]


@dataclass
class TrainConfig:
    """Everything :func:`train_ghn` needs. Give exactly one of ``epochs``, ``steps``, ``minutes``."""

    ghn: str = "ghn2"
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    out: str = "ghn.pt"
    epochs: float | None = None
    steps: int | None = None
    minutes: float | None = None
    meta_batch: int = 8
    batch_size: int = 64
    widths: tuple[int, ...] = (16, 24, 32)
    fc_dim: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    grad_clip: float = 5.0
    lr_milestones: tuple[float, ...] = (2 / 3, 5 / 6)
    lr_gamma: float = 0.1
    lr_warmup: float = 0.0  # fraction of the budget over which the learning rate ramps up linearly
    amp: bool | None = None  # None: on for CUDA
    device: str = "auto"
    seed: int = 0
    ckpt_every: int = 100
    ckpt_minutes: float | None = 2.0  # also checkpoint after this much wall-clock time (None: off)
    log_every: int = 10
    resume: bool = False
    overwrite: bool = False  # start afresh, replacing whatever is at out and its .resume.pt
    augment: bool | None = None
    n_per_class: int | None = None
    num_workers: int = 0
    arch_workers: int = 0  # 1: build the next steps' graphs in a worker process (needs a spare core)
    ghn_overrides: dict[str, Any] = field(default_factory=dict)
    explode_floor: float | None = None  # None: 3 x ln(num_classes), see _train_step.chance_floor
    explode_factor: float = 3.0  # drop an architecture's loss above max(floor, 3 x running average)
    checkpoint_activations: bool = False  # recompute target cells' activations in backward (less memory)
    progress: bool = True
    stop_after: int | None = None  # end this run (checkpointed, resumable) after this many steps

    def budget(self) -> Budget:
        return Budget(epochs=self.epochs, steps=self.steps, minutes=self.minutes)

    @property
    def state_path(self) -> Path:
        """The resumable training checkpoint next to ``out``: ``ghn.pt`` -> ``ghn.resume.pt``."""
        return Path(self.out).with_suffix(".resume.pt")

    @property
    def metrics_path(self) -> Path:
        return Path(self.out).with_suffix(".metrics.csv")

    @property
    def lock_path(self) -> Path:
        """Held while a run writes ``out``: ``ghn.pt`` -> ``ghn.lock``."""
        return Path(self.out).with_suffix(".lock")


#: TrainConfig fields for minute-scale CPU budgets (the demo; analyses/ghn_digits): more, cheaper
#: steps (meta-batch 2), only the evaluation width, one late learning-rate drop and no image
#: augmentation (a GHN that has seen a few hundred batches underfits; without random crops digits
#: seed 1 left chance: 28.33 against 15.65%). A 10% warm-up cost GHN-2 5.6 points on seed 0
#: (23.17 against 28.80%). See analyses/ghn_digits.
SHORT_CPU_BUDGET: dict[str, Any] = {"meta_batch": 2, "widths": (32,), "lr_milestones": (0.85,),
                                    "augment": False}


@dataclass
class TrainResult:
    """Summary of a (possibly resumed or interrupted) training run."""

    out: str | None
    state_path: str
    metrics_path: str
    steps: int
    epochs: float
    archs_seen: int
    skipped: dict[str, int]
    loss_avg: float
    acc_avg: float
    elapsed_s: float
    interrupted: bool
    finished: bool
    ranks_in_sync: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class _State:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    stream_pos: int = 0
    elapsed_s: float = 0.0
    loss_sum: float = 0.0
    acc_sum: float = 0.0
    n_loss: int = 0
    archs_seen: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    guard_sum: float = 0.0  # finite per-architecture losses, dropped ones included
    guard_n: int = 0


def ghn_config_for(cfg: TrainConfig, num_classes: int, image_size: int):
    """The :class:`archlab.ghn.GHNConfig` for preset ``cfg.ghn`` plus ``cfg.ghn_overrides``."""

    return GHNConfig.preset(cfg.ghn, num_classes=num_classes, image_size=image_size,
                            **cfg.ghn_overrides)


def _lr_at(cfg: TrainConfig, progress: float) -> float:
    """Step decay at ``lr_milestones`` after a linear warm-up over ``lr_warmup`` of the budget."""
    lr = cfg.lr * cfg.lr_gamma ** sum(progress >= m for m in cfg.lr_milestones)
    if cfg.lr_warmup > 0 and progress < cfg.lr_warmup:
        lr *= max(progress / cfg.lr_warmup, 0.01)
    return lr


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    nb = n // batch_size if n >= batch_size else 1
    return [perm[i * batch_size : (i + 1) * batch_size] for i in range(nb)]


class _StopFlag:
    """SIGINT/SIGTERM ask the loop to checkpoint and stop; a second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("signal %d: stopping after this step and saving a checkpoint", signum)

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train_ghn(config: TrainConfig) -> TrainResult:
    """Train (or resume training) a GHN; save it with :func:`archlab.ghn.save_ghn` to ``config.out``."""
    cfg = config
    budget = cfg.budget()
    info = _ddp.setup(cfg.device)
    try:
        if cfg.meta_batch < info.world:
            raise ValueError(f"meta_batch={cfg.meta_batch} must be >= the number of ranks ({info.world})")
        # on CPU, freed activations go back to the system while training (archlab._heap)
        with claim_outputs(cfg, info), returning_freed_memory(info.device.type == "cpu"):
            return _train(cfg, budget, info)
    finally:
        _ddp.teardown(info)


def _train(cfg: TrainConfig, budget: Budget, info: _ddp.DistInfo) -> TrainResult:
    device = info.device
    amp = (device.type == "cuda") if cfg.amp is None else bool(cfg.amp and device.type == "cuda")
    seed_everything(cfg.seed)
    dinfo = dataset_info(cfg.dataset)
    ds = load_dataset(cfg.dataset, cfg.data_dir, split="train", seed=cfg.seed, download=cfg.download,
                      augment=cfg.augment, n_per_class=cfg.n_per_class)
    batches_per_epoch = len(_epoch_batches(len(ds), cfg.batch_size, cfg.seed, 0))

    ghn = build_ghn(ghn_config_for(cfg, dinfo.num_classes, dinfo.image_size)).to(device)
    optimizer = torch.optim.Adam(ghn.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    state = _State()
    resumed = cfg.resume and cfg.state_path.exists()
    if resumed:
        ck = read_resume(cfg, device)
        try:
            ghn.load_state_dict(ck["ghn"])
            optimizer.load_state_dict(ck["optimizer"])
            scaler.load_state_dict(ck["scaler"])
            state = _State(**ck["state"])
            set_rng_state(ck["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            raise CheckpointError(f"{cfg.state_path}: damaged archlab training state "
                                  f"({type(e).__name__}: {str(e)[:200]}); delete it to start afresh") from None
    if info.is_main:
        log.info(startup_line(cfg, resumed, state.step, budget))

    model = _ddp.wrap(ghn, info)
    arch_steps = meta_batches(ArchSteps(
        seed=cfg.seed, start=state.stream_pos, meta_batch=cfg.meta_batch, widths=tuple(cfg.widths),
        num_classes=dinfo.num_classes, image_size=dinfo.image_size, fc_dim=cfg.fc_dim,
        rank=info.rank, world=info.world), cfg.arch_workers)
    floor = cfg.explode_floor if cfg.explode_floor is not None else chance_floor(dinfo.num_classes)
    clock = Stopwatch(state.elapsed_s)
    csv_log = CSVLog(cfg.metrics_path, METRIC_FIELDS, rewind_to=state.step) if info.is_main else None
    total = budget.total_steps(batches_per_epoch)
    bar = _progress(cfg, info, total, state.step)
    loader_gen = torch.Generator()

    last_ckpt = time.monotonic()

    def checkpoint() -> None:
        nonlocal last_ckpt
        state.elapsed_s = clock.elapsed()
        last_ckpt = time.monotonic()
        if info.is_main:
            atomic_save({
                "config": dataclasses.asdict(cfg), "ghn": ghn.state_dict(),
                "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                "state": dataclasses.asdict(state), "rng": rng_state(),
            }, cfg.state_path)

    def done() -> bool:
        p = budget.progress(state.step, clock.elapsed(), batches_per_epoch)
        return _ddp.any_rank(p >= 1.0, info)

    steps_this_run, interrupted = 0, False
    t_last, archs_last = time.monotonic(), state.archs_seen
    with _StopFlag() as stop:
        while not done():
            batches = _epoch_batches(len(ds), cfg.batch_size, cfg.seed, state.epoch)
            loader_gen.manual_seed(cfg.seed * 7919 + state.epoch)
            loader = torch.utils.data.DataLoader(
                ds, batch_sampler=batches[state.batch_in_epoch :], num_workers=cfg.num_workers,
                generator=loader_gen, pin_memory=device.type == "cuda")
            for images, targets in loader:
                mine = next(arch_steps)
                state.stream_pos += cfg.meta_batch
                nets = networks_of(mine, dinfo.num_classes, dinfo.image_size, cfg.fc_dim, device)
                graphs = [graph for *_, graph in mine]
                lr = _lr_at(cfg, budget.progress(state.step, clock.elapsed(), batches_per_epoch))
                for group in optimizer.param_groups:
                    group["lr"] = lr
                stats = meta_step(
                    model, optimizer, scaler, nets, graphs,
                    images.to(device, non_blocking=True), targets.to(device, non_blocking=True),
                    info=info, grad_clip=cfg.grad_clip,
                    running_loss=state.guard_sum / state.guard_n if state.guard_n else None,
                    explode_floor=floor, explode_factor=cfg.explode_factor,
                    checkpoint_activations=cfg.checkpoint_activations)
                state.step += 1
                state.batch_in_epoch += 1
                steps_this_run += 1
                state.archs_seen += cfg.meta_batch
                state.guard_sum += stats.finite_sum
                state.guard_n += stats.n_finite
                for k, v in stats.skipped.items():
                    state.skipped[k] = state.skipped.get(k, 0) + v
                if not stats.stepped:
                    state.skipped["update"] = state.skipped.get("update", 0) + 1
                if stats.n_ok:
                    state.loss_sum += stats.loss
                    state.acc_sum += stats.correct / max(1, stats.seen)
                    state.n_loss += 1
                bar.update(1)
                if state.step % cfg.log_every == 0 or state.step == total:
                    now = time.monotonic()
                    speed = (state.archs_seen - archs_last) / max(1e-9, now - t_last)
                    t_last, archs_last = now, state.archs_seen
                    row = _row(state, stats, lr, speed, clock.elapsed(), batches_per_epoch)
                    bar.set_postfix(loss=f"{row['loss_avg']:.3f}", acc=f"{row['acc']:.3f}",
                                    skipped=row["skipped"])
                    if csv_log is not None:
                        csv_log.write(row)
                stopping = _ddp.any_rank(stop.requested, info) or (
                    cfg.stop_after is not None and steps_this_run >= cfg.stop_after)
                if stopping or done() or state.step % cfg.ckpt_every == 0 or (
                        cfg.ckpt_minutes is not None
                        and time.monotonic() - last_ckpt >= 60.0 * cfg.ckpt_minutes):
                    checkpoint()
                if stopping:
                    interrupted = stop.requested
                    break
                if done():
                    break
            else:
                state.epoch += 1
                state.batch_in_epoch = 0
                continue
            break
        checkpoint()
    bar.close()
    if hasattr(arch_steps, "close"):
        arch_steps.close()
    if csv_log is not None:
        csv_log.close()
    finished = budget.progress(state.step, clock.elapsed(), batches_per_epoch) >= 1.0
    in_sync = _ddp.params_in_sync(ghn, info)
    result = TrainResult(
        out=str(cfg.out) if info.is_main else None, state_path=str(cfg.state_path),
        metrics_path=str(cfg.metrics_path), steps=state.step,
        epochs=state.epoch + state.batch_in_epoch / batches_per_epoch,
        archs_seen=state.archs_seen, skipped=dict(state.skipped),
        loss_avg=state.loss_sum / state.n_loss if state.n_loss else float("nan"),
        acc_avg=state.acc_sum / state.n_loss if state.n_loss else float("nan"),
        elapsed_s=clock.elapsed(), interrupted=interrupted, finished=finished,
        ranks_in_sync=in_sync)
    if info.is_main:
        save_ghn(ghn, cfg.out, extra={"train": {**result.to_dict(), "config": dataclasses.asdict(cfg)}})
    return result


def _row(state: _State, stats, lr: float, speed: float, elapsed: float, bpe: int) -> dict[str, Any]:
    return {
        "step": state.step, "epoch": round(state.epoch + state.batch_in_epoch / bpe, 4), "lr": lr,
        "loss": stats.loss, "loss_avg": state.loss_sum / state.n_loss if state.n_loss else float("nan"),
        "acc": stats.correct / stats.seen if stats.seen else float("nan"),
        "archs_per_s": speed, "skipped": sum(state.skipped.values()), "elapsed_s": elapsed,
    }


def _progress(cfg: TrainConfig, info, total: int | None, initial: int):

    return tqdm(total=total, initial=initial, disable=not (cfg.progress and info.is_main),
                desc=f"train {cfg.ghn}", unit="step", dynamic_ncols=True)
