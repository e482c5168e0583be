"""2-D maps of embedding sets: :class:`EmbeddingMap` (UMAP fitted on the reference, PCA as an
option and as the fallback for sets too small for UMAP) and :func:`map_frame`, the table the
map figures draw.

New architectures are placed with ``transform`` on the fitted reference map. A map is for
looking, not for measuring: distances on it are not the shift score (see :mod:`._shift`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA

from archlab._optional import require
from archlab.analysis._embeddings import check_compatible, embedding_matrix
from archlab.analysis._params import Interval, OneOf, check_is_fitted, validate_params
from archlab.errors import UsageError

#: below this many reference architectures UMAP's neighbour graph is too thin: PCA is used
MIN_UMAP = 20


class EmbeddingMap(BaseEstimator):
    """Project embeddings to 2-D. ``method``: ``umap`` (default) or ``pca``.

    Learned attributes: ``method_`` (what was used; ``pca`` when the reference has fewer than
    ``MIN_UMAP`` rows), ``projector_``, ``reference_xy_``.
    """

    _constraints = {
        "method": OneOf("umap", "pca"),
        "n_neighbors": Interval(int, 2, None),
        "min_dist": Interval(float, 0.0, 1.0),
        "random_state": Interval(int, 0, None),
    }

    def __init__(self, method: str = "umap", n_neighbors: int = 15, min_dist: float = 0.1,
                 random_state: int = 0):
        self.method = method
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.random_state = random_state

    def fit(self, X: Any) -> EmbeddingMap:
        """Fit the projection on reference embeddings ``X`` ``(N, d)``."""
        validate_params(self)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or len(X) < 3:
            raise UsageError(f"a map needs at least 3 reference architectures; got {len(X)}")
        self.method_ = "pca" if self.method == "pca" or len(X) < MIN_UMAP else "umap"
        if self.method_ == "umap":
            umap = require("umap", "UMAP maps (archlab map --method umap)")
            self.projector_ = umap.UMAP(n_neighbors=min(self.n_neighbors, len(X) - 1), min_dist=self.min_dist,
                                        random_state=self.random_state, n_jobs=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numba / n_jobs notices
                self.reference_xy_ = self.projector_.fit_transform(X)
        else:
            self.projector_ = PCA(n_components=2, random_state=self.random_state)
            self.reference_xy_ = self.projector_.fit_transform(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Place new embeddings on the fitted map: ``(n, 2)``."""
        check_is_fitted(self, "projector_")
        X = np.asarray(X, dtype=np.float32)
        if len(X) == 0:
            return np.zeros((0, 2), dtype=np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.projector_.transform(X))


def map_frame(reference: pd.DataFrame, others: list[pd.DataFrame], mapper: EmbeddingMap,
              labels: pd.DataFrame | None = None) -> pd.DataFrame:
    """``x, y, id, source, role`` (``reference`` / ``new``) and metadata for every architecture;
    ``labels`` (a table with an ``id`` column, e.g. accuracies or shift percentiles) is joined on id."""
    check_compatible([reference, *others])
    mapper.fit(embedding_matrix(reference))
    parts = [_part(reference, mapper.reference_xy_, "reference")]
    parts += [_part(df, mapper.transform(embedding_matrix(df)), "new") for df in others if len(df)]
    frame = pd.concat(parts, ignore_index=True)
    if labels is not None:
        if "id" not in labels.columns:
            raise UsageError("the labels table needs an 'id' column to join on")
        extra = labels.drop(columns=[c for c in labels.columns if c in frame.columns and c != "id"])
        frame = frame.merge(extra.drop_duplicates("id"), on="id", how="left")
    frame.attrs["method"] = mapper.method_
    return frame


def _part(df: pd.DataFrame, xy: np.ndarray, role: str) -> pd.DataFrame:
    out = df.drop(columns=["embedding"]).copy()
    out.insert(0, "y", xy[:, 1])
    out.insert(0, "x", xy[:, 0])
    out["role"] = role
    return out
