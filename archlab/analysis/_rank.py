"""Ranking candidates by cheap predictors of their trained accuracy: :func:`rank`.

Methods (every score is "higher = predicted better"; NaN/inf rank worst):

- ``ghn``: top-1 of the GHN-predicted parameters on the held-out validation images (no training);
- ``ghn-loss``: minus their mean cross-entropy on the same images (the same prediction: asked
  together, the two share one build, prediction and pass, and each reports that time);
- ``ghn-ft`` / ``random-ft``: top-1 after ``ft_steps`` SGD steps from GHN-predicted parameters
  (post-processed with ``ft_post``: ``noise`` by default, or ``orth``/``none``) / from the default
  initialisation, same data order;
- the zero-cost proxies of :func:`archlab.analysis.zero_cost` (one training minibatch, default
  initialisation): ``synflow, snip, grasp, fisher, grad_norm, jacov, naswot``;
- ``params``, ``flops``: model size (bigger = predicted better, the usual baseline).

With ground truth (:mod:`._ground_truth`), :func:`correlations` reports per method Kendall τ,
Spearman ρ, the top-10 hit rate and the cost in seconds per candidate. Scores are cached in
``DIR/scores.csv`` (rewritten atomically after each candidate), so a killed run continues; the
settings they were scored with sit beside it in ``DIR/scores.json``, and a run with other settings
(steps, seed, post-processing, GHN, data) is refused rather than served stale scores.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from archlab._device import resolve_device
from archlab._io import atomic_write_text
from archlab.analysis._metrics import ranking_metrics
from archlab.analysis._proxies import PROXIES as ZERO_COST
from archlab.analysis._proxies import zero_cost
from archlab.engine import Candidate
from archlab.engine._common import seed_everything
from archlab.engine._evaluate import scores
from archlab.engine._short_ft import ProxyData, proxy_score
from archlab.errors import UsageError

GHN_METHODS = ("ghn", "ghn-loss")
FT_METHODS = ("ghn-ft", "random-ft")
SIZE_METHODS = ("params", "flops")
METHODS = (*GHN_METHODS, *FT_METHODS, *ZERO_COST, *SIZE_METHODS)
#: how accuracies are scored: in eval mode (dropout off); caches scored before that fix are refused
EVAL_MODE = "eval"


def check_methods(methods: Sequence[str], ghn: Any) -> list[str]:
    """The methods, validated (unknown names, duplicates, GHN methods without a GHN)."""
    methods = [m.strip() for m in methods if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UsageError(f"unknown ranking method(s) {unknown or methods}; choose from {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise UsageError(f"ranking methods listed twice: {methods}")
    if ghn is None and any(m in (*GHN_METHODS, "ghn-ft") for m in methods):
        raise UsageError("methods ghn, ghn-loss and ghn-ft need a GHN checkpoint (--ckpt)")
    return methods


def _zero_cost_batch(data: ProxyData, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return next(iter(data.train_loader(seed)))


def score_candidate(cand: Candidate, methods: list[str], ghn: Any, data: ProxyData, ft_steps: int,
                    seed: int, device: Any, ft_post: str = "noise") -> dict[str, Any]:
    """``{method: score, "<method>_s": seconds}`` of one candidate."""
    row: dict[str, Any] = {"id": cand.id, "source": cand.source}
    asked = [m for m in methods if m in GHN_METHODS]
    if asked:
        t = time.perf_counter()
        top1, loss = ghn_scores(cand, ghn, data, seed, device)
        for m in asked:
            row[m], row[f"{m}_s"] = top1 if m == "ghn" else -loss, time.perf_counter() - t
    for m in (m for m in methods if m in FT_METHODS):
        t = time.perf_counter()
        row[m] = proxy_score(cand, m, ghn, data, ft_steps, seed=seed, device=device, post=ft_post).final_top1
        row[f"{m}_s"] = time.perf_counter() - t
    zc = [m for m in methods if m in ZERO_COST]
    if zc:
        t = time.perf_counter()
        seed_everything(seed)
        model = cand.build(data.num_classes, data.image_size).to(device)
        x, y = _zero_cost_batch(data, seed)
        values = zero_cost(model, x.to(device), y.to(device), proxies=zc)
        per = (time.perf_counter() - t) / len(zc)
        for m in zc:
            row[m], row[f"{m}_s"] = values[m], per
    sizes = [m for m in methods if m in SIZE_METHODS]
    if sizes:
        t = time.perf_counter()
        meta = cand.metadata(data.num_classes, data.image_size)
        for m in sizes:
            row[m], row[f"{m}_s"] = float(meta[m]), (time.perf_counter() - t) / len(sizes)
    return row


def ghn_scores(cand: Candidate, ghn: Any, data: ProxyData, seed: int, device: Any) -> tuple[float, float]:
    """Top-1 (%) and mean cross-entropy of ``cand`` with GHN-predicted parameters on the held-out
    images (built from ``seed``, as :func:`archlab.engine.proxy_score` does for ``ghn``)."""
    seed_everything(seed)
    model = cand.build(data.num_classes, data.image_size)
    ghn.predict(model)
    top1, _, _, loss = scores(model, data.eval_loader(), resolve_device(device))
    return top1, loss


def rank(candidates: Sequence[Candidate], methods: Sequence[str], ghn: Any, data: ProxyData,
         out: str | Path, ft_steps: int = 50, seed: int = 0, device: Any = "cpu",
         progress: bool = True, ft_post: str = "noise") -> pd.DataFrame:
    """One row per candidate: ``id, source``, a column per method and ``<method>_s`` (its cost in
    seconds). Cached in ``out/scores.csv``: scores made with these settings are reused (a
    cached candidate is scored only for the methods it lacks); a cache scored with other
    settings is refused (UsageError naming them)."""
    methods = check_methods(methods, ghn)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "scores.csv"
    uses_ghn = any(m in (*GHN_METHODS, "ghn-ft") for m in methods)  # random-ft's scores do not depend on it
    _claim_cache(out / "scores.json", scoring_settings(ghn if uses_ghn else None, data, ft_steps, seed, ft_post),
                 cache)
    done = _cached(cache)
    rows = []
    for cand in tqdm(candidates, desc="rank", unit="net", disable=not progress):
        row = done.get(cand.id, {})
        missing = [m for m in methods if not _scored(row, m)]
        if missing:  # new, or cached before these methods were asked for
            row = {**row, **score_candidate(cand, missing, ghn, data, ft_steps, seed, device, ft_post)}
            done[cand.id] = row
            atomic_write_text(pd.DataFrame(list(done.values())).to_csv(index=False), cache)
        rows.append(row)
    return pd.DataFrame(rows)


def scoring_settings(ghn: Any, data: ProxyData, ft_steps: int, seed: int, ft_post: str) -> dict[str, Any]:
    """What makes two runs' scores the same: fine-tuning, seed, GHN (``None`` where no method
    uses one) and data."""
    from archlab.ghn import fingerprint

    return {"ft_steps": ft_steps, "seed": seed, "ft_post": ft_post, "eval_mode": EVAL_MODE,
            "ghn": fingerprint(ghn) if ghn is not None else None, "num_classes": data.num_classes,
            "image_size": data.image_size, "train_images": len(data.train), "eval_images": len(data.eval),
            "batch_size": data.batch_size}


def _claim_cache(path: Path, settings: dict[str, Any], cache: Path) -> None:
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"{path}: unreadable ({e}); delete it and {cache.name} to rescore") from None
        changed = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if changed and cache.exists():
            what = ", ".join(f"{k}={a!r} (now {b!r})" for k, (a, b) in changed.items())
            raise UsageError(f"{cache} holds scores made with {what}; use another --out, or delete "
                             f"{cache.name} and {path.name} to rescore (other caches in the folder are kept)")
    atomic_write_text(json.dumps(settings, indent=1) + "\n", path)


def _cached(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    return {r["id"]: r for r in pd.read_csv(path).to_dict("records")}


def _scored(row: dict[str, Any], method: str) -> bool:
    """Whether a cached row holds ``method`` (its time is recorded even when the score is NaN)."""
    s = row.get(f"{method}_s")
    return s is not None and not (isinstance(s, float) and math.isnan(s))


def correlations(table: pd.DataFrame, methods: Sequence[str], truth: str = "ground_truth",
                 k: int = 10) -> pd.DataFrame:
    """Per method: ``kendall_tau``, ``spearman``, ``top10_hit`` (hits among the true ``k`` best),
    ``seconds_per_candidate``; rows without ground truth are left out."""
    known = table[table[truth].notna()]
    rows = []
    for m in methods:
        metrics = ranking_metrics(known[m].to_numpy(dtype=float), known[truth].to_numpy(dtype=float), k=k)
        cost = known.get(f"{m}_s")
        rows.append({"method": m, "kendall_tau": metrics["kendall_tau"], "spearman": metrics["spearman_rho"],
                     f"top{k}_hit": metrics["top_k_hits"], "n": len(known),
                     "seconds_per_candidate": float(cost.mean()) if cost is not None else math.nan})
    return pd.DataFrame(rows)


def markdown_table(corr: pd.DataFrame) -> str:
    """The correlation table as GitHub markdown (best τ first)."""
    corr = corr.sort_values("kendall_tau", ascending=False, na_position="last")
    hit = next(c for c in corr.columns if c.startswith("top") and c.endswith("_hit"))
    lines = [f"| method | Kendall τ | Spearman ρ | {hit.replace('_', ' ')} | s / candidate |",
             "|---|---|---|---|---|"]
    for r in corr.to_dict("records"):
        lines.append(f"| {r['method']} | {_fmt(r['kendall_tau'])} | {_fmt(r['spearman'])} | "
                     f"{r[hit]:.0f} | {r['seconds_per_candidate']:.3g} |")
    return "\n".join(lines) + "\n"


def _fmt(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"
