"""Finalists trained fully: the ``K`` best architectures of a study, with the ranking issue's
ground truth (same cache layout: ``DIR/ground_truth/``, resumable, shared by workers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from archlab.analysis import GroundTruthSpec, ground_truth, ranking_metrics
from archlab.engine import Candidate
from archlab.search._export import accuracy_index, top_trials
from archlab.space import Genotype


def finalists(study: Any, k: int) -> list[tuple[Candidate, float]]:
    """``(candidate, proxy accuracy)`` of the ``k`` best completed trials."""
    i = accuracy_index(study)
    out = []
    for t in top_trials(study, k):
        a = t.user_attrs
        g = Genotype.from_dict(json.loads(a["genotype"]))
        out.append((Candidate(id=a["candidate_id"], source="search", genotype=g, width=int(a["width"])),
                    float(t.values[i])))
    return out


def retrain_top(study: Any, k: int, out: str | Path, spec: GroundTruthSpec, data_dir: str | None = None,
                device: Any = "cpu", progress: bool = True) -> tuple[pd.DataFrame, dict[str, float]]:
    """Train the ``k`` best architectures; returns the table (``id, proxy, trained``) and the
    proxy's Kendall τ / Spearman ρ against the trained accuracy over them."""
    best = finalists(study, k)
    truth = ground_truth([c for c, _ in best], out, spec, data_dir, device, progress=progress)
    table = pd.DataFrame({"id": [c.id for c, _ in best], "proxy": [p for _, p in best],
                          "trained": [truth[c.id]["top1"] for c, _ in best],
                          "params": [truth[c.id]["n_params"] for c, _ in best]})
    metrics = ranking_metrics(table["proxy"].to_numpy(), table["trained"].to_numpy(), k=min(3, len(table)))
    return table, metrics
