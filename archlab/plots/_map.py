"""Embedding-map figures from a :func:`archlab.analysis.map_frame` table: PNG and HTML."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from archlab._io import atomic_write_text
from archlab.plots._figure import pyplot, save_figure, short_label

HOVER = ("id", "source", "params", "flops", "accuracy", "top1", "percentile", "verdict")


def _is_numeric(frame: pd.DataFrame, color: str) -> bool:
    return pd.api.types.is_numeric_dtype(frame[color]) and color != "source"


def plot_map_png(frame: pd.DataFrame, path: str | os.PathLike, color: str = "source",
                 highlight: list[str] | None = None, title: str = "") -> Path:
    """Scatter of the map; a colour bar for numeric ``color`` columns (log scale for params and
    FLOPs), a legend for categorical ones; ``highlight`` ids are ringed and labelled."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 6.5))
    ref = frame["role"] == "reference"
    if _is_numeric(frame, color):
        values = frame[color].astype(float)
        log = color in ("params", "flops") and (values > 0).all()
        c = np.log10(values) if log else values
        sc = ax.scatter(frame["x"], frame["y"], c=c, cmap="viridis", s=np.where(ref, 8, 40),
                        alpha=0.8, edgecolors=np.where(ref, "none", "k"), linewidths=0.5)
        fig.colorbar(sc, ax=ax, label=f"log10 {color}" if log else color)
    else:
        groups = frame[color].astype(str)
        for i, name in enumerate(dict.fromkeys(groups)):
            sel, label = groups == name, f"{name} ({int((groups == name).sum())})"
            if (sel & ref).any():
                ax.scatter(frame.loc[sel & ref, "x"], frame.loc[sel & ref, "y"], s=8, alpha=0.5,
                           color=f"C{i % 10}", label=label)
                label = None
            if (sel & ~ref).any():
                ax.scatter(frame.loc[sel & ~ref, "x"], frame.loc[sel & ~ref, "y"], s=40, alpha=0.9,
                           color=f"C{i % 10}", edgecolors="k", linewidths=0.5, label=label)
        ax.legend(fontsize=8, markerscale=1.5, loc="best", title=color)
    _label_highlights(ax, frame, highlight or [])
    method = frame.attrs.get("method", "umap").upper()
    ax.set_xlabel(f"{method} 1")
    ax.set_ylabel(f"{method} 2")
    ax.set_title(title or f"architectures on a {method} map of GHN embeddings", fontsize=10)
    ax.grid(alpha=0.2)
    fig.tight_layout()
    return save_figure(fig, path)


def _label_highlights(ax, frame: pd.DataFrame, highlight: list[str]) -> None:
    """Ring and label ``highlight`` ids; labels of nearby points are stacked instead of overlapping."""
    rows = frame[frame["id"].isin(highlight)].sort_values("y")
    span = float(np.ptp(frame["y"])) or 1.0
    placed: list[tuple[float, float]] = []
    for _, r in rows.iterrows():
        ax.scatter([r["x"]], [r["y"]], s=160, facecolors="none", edgecolors="crimson", linewidths=1.8)
        near = sum(1 for x, y in placed if abs(y - r["y"]) < 0.06 * span and abs(x - r["x"]) < 0.25 * span)
        placed.append((r["x"], r["y"]))
        ax.annotate(short_label(r["id"]), (r["x"], r["y"]), xytext=(8, 6 + 11 * near), textcoords="offset points",
                    fontsize=9, color="crimson", weight="bold", zorder=5,  # above every point and ring
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
                    arrowprops={"arrowstyle": "-", "color": "crimson", "lw": 0.6} if near else None)


def plot_map_html(frame: pd.DataFrame, path: str | os.PathLike, color: str = "source",
                  highlight: list[str] | None = None, title: str = "") -> Path:
    """A self-contained HTML page (plotly, its JavaScript inline: opens with no network); hover
    shows id, source, parameters, FLOPs and, where known, accuracy and shift percentile."""
    import plotly.graph_objects as go

    hover_cols = [c for c in HOVER if c in frame.columns]
    text = frame[hover_cols].apply(lambda r: "<br>".join(f"{c}: {_fmt(r[c])}" for c in hover_cols), axis=1)
    fig = go.Figure()
    if _is_numeric(frame, color):
        fig.add_trace(go.Scatter(x=frame["x"], y=frame["y"], mode="markers", text=text, hoverinfo="text",
                                   name=color, marker={"color": frame[color], "colorscale": "Viridis",
                                                       "showscale": True, "size": 6,
                                                       "colorbar": {"title": color}}))
    else:
        groups = frame[color].astype(str)
        for name in dict.fromkeys(groups):
            sel = (groups == name).to_numpy()
            fig.add_trace(go.Scatter(x=frame["x"][sel], y=frame["y"][sel], mode="markers", name=name,
                                     text=text[sel], hoverinfo="text", marker={"size": 6}))
    marked = frame[frame["id"].isin(highlight or [])]
    if len(marked):
        fig.add_trace(go.Scatter(x=marked["x"], y=marked["y"], mode="markers+text", name="highlighted",
                                 text=[short_label(i) for i in marked["id"]], textposition="top center", hoverinfo="skip",
                                 marker={"size": 14, "color": "rgba(0,0,0,0)",
                                         "line": {"color": "crimson", "width": 2}}))
    method = frame.attrs.get("method", "umap").upper()
    fig.update_layout(title=title or f"architectures on a {method} map of GHN embeddings",
                      xaxis_title=f"{method} 1", yaxis_title=f"{method} 2", template="plotly_white",
                      hovermode="closest")
    html = fig.to_html(include_plotlyjs=True, full_html=True, div_id="archlab-map")
    return atomic_write_text(html, path)


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{v:,.4g}"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return str(v)
