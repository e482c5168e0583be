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
    for ax in (ax_l, ax_a):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
