"""Analyses on top of trained GHNs: embedding datasets (Parquet), and (next) ranking, proxies,
shift scores and maps. Every table joins on the candidate id of :mod:`archlab.engine`."""

from __future__ import annotations

from archlab.analysis._embeddings import (
    EmbeddingFileError,
    check_compatible,
    embed_candidates,
    embedding_matrix,
    file_info,
    read_embeddings,
    write_embeddings,
)

__all__ = [
    "EmbeddingFileError",
    "check_compatible",
    "embed_candidates",
    "embedding_matrix",
    "file_info",
    "read_embeddings",
    "write_embeddings",
]
