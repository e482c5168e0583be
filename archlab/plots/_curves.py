"""Learning-curve figures (matplotlib, headless): training loss and test accuracy vs. epoch."""

from __future__ import annotations

import os
from pathlib import Path

from archlab.plots._figure import pyplot, save_figure


def plot_curves(histories: dict, path: str | os.PathLike, title: str = "") -> Path:
    """Save a two-panel PNG: train loss and test top-1 vs. epoch, one line per history.

    histories: ``{label: DataFrame}`` with columns ``epoch, train_loss, test_top1``.
    """
    plt = pyplot()
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(10, 4))
    for label, h in histories.items():
        tr = h.dropna(subset=["train_loss"])
        ax_l.plot(tr["epoch"], tr["train_loss"], marker="o", ms=3, label=label)
        ax_a.plot(h["epoch"], h["test_top1"], marker="o", ms=3, label=label)
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("training loss (cross-entropy)")
    ax_l.set_title("training loss")
    ax_a.set_xlabel("epoch")
    ax_a.set_ylabel("test top-1 accuracy (%)")
    ax_a.set_title("test accuracy")
    return _finish(fig, (ax_l, ax_a), title, path)


def _finish(fig, axes, title: str, path: str | os.PathLike) -> Path:
    """Grid and legend on every panel, the figure title, then save."""
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_training_runs(runs: dict, path: str | os.PathLike, heldout: dict | None = None,
                       window: int = 20, title: str = "") -> Path:
    """Save a PNG comparing GHN training runs step by step: training loss and training-batch
    accuracy (moving averages over ``window`` steps, raw values faint), and held-out accuracy.

    runs: ``{label: DataFrame}`` with columns ``step, loss, acc`` (acc a fraction, one row per step);
    heldout: ``{label: DataFrame}`` with columns ``step, top1`` (%) and optionally ``sem``.
    """
    plt = pyplot()
    n = 3 if heldout else 2
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4))
    colors = {label: f"C{i}" for i, label in enumerate(dict.fromkeys([*runs, *(heldout or {})]))}
    top, low = 0.0, float("inf")
    for label, df in runs.items():
        for ax, col, scale in ((axes[0], "loss", 1.0), (axes[1], "acc", 100.0)):
            y = df[col].astype(float) * scale
            ax.plot(df["step"], y, color=colors[label], alpha=0.15, lw=0.8)
            ax.plot(df["step"], y.rolling(window, min_periods=1).mean(), color=colors[label], lw=2, label=label)
        top = max(top, float(df["loss"].astype(float).quantile(0.95)))
        low = min(low, float(df["loss"].astype(float).rolling(window, min_periods=1).mean().min()))
    if top > 0:  # exploding single steps (the reference's reach 1e1-1e2) would flatten the rest
        axes[0].set_ylim(low - 0.1 * (top - low), top + 0.1 * (top - low))
    for label, h in (heldout or {}).items():
        if len(h):
            axes[2].errorbar(h["step"], h["top1"], yerr=h.get("sem"), color=colors[label],
                             marker="o", capsize=3, label=label)
    axes[0].set_ylabel("training loss (cross-entropy)")
    axes[1].set_ylabel("training-batch top-1 (%)")
    titles = [f"training loss ({window}-step mean; axis cut at p95)", f"training-batch accuracy ({window}-step mean)"]
    if heldout:
        axes[2].set_ylabel("held-out mean top-1 (%)")
        titles.append("unseen test architectures")
    for ax, t in zip(axes, titles, strict=True):
        ax.set_xlabel("step (meta-batch update)")
        ax.set_title(t)
    return _finish(fig, axes, title, path)
