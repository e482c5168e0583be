"""How well a predictor ranks candidates: Kendall τ, Spearman ρ and top-k hits against the truth."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from archlab.errors import UsageError


def _as_scores(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise UsageError(f"{what} must be a 1-D sequence of numbers; got shape {a.shape}")
    return np.where(np.isnan(a), -np.inf, a)


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``values`` (ties broken by position, earliest first)."""
    return np.argsort(-values, kind="stable")[:k]


def ranking_metrics(scores: Sequence[float] | np.ndarray, truth: Sequence[float] | np.ndarray,
                    k: int = 10) -> dict[str, float]:
    """Agreement of ``scores`` (higher = predicted better) with ``truth`` (higher = better).

    Returns ``kendall_tau`` (τ-b) and ``spearman_rho`` (scipy.stats), ``top_k_hits`` (how many
    of the true ``k`` best are among the ``k`` best by score), ``top_k_rate`` (hits / k), ``k``
    (capped at ``n``) and ``n``. NaN and -inf, in either array, are the worst value (tied
    with each other); ties at the top-k boundary go to the earlier position. τ and ρ are NaN
    when undefined (fewer than two candidates, or constant scores or truth).
    """
    from scipy.stats import kendalltau, rankdata, spearmanr

    s, t = _as_scores(scores, "scores"), _as_scores(truth, "truth")
    if s.shape != t.shape:
        raise UsageError(f"scores and truth differ in length: {len(s)} vs {len(t)}")
    if len(s) == 0:
        raise UsageError("ranking_metrics needs at least one candidate")
    if int(k) != k or k < 1:
        raise UsageError(f"k must be a positive integer; got {k!r}")
    n, k = len(s), min(int(k), len(s))
    if n >= 2:
        # ranks keep -inf ties exact and make scipy's tie handling see plain finite numbers
        rs, rt = rankdata(s), rankdata(t)
        with warnings.catch_warnings():  # constant input: NaN, as documented
            warnings.simplefilter("ignore")
            tau, rho = float(kendalltau(rs, rt).statistic), float(spearmanr(rs, rt).statistic)
    else:
        tau = rho = float("nan")
    hits = len(set(top_k(s, k).tolist()) & set(top_k(t, k).tolist()))
    return {"kendall_tau": tau, "spearman_rho": rho, "top_k_hits": hits, "top_k_rate": hits / k,
            "k": k, "n": n}
