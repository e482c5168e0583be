"""Distribution-shift scores of architectures against a GHN's reference set: :class:`ShiftScore`.

Scores live in the full embedding space, never on a 2-D projection (UMAP's ``transform`` starts a
new point at the average of its neighbours, so an outlier can land inside the cloud):

- ``knn``: mean Euclidean distance to the ``k`` nearest reference architectures
  (scikit-learn ``NearestNeighbors``);
- ``mahalanobis``: Mahalanobis distance to the reference mean under a Ledoit-Wolf shrinkage
  covariance (well conditioned even with fewer architectures than dimensions).

Readouts (what the scores are computed on): ``mean`` is the embedding as written, the mean of the
GHN's final node states, which cancels graph size: a network of 30 cells and one of 10 cells
built from the same cells have nearly the same mean. ``mean+sum`` concatenates the sum-pooled
node states, recovered exactly as ``mean * num_nodes`` from the embedding file's ``num_nodes``
column and expressed in units of the fitted reference's mean node count (``size_scale_``), so
both halves have the same scale on a graph of average size. Sum pooling is the readout that
keeps multiset sizes apart (Xu et al., 2019, "How powerful are graph neural networks?"); it
makes networks deeper or denser than the reference's score further. Both readouts are scored
in their full feature space.

Calibration: ``fit`` holds out a random ``calibration`` fraction of the reference (architectures
of the same distribution that are *not* in the fitted reference) and scores them like new points.
A raw score becomes the percentile (0-100) of the held-out scores below it, so an in-distribution
architecture is uniform on [0, 100]. Verdicts: below ``bands[0]`` (default the 90th percentile)
``in-distribution``; from ``bands[0]`` to ``bands[1]`` (99th) ``shifted``; above ``far``. The
headline ``percentile`` is that of the ``score`` chosen (default ``knn``); both are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import NearestNeighbors

from archlab.analysis._params import Interval, OneOf, check_is_fitted, validate_params
from archlab.errors import UsageError

SCORES = ("knn", "mahalanobis")
READOUTS = ("mean", "mean+sum")
VERDICTS = ("in-distribution", "shifted", "far")


class ShiftScore(BaseEstimator):
    """How far architectures are from a reference set of graph embeddings (see module docstring).

    Parameters: ``k`` neighbours; ``score`` the headline (``knn`` or ``mahalanobis``);
    ``calibration`` the held-out fraction of the reference; ``bands`` the two verdict percentiles;
    ``random_state`` the seed of the hold-out split; ``readout`` ``mean`` (default) or
    ``mean+sum`` (needs node counts: pass embedding DataFrames with a ``num_nodes`` column).

    Inputs ``X`` (to ``fit`` and every scoring method): an embedding DataFrame
    (:func:`archlab.analysis.read_embeddings`; its ``id`` column names the reference) or, for the
    ``mean`` readout, an ``(N, d)`` matrix.
    Learned attributes: ``nn_``, ``location_``, ``precision_``, ``calibration_scores_``
    (``{score: sorted held-out raw scores}``), ``reference_ids_``, ``n_features_in_`` (embedding
    dimensions), ``size_scale_`` (``mean+sum``: mean node count of the fitted reference, else
    ``None``).
    """

    _constraints = {
        "k": Interval(int, 1, None),
        "score": OneOf(*SCORES),
        "calibration": Interval(float, 0.0, 1.0, open_low=True, open_high=True),
        "random_state": Interval(int, 0, None),
        "readout": OneOf(*READOUTS),
    }

    def __init__(self, k: int = 5, score: str = "knn", calibration: float = 0.2,
                 bands: tuple[float, float] = (90.0, 99.0), random_state: int = 0, readout: str = "mean"):
        self.k = k
        self.score = score
        self.calibration = calibration
        self.bands = bands
        self.random_state = random_state
        self.readout = readout

    # ------------------------------------------------------------------------------ fitting
    def fit(self, X: Any, ids: Sequence[str] | None = None) -> ShiftScore:
        """Fit on the reference ``X`` (see the class docstring); ``ids`` name its rows (for
        ``nearest``; default the DataFrame's ``id`` column, else row numbers)."""
        validate_params(self)
        lo, hi = self._bands()
        emb, sizes = _inputs(X, "reference", self.readout)
        if ids is None and isinstance(X, pd.DataFrame) and "id" in X.columns:
            ids = X["id"].tolist()
        n_cal = int(round(self.calibration * len(emb)))
        if len(emb) - n_cal < self.k + 1 or n_cal < 10:
            raise UsageError(f"the reference has {len(emb)} architectures: too few to fit {self.k} "
                             f"neighbours and hold out {self.calibration:.0%} (at least 10) for "
                             "calibration; embed a larger reference (e.g. --train 2000)")
        ids = np.asarray(ids if ids is not None else [str(i) for i in range(len(emb))], dtype=object)
        if len(ids) != len(emb):
            raise UsageError(f"{len(ids)} ids for {len(emb)} reference embeddings")
        order = np.random.default_rng(self.random_state).permutation(len(emb))
        cal, fit = order[:n_cal], np.sort(order[n_cal:])
        self.n_features_in_ = emb.shape[1]
        self.size_scale_ = None if sizes is None else float(sizes[fit].mean())
        X = readout_features(emb, sizes, self.size_scale_)
        self.nn_ = NearestNeighbors(n_neighbors=self.k).fit(X[fit])
        cov = LedoitWolf().fit(X[fit])
        self.location_, self.precision_ = cov.location_, cov.precision_
        self.reference_ids_ = ids[fit]
        self.calibration_ids_ = ids[cal]
        raw = self._raw(X[cal])
        self.calibration_scores_ = {name: np.sort(v) for name, v in raw.items()}
        self.bands_ = (lo, hi)
        return self

    def _bands(self) -> tuple[float, float]:
        try:
            lo, hi = (float(b) for b in self.bands)
        except (TypeError, ValueError):
            lo = hi = float("nan")
        if not 0 < lo < hi < 100:
            raise UsageError(f"The 'bands' parameter of ShiftScore must be two percentiles "
                             f"0 < low < high < 100; got {self.bands!r}.")
        return lo, hi

    # ------------------------------------------------------------------------------ scoring
    def _raw(self, X: np.ndarray) -> dict[str, np.ndarray]:
        dist, _ = self.nn_.kneighbors(X)
        diff = X - self.location_
        maha = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", diff, self.precision_, diff), 0.0))
        return {"knn": dist.mean(axis=1), "mahalanobis": maha}

    def score_samples(self, X: Any) -> dict[str, np.ndarray]:
        """Raw scores of ``X``: ``{"knn": (n,), "mahalanobis": (n,)}`` (higher = further)."""
        check_is_fitted(self, "nn_")
        return self._raw(self._check(X))

    def percentiles(self, X: Any) -> dict[str, np.ndarray]:
        """Calibrated percentiles (0-100) of each raw score against the held-out reference."""
        raw = self.score_samples(X)
        return {name: to_percentile(v, self.calibration_scores_[name]) for name, v in raw.items()}

    def percentile(self, X: Any) -> np.ndarray:
        """The headline calibrated percentile (of ``score``) of each row of ``X``."""
        return self.percentiles(X)[self.score]

    def verdict(self, X: Any) -> np.ndarray:
        """``in-distribution`` / ``shifted`` / ``far`` for each row of ``X``."""
        return verdicts(self.percentile(X), self.bands_)

    def nearest(self, X: Any, n: int = 5) -> list[list[str]]:
        """Ids of the ``n`` nearest fitted reference architectures of each row of ``X``."""
        check_is_fitted(self, "nn_")
        n = min(n, len(self.reference_ids_))
        _, idx = self.nn_.kneighbors(self._check(X), n_neighbors=n)
        return [list(self.reference_ids_[row]) for row in idx]

    def _check(self, X: Any) -> np.ndarray:
        emb, sizes = _inputs(X, "query", self.readout)
        if emb.shape[1] != self.n_features_in_:
            raise UsageError(f"embeddings have {emb.shape[1]} dimensions but {type(self).__name__} was "
                             f"fitted on {self.n_features_in_}; embed both with the same GHN")
        return readout_features(emb, sizes, self.size_scale_)


def readout_features(embedding: np.ndarray, num_nodes: np.ndarray | None,
                     size_scale: float | None) -> np.ndarray:
    """The scored features: ``embedding`` ``(N, d)`` (mean of node states) alone when
    ``num_nodes`` is ``None``, else ``[mean | mean * num_nodes / size_scale]`` ``(N, 2d)``: the
    sum-pooled node states in units of ``size_scale`` nodes."""
    if num_nodes is None:
        return embedding
    return np.hstack([embedding, embedding * (num_nodes / size_scale)[:, None]])


def _inputs(X: Any, what: str, readout: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The embedding matrix of ``X`` and, for the ``mean+sum`` readout, its node counts."""
    frame = isinstance(X, pd.DataFrame)
    if frame and "embedding" not in X.columns:
        raise UsageError(f"the {what} DataFrame has no 'embedding' column; read it with read_embeddings")
    if frame:
        emb = _as_matrix(np.stack(X["embedding"].to_list()) if len(X) else np.zeros((0, 0)), what)
    else:
        emb = _as_matrix(X, what)
    if readout == "mean":
        return emb, None
    if not frame or "num_nodes" not in X.columns:
        raise UsageError(f"the {readout!r} readout needs the node count of each {what} architecture: pass "
                         "the embedding DataFrame with its 'num_nodes' column (archlab embed writes it), "
                         "or use readout='mean' (archlab shift --readout mean)")
    sizes = X["num_nodes"].to_numpy(dtype=np.float64)
    if not (np.isfinite(sizes).all() and (sizes >= 1).all()):
        raise UsageError(f"the {what} 'num_nodes' column has missing or non-positive node counts")
    return emb, sizes


def to_percentile(values: np.ndarray, reference_sorted: np.ndarray) -> np.ndarray:
    """Percent of ``reference_sorted`` strictly below each value, ties counted half (0-100)."""
    below = np.searchsorted(reference_sorted, values, side="left")
    upto = np.searchsorted(reference_sorted, values, side="right")
    return 100.0 * (below + 0.5 * (upto - below)) / len(reference_sorted)


def verdicts(percentile: np.ndarray, bands: tuple[float, float] = (90.0, 99.0)) -> np.ndarray:
    """Map percentiles to ``in-distribution`` (< bands[0]), ``shifted`` (< bands[1]) or ``far``."""
    idx = np.searchsorted(np.asarray(bands, dtype=float), np.asarray(percentile, dtype=float), side="right")
    return np.asarray(VERDICTS, dtype=object)[idx]


def _as_matrix(X: Any, what: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) == 0:
        raise UsageError(f"the {what} embeddings are empty or not a 2-D (N, d) array (shape {X.shape})")
    if not np.isfinite(X).all():
        raise UsageError(f"the {what} embeddings contain NaN or inf (was the GHN checkpoint corrupt?)")
    return X


def shift_table(estimator: ShiftScore, query: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture of the embedding DataFrame ``query``: ``id, source, percentile,
    verdict``, both raw scores and their percentiles, and the five nearest reference ids."""
    raw = estimator.score_samples(query)
    pct = {name: to_percentile(v, estimator.calibration_scores_[name]) for name, v in raw.items()}
    table = pd.DataFrame({
        "id": query["id"].to_numpy(), "source": query["source"].to_numpy(),
        "percentile": pct[estimator.score], "verdict": verdicts(pct[estimator.score], estimator.bands_),
        "knn": raw["knn"], "mahalanobis": raw["mahalanobis"],
        "knn_percentile": pct["knn"], "mahalanobis_percentile": pct["mahalanobis"],
        "nearest": [";".join(r) for r in estimator.nearest(query, 5)],
    })
    for col in ("params", "flops"):
        if col in query.columns:
            table[col] = query[col].to_numpy()
    return table
