"""The shift figure: one bar per architecture against the calibrated percentile bands."""

from __future__ import annotations

import os
from pathlib import Path

from archlab.plots._figure import pyplot, save_figure, short_label

BAND_COLOURS = {"in-distribution": "#55a868", "shifted": "#dd8452", "far": "#c44e52"}


def plot_shift(table, path: str | os.PathLike, bands: tuple[float, float] = (90.0, 99.0),
               title: str = "") -> Path:
    """Horizontal bars of ``table["percentile"]`` (0-100) per ``id``, coloured by verdict, over
    shaded bands; the ``table`` is what :func:`archlab.analysis.shift_table` returns."""
    plt = pyplot()
    rows = table.sort_values("percentile")
    n = len(rows)
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * n + 1.2)))
    lo, hi = bands
    for (a, b), name in (((0, lo), "in-distribution"), ((lo, hi), "shifted"), ((hi, 100), "far")):
        ax.axvspan(a, b, color=BAND_COLOURS[name], alpha=0.12, lw=0)
        ax.text((a + b) / 2, n - 0.3, name, ha="center", va="bottom", fontsize=7, color=BAND_COLOURS[name])
    colours = [BAND_COLOURS.get(v, "0.5") for v in rows["verdict"]]
    ax.barh(range(n), rows["percentile"], color=colours, height=0.7)
    ax.set_yticks(range(n), [short_label(i) for i in rows["id"]], fontsize=8)
    for y, p in enumerate(rows["percentile"]):
        ax.text(min(p + 1, 93), y, f"{p:.0f}", va="center", fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.6, n + 0.4)
    ax.set_xlabel("shift percentile against held-out in-distribution architectures")
    ax.set_title(title or "distance from the GHN's training distribution", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
