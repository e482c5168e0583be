"""Search figures from a trials table (:func:`archlab.search.trials_table`), matplotlib only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from archlab.plots import check_image_path, pyplot, save_figure


def plot_history(table: Any, path: str | os.PathLike, title: str = "") -> Path:
    """Accuracy of every COMPLETE trial by trial number, the best so far, and pruned trials."""
    check_image_path(path)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    done = table[table["state"] == "COMPLETE"].sort_values("number")
    if len(done):
        ax.scatter(done["number"], done["accuracy"], s=18, label="complete")
        ax.step(done["number"], done["accuracy"].cummax(), where="post", color="C3", label="best so far")
    pruned = table[table["state"] == "PRUNED"]
    if len(pruned):
        low = float(done["accuracy"].min()) if len(done) else 0.0
        ax.scatter(pruned["number"], [low] * len(pruned), marker="x", color="0.5", s=18,
                   label=f"pruned ({len(pruned)})")
    ax.set_xlabel("trial")
    ax.set_ylabel("proxy top-1 (%)")
    ax.set_title(title or "search history")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated (accuracy up, cost down), sorted by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][0] > best:
            front.append(i)
            best = points[i][0]
    return front


def plot_pareto(table: Any, cost: str, path: str | os.PathLike, title: str = "") -> Path:
    """Accuracy against ``cost`` (``params`` or ``flops``) of COMPLETE trials, front highlighted."""
    check_image_path(path)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    done = table[table["state"] == "COMPLETE"]
    pts = list(zip(done["accuracy"].astype(float), done[cost].astype(float)))
    ax.scatter([p[1] for p in pts], [p[0] for p in pts], s=18, alpha=0.6, label="trials")
    front = [pts[i] for i in pareto_front(pts)]
    if front:
        ax.step([p[1] for p in front], [p[0] for p in front], where="post", color="C3",
                marker="o", label=f"Pareto front ({len(front)})")
    ax.set_xscale("log")
    ax.set_xlabel(cost)
    ax.set_ylabel("proxy top-1 (%)")
    ax.set_title(title or f"accuracy vs {cost}")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
