"""Analyses on top of trained GHNs: embedding datasets (Parquet), and (next) ranking, proxies,
shift scores and maps. Every table joins on the candidate id of :mod:`archlab.engine`."""

from __future__ import annotations

from archlab.analysis._embed_file import embed_to_file
from archlab.analysis._embeddings import (
    EmbeddingFileError,
    check_compatible,
    embed_candidates,
    embedding_matrix,
    file_info,
    read_embeddings,
    write_embeddings,
)
from archlab.analysis._ground_truth import GroundTruthSpec, ground_truth
from archlab.analysis._map import EmbeddingMap, map_frame
from archlab.analysis._metrics import ranking_metrics
from archlab.analysis._params import InvalidParameterError, NotFittedError
from archlab.analysis._properties import (
    PROPERTIES,
    REGRESSORS,
    PropertyRegressor,
    PropertyResult,
    predict_properties,
    properties_frame,
    properties_markdown,
    read_labels,
)
from archlab.analysis._proxies import PROXIES, zero_cost
from archlab.analysis._rank import METHODS as RANK_METHODS
from archlab.analysis._rank import correlations, markdown_table, rank
from archlab.analysis._shift import ShiftScore, shift_table, to_percentile, verdicts

__all__ = [
    "embed_to_file",
    "GroundTruthSpec",
    "ground_truth",
    "RANK_METHODS",
    "correlations",
    "markdown_table",
    "rank",
    "EmbeddingMap",
    "map_frame",
    "PROPERTIES",
    "REGRESSORS",
    "PropertyRegressor",
    "PropertyResult",
    "predict_properties",
    "properties_frame",
    "properties_markdown",
    "read_labels",
    "PROXIES",
    "ranking_metrics",
    "zero_cost",
    "InvalidParameterError",
    "NotFittedError",
    "ShiftScore",
    "shift_table",
    "to_percentile",
    "verdicts",
    "EmbeddingFileError",
    "check_compatible",
    "embed_candidates",
    "embedding_matrix",
    "file_info",
    "read_embeddings",
    "write_embeddings",
]
