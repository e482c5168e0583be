"""Bar charts of per-method accuracy from a summary table."""

from __future__ import annotations

from pathlib import Path

from archlab.plots._figure import pyplot, save_figure


def plot_methods(summary, path: str | Path, chance: float | None = None, title: str = "") -> Path:
    """Bar chart of mean top-1 (± standard error) per method."""
    plt = pyplot()
    rows = [r for r in summary.to_dict("records") if r["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(6, 4))
    names = [r["method"] for r in rows]
    means = [r["top1_mean"] for r in rows]
    ax.bar(names, means, yerr=[r["top1_se"] for r in rows], capsize=6,
           color=["#4c72b0", "#dd8452", "#55a868"][: len(rows)])
    for i, m in enumerate(means):
        ax.text(i, m + 1, f"{m:.1f}%", ha="center", va="bottom")
    if chance is not None:
        ax.axhline(chance, color="k", ls="--", lw=1, label=f"chance ({chance:g}%)")
        ax.legend(loc="upper right")
    ax.set_ylabel("mean top-1 accuracy (%)  ± s.e.")
    ax.set_xlabel("parameters from")
    ax.set_ylim(0, max(means + [chance or 0]) * 1.25 + 5)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
