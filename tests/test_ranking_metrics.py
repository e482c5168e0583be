"""ranking_metrics: Kendall τ / Spearman ρ against scipy, top-k by hand, NaN and -inf as worst."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from archlab.analysis import ranking_metrics
from archlab.errors import UsageError


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scipy_on_random_arrays_with_ties(seed):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=30)
    scores = np.round(truth + rng.normal(size=30), 1)  # rounding makes ties
    scores[:3] = scores[3]
    got = ranking_metrics(scores, truth, k=5)
    assert got["kendall_tau"] == pytest.approx(kendalltau(scores, truth).statistic, abs=1e-12)
    assert got["spearman_rho"] == pytest.approx(spearmanr(scores, truth).statistic, abs=1e-12)
    assert got["n"] == 30 and got["k"] == 5


def test_perfect_and_reversed_orders():
    truth = [0.1, 0.5, 0.3, 0.9, 0.7]
    same = ranking_metrics([1, 5, 3, 9, 7], truth, k=2)
    assert (same["kendall_tau"], same["spearman_rho"], same["top_k_hits"], same["top_k_rate"]) == (
        pytest.approx(1.0), pytest.approx(1.0), 2, 1.0)
    rev = ranking_metrics([-1, -5, -3, -9, -7], truth, k=2)
    assert rev["kendall_tau"] == pytest.approx(-1.0) and rev["spearman_rho"] == pytest.approx(-1.0)
    assert rev["top_k_hits"] == 0


def test_top_k_by_hand():
    scores = [0.9, 0.1, 0.8, 0.3, 0.5]
    truth = [1, 2, 3, 4, 5]  # true best: 4, 3, 2, 1, 0
    assert ranking_metrics(scores, truth, k=2)["top_k_hits"] == 0  # {0, 2} vs {4, 3}
    three = ranking_metrics(scores, truth, k=3)  # {0, 2, 4} vs {4, 3, 2}
    assert three["top_k_hits"] == 2 and three["top_k_rate"] == pytest.approx(2 / 3)
    capped = ranking_metrics(scores, truth, k=10)
    assert capped["k"] == 5 and capped["top_k_hits"] == 5 and capped["top_k_rate"] == 1.0


def test_nan_and_minus_inf_are_worst():
    truth = [0.0, 1.0, 2.0, 3.0]
    got = ranking_metrics([math.nan, 1.0, 2.0, 3.0], truth, k=1)
    assert got["kendall_tau"] == pytest.approx(1.0) and got["top_k_hits"] == 1
    # NaN and -inf tie at the bottom: the same as two equal lowest scores
    tied = ranking_metrics([math.nan, -math.inf, 2.0, 3.0], truth)
    assert tied["kendall_tau"] == pytest.approx(kendalltau([0, 0, 2, 3], truth).statistic)
    assert tied["spearman_rho"] == pytest.approx(spearmanr([0, 0, 2, 3], truth).statistic)
    # a NaN never enters the top k; +inf is the best
    assert ranking_metrics([math.nan, 1.0, math.inf], [0, 1, 2], k=1)["top_k_hits"] == 1
    # NaN in the truth is the worst truth too
    assert ranking_metrics([0, 1, 2], [math.nan, 1, 2])["spearman_rho"] == pytest.approx(1.0)


def test_undefined_correlations_are_nan():
    one = ranking_metrics([1.0], [2.0], k=3)
    assert math.isnan(one["kendall_tau"]) and math.isnan(one["spearman_rho"])
    assert one["k"] == 1 and one["top_k_hits"] == 1
    const = ranking_metrics([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    assert math.isnan(const["kendall_tau"]) and math.isnan(const["spearman_rho"])


def test_bad_arguments():
    with pytest.raises(UsageError, match="differ in length"):
        ranking_metrics([1, 2], [1, 2, 3])
    with pytest.raises(UsageError):
        ranking_metrics([], [])
    with pytest.raises(UsageError):
        ranking_metrics([1, 2], [1, 2], k=0)
    with pytest.raises(UsageError):
        ranking_metrics([[1, 2]], [[1, 2]])
