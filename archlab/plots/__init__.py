"""Figures drawn from plain tables (lists, dicts, DataFrames); nothing here imports a model."""

from __future__ import annotations

from archlab.plots._bars import plot_methods
from archlab.plots._curves import plot_curves, plot_training_runs
from archlab.plots._figure import check_image_path, pyplot, save_figure
from archlab.plots._map import plot_map_html, plot_map_png
from archlab.plots._properties import plot_property_taus
from archlab.plots._rank import plot_rank_grid, plot_tau_cost
from archlab.plots._shift import plot_shift

__all__ = ["check_image_path", "plot_curves", "plot_map_html", "plot_map_png", "plot_methods", "plot_property_taus", "plot_rank_grid", "plot_tau_cost", "plot_shift", "plot_training_runs", "pyplot", "save_figure"]
