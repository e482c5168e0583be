"""Evaluation, fine-tuning and post-processing of networks with GHN-predicted parameters, plus
small training utilities (budgets, atomic checkpoints, RNG state, metrics CSV)."""

from __future__ import annotations

from archlab.engine._adapt import adapt_to_small_images, register_small_image_hook
from archlab.engine._common import (
    Budget,
    CSVLog,
    atomic_save,
    resolve_device,
    rng_state,
    set_rng_state,
)
from archlab.engine._demo import DemoConfig, run_demo
from archlab.engine._evaluate import accuracy, evaluate, format_summary, summarize
from archlab.engine._finetune import FinetuneConfig, FinetuneResult, finetune
from archlab.engine._plots import plot_curves
from archlab.engine._postprocess import POSTPROCESS, orthogonalize, postprocess, weight_layers

__all__ = [
    "POSTPROCESS",
    "Budget",
    "DemoConfig",
    "run_demo",
    "CSVLog",
    "FinetuneConfig",
    "FinetuneResult",
    "accuracy",
    "adapt_to_small_images",
    "atomic_save",
    "evaluate",
    "finetune",
    "format_summary",
    "orthogonalize",
    "plot_curves",
    "postprocess",
    "register_small_image_hook",
    "resolve_device",
    "rng_state",
    "set_rng_state",
    "summarize",
    "weight_layers",
]
