"""Figures drawn from plain tables (lists, dicts, DataFrames); nothing here imports a model."""

from __future__ import annotations

from archlab.plots._bars import plot_methods
from archlab.plots._curves import plot_curves
from archlab.plots._figure import check_image_path, pyplot, save_figure

__all__ = ["check_image_path", "plot_curves", "plot_methods", "pyplot", "save_figure"]
