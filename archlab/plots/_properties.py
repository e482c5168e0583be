"""Grouped bar chart of Kendall τ per predicted property and regressor."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from archlab.plots._figure import pyplot, save_figure

COLORS = ("#4c72b0", "#dd8452", "#8c8c8c")  # SVR, GBR, the params-only baseline (grey)


def plot_property_taus(scores: pd.DataFrame, path: str | os.PathLike, title: str = "") -> Path:
    """Bars of ``kendall_tau`` (y) per ``property`` (groups) and ``regressor`` (bars in a group),
    from a table with those three columns (:func:`archlab.analysis.predict_properties`)."""
    plt = pyplot()
    props = list(dict.fromkeys(scores["property"]))
    regs = list(dict.fromkeys(scores["regressor"]))
    tau = scores.set_index(["property", "regressor"])["kendall_tau"]
    fig, ax = plt.subplots(figsize=(1.6 * len(props) + 2.5, 4))
    width = 0.8 / len(regs)
    x = np.arange(len(props))
    for j, reg in enumerate(regs):
        values = [float(tau.get((p, reg), np.nan)) for p in props]
        pos = x + (j - (len(regs) - 1) / 2) * width
        ax.bar(pos, np.nan_to_num(values), width, label=reg, color=COLORS[j % len(COLORS)])
        for xi, v in zip(pos, values):
            label = "n/a" if not np.isfinite(v) else f"{v:.2f}"
            ax.text(xi, (v if np.isfinite(v) else 0) + (0.02 if not v < 0 else -0.02), label, ha="center",
                    va="bottom" if not v < 0 else "top", fontsize=7)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, props)
    low = float(np.nanmin(scores["kendall_tau"].to_numpy(dtype=float), initial=0.0))
    ax.set_ylim(low - 0.12 if low < 0 else -0.05, 1.12)
    ax.set_ylabel("Kendall τ on the test part")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(title or "properties predicted from graph embeddings", fontsize=9)
    ax.grid(axis="y", alpha=0.2)
    fig.tight_layout()
    return save_figure(fig, path)
