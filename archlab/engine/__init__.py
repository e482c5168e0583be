"""Every loop that runs networks: GHN training (with DDP and the architecture stream), evaluation,
fine-tuning and post-processing of predicted parameters, plus candidates (one id scheme for every
population of architectures) and small training utilities (budgets, RNG state, metrics CSV)."""

from __future__ import annotations

from archlab._device import resolve_device
from archlab._io import atomic_save
from archlab.engine._adapt import adapt_to_small_images, register_small_image_hook
from archlab.engine._candidate import (
    Candidate,
    from_genotype_file,
    from_models,
    from_search,
    from_split,
    from_train_stream,
)
from archlab.engine._common import Budget, CSVLog, rng_state, set_rng_state
from archlab.engine._evaluate import (
    accuracy,
    evaluate,
    evaluate_candidates,
    format_summary,
    summarize,
)
from archlab.engine._finetune import FinetuneConfig, FinetuneResult, finetune
from archlab.engine._postprocess import POSTPROCESS, orthogonalize, postprocess, weight_layers
from archlab.engine._short_ft import (
    PROXIES,
    ProxyData,
    ShortFTResult,
    proxy_data,
    proxy_score,
    short_finetune,
)
from archlab.engine._train import TrainConfig, TrainResult, train_ghn

__all__ = [
    "POSTPROCESS",
    "Candidate",
    "from_genotype_file",
    "from_models",
    "from_search",
    "from_split",
    "from_train_stream",
    "Budget",
    "CSVLog",
    "FinetuneConfig",
    "FinetuneResult",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "adapt_to_small_images",
    "atomic_save",
    "evaluate",
    "evaluate_candidates",
    "finetune",
    "format_summary",
    "orthogonalize",
    "postprocess",
    "register_small_image_hook",
    "resolve_device",
    "rng_state",
    "set_rng_state",
    "summarize",
    "train_ghn",
    "weight_layers",
    "PROXIES",
    "ProxyData",
    "ShortFTResult",
    "proxy_data",
    "proxy_score",
    "short_finetune",
]
