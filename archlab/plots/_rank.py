"""Ranking figures: each method's score against the ground truth, and τ against cost."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from archlab.plots._figure import pyplot, save_figure

LOG_SCALE = ("synflow", "params", "flops")


def plot_rank_grid(table: pd.DataFrame, corr: pd.DataFrame, path: str | os.PathLike,
                   truth: str = "ground_truth", title: str = "") -> Path:
    """One panel per method: its score (x) against the ground-truth top-1 (y), with τ."""
    plt = pyplot()
    methods = corr["method"].tolist()
    cols = min(4, len(methods))
    rows = math.ceil(len(methods) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    known = table[table[truth].notna()]
    tau = dict(zip(corr["method"], corr["kendall_tau"]))
    for ax, m in zip(axes.flat, methods):
        x = known[m].astype(float).to_numpy()
        finite = np.isfinite(x)
        if m in LOG_SCALE and (x[finite] > 0).all() and finite.any():
            ax.set_xscale("log")
        ax.scatter(x[finite], known[truth].to_numpy()[finite], s=12, alpha=0.7)
        ax.set_title(f"{m}  (τ = {tau[m]:.2f})" if np.isfinite(tau[m]) else m, fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.set_ylabel("trained top-1 %", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.2)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.suptitle(title or f"ranking methods against ground truth ({len(known)} candidates)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_tau_cost(corr: pd.DataFrame, path: str | os.PathLike, title: str = "") -> Path:
    """Kendall τ (y) against seconds per candidate (x, log), one labelled point per method."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    cost = corr["seconds_per_candidate"].clip(lower=1e-4)
    ax.scatter(cost, corr["kendall_tau"], s=40)
    for c, t, m in zip(cost, corr["kendall_tau"], corr["method"]):
        if np.isfinite(t):
            ax.annotate(m, (c, t), xytext=(4, 3), textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("seconds per candidate (log)")
    ax.set_ylabel("Kendall τ against ground truth")
    ax.set_title(title or "ranking quality against cost", fontsize=10)
    ax.grid(alpha=0.2)
    fig.tight_layout()
    return save_figure(fig, path)
