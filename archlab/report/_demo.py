"""``archlab demo``: the main job end to end on the embedded digits data, offline.

1. build and draw the graph of a torchvision model;
2. train a GHN-2 and an MLP-GHN baseline on digits with DeepNets-1M training architectures;
3. evaluate held-out DeepNets-1M test architectures with predicted parameters against random
   initialisation and the MLP baseline (table + plot);
4. predict all parameters of an unseen torchvision network and report its accuracy;
5. embed a reference set of DeepNets-1M train architectures, score how far ResNet-18/50,
   ConvNeXt-T, ViT-B/16, Swin-T and a custom model from a file are from it, and draw the maps;
6. rank held-out test architectures by GHN-based scores and zero-cost proxies against a small
   trained ground truth;
7. search the DeepNets-1M space with two Optuna workers on one journal file (ghn-ft proxy).

Re-running with the same ``out`` resumes the training runs and reuses every stage's outputs.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archlab._device import resolve_device
from archlab._io import atomic_write_text
from archlab.data import dataset_info
from archlab.engine._evaluate import BN_NOTE, evaluate, format_summary, summarize
from archlab.engine._train import SHORT_CPU_BUDGET, TrainConfig, train_ghn
from archlab.errors import UsageError
from archlab.ghn import load_ghn
from archlab.graph import build_graph, plot_graph, resolve_model
from archlab.plots import plot_methods
from archlab.report._demo_rank import rank_stage, search_stage
from archlab.report._demo_shift import shift_stage


@dataclass
class DemoConfig:
    out: str = "runs/demo"
    minutes: float = 2.5
    mlp_minutes: float = 0.5
    archs: int = 50
    model: str = "resnet18"
    device: str = "auto"
    seed: int = 0
    progress: bool = True
    ref_size: int = 1000
    rank_archs: int = 30
    rank_epochs: int = 1
    ft_steps: int = 10
    search_trials: int = 8


def run_demo(cfg: DemoConfig, echo=print) -> dict[str, Any]:
    """Run the demo; return the paths written and the evaluation summary.

    The model and the settings are checked before anything is written or trained.
    """
    import torch

    if not (cfg.minutes > 0 and cfg.mlp_minutes > 0 and cfg.archs >= 1 and cfg.ref_size >= 20):
        raise UsageError(f"minutes, mlp_minutes and archs must be positive and ref_size >= 20; got "
                         f"{cfg.minutes}, {cfg.mlp_minutes}, {cfg.archs}, {cfg.ref_size}")
    model = resolve_model(cfg.model)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    clock = StageClock()

    clock.start("1")
    echo(f"[1/7] architecture graph of {cfg.model}")
    g = build_graph(model)
    graph_png = plot_graph(g, out / f"graph_{re.sub(r'[^A-Za-z0-9_.-]+', '_', cfg.model)}.png")
    echo(f"      {g.num_nodes} nodes, {g.num_edges} edges, {g.num_params:,} parameters, "
         f"coverage {g.coverage:.3f} -> {graph_png}")

    clock.start("2")
    echo(f"[2/7] training GHN-2 ({cfg.minutes:g} min) and an MLP-GHN baseline ({cfg.mlp_minutes:g} min) on digits")
    runs = {}
    for kind, minutes in (("ghn2", cfg.minutes), ("mlp", cfg.mlp_minutes)):
        tc = TrainConfig(ghn=kind, dataset="digits", minutes=minutes, out=str(out / f"{kind}.pt"),
                         device=cfg.device, seed=cfg.seed, resume=True, progress=cfg.progress,
                         **SHORT_CPU_BUDGET)
        runs[kind] = train_ghn(tc)
        r = runs[kind]
        if r.interrupted:
            raise KeyboardInterrupt(f"{kind} training interrupted; re-run `archlab demo --out {out}` to resume")
        echo(f"      {kind}: {r.steps} steps, {r.archs_seen} architectures, mean loss {r.loss_avg:.3f}, "
             f"train acc of predicted params {100 * r.acc_avg:.1f}% -> {r.out}")

    clock.start("3")
    echo(f"[3/7] evaluating {cfg.archs} held-out DeepNets-1M test architectures on digits")
    df = _cached_evaluation(out / f"evaluation{cfg.archs}.csv", lambda: evaluate(
        str(out / "ghn2.pt"), split="test", dataset="digits", baseline=str(out / "mlp.pt"),
        limit=cfg.archs, device=cfg.device, seed=cfg.seed, progress=cfg.progress))
    summary = summarize(df)
    atomic_write_text(df.to_csv(index=False), out / "evaluation.csv")
    atomic_write_text(summary.to_csv(index=False), out / "evaluation_summary.csv")
    plot_png = plot_methods(summary, out / "evaluation.png", chance=10.0,
                            title=f"Digits test accuracy of {cfg.archs} unseen DeepNets-1M architectures")
    echo(format_summary(summary))
    for note in df.attrs.get("notes", []):
        echo(f"      note: {note}")


    size = dataset_info("digits").image_size
    clock.start("4")
    echo(f"[4/7] predicting all parameters of {cfg.model} (adapted to {size}x{size}) with the trained GHN-2")
    one = evaluate(str(out / "ghn2.pt"), models=[cfg.model], dataset="digits", device=cfg.device,
                   seed=cfg.seed, progress=False)
    for r in one.to_dict("records"):
        echo(f"      {cfg.model} {r['method']:>7}: top-1 {r['top1']:.1f}%  ({r['n_params']:,} parameters)")

    clock.start("5")
    echo(f"[5/7] shift: {cfg.ref_size} train architectures as the reference; zoo models and my_net.py:MyNet")
    dev = resolve_device(cfg.device)
    ghn = load_ghn(out / "ghn2.pt", map_location=dev)
    shift = shift_stage(ghn, out, cfg.ref_size, cfg.progress, echo=echo)

    clock.start("6")
    echo(f"[6/7] ranking {cfg.rank_archs} test architectures against {cfg.rank_epochs}-epoch SGD ground truth")
    ranked = rank_stage(ghn, out / "rank", cfg.rank_archs, cfg.ft_steps, cfg.rank_epochs, dev, cfg.seed,
                        cfg.progress, echo=echo)

    clock.start("7")
    echo(f"[7/7] searching with two workers on one journal file ({cfg.search_trials} trials, ghn-ft)")
    searched = search_stage(out / "ghn2.pt", out / "search", cfg.search_trials, cfg.ft_steps, cfg.seed, echo=echo)
    clock.stop()
    atomic_write_text(json.dumps(clock.seconds, indent=1) + "\n", out / "timings.json")
    echo("      stage seconds: " + ", ".join(f"{k}: {v:.0f}" for k, v in clock.seconds.items())
         + f"; total {sum(clock.seconds.values()) / 60:.1f} min")
    echo(f"results in {out}/: evaluation.csv, evaluation_summary.csv, {plot_png.name}, {graph_png.name}, "
         "shift/shift.csv, shift/shift.png, map.png, map.html, rank/correlations.md, rank/scatter.png, "
         "search/trials.csv, search/history.png")
    return {"summary": summary, "evaluation": df, "single": one, "plot": plot_png, "graph_plot": graph_png,
            **shift, **ranked, **searched}


@dataclass
class StageClock:
    """Wall-clock seconds of each demo stage (a rerun that reuses cached outputs shows it)."""

    seconds: dict[str, float] = field(default_factory=dict)
    _current: str | None = None
    _t0: float = 0.0

    def start(self, stage: str) -> None:
        self.stop()
        self._current, self._t0 = stage, time.perf_counter()

    def stop(self) -> None:
        if self._current is not None:
            self.seconds[self._current] = time.perf_counter() - self._t0
            self._current = None


def _cached_evaluation(path: Path, compute):
    """The evaluation table at ``path`` if an earlier run wrote it, else ``compute()`` (saved)."""
    import pandas as pd

    if path.exists():
        df = pd.read_csv(path)
        df.attrs["notes"] = [BN_NOTE, "(reused from an earlier run of this demo)"]
        return df
    df = compute()
    atomic_write_text(df.to_csv(index=False), path)
    return df
