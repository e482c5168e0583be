"""Embedding datasets: graph embeddings of candidates, with ids and metadata, as Parquet.

A file has one row per candidate: ``id``, ``source``, ``embedding`` (a fixed-length float32 list)
and metadata columns (``params``, ``flops``, ``depth``, ``width``, ``num_nodes``, ``nodes_<op>``).
Its Parquet key-value metadata ``archlab`` holds the GHN's fingerprint, its config, the image size
and the archlab version, so files from two different GHNs are never combined by mistake.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from archlab import __version__
from archlab._io import atomic_open
from archlab.engine import Candidate
from archlab.errors import ArchlabError, UsageError
from archlab.ghn import fingerprint

META_KEY = b"archlab"
CHUNK = 256  # rows per Parquet row group (and per progress update)
BASE_COLUMNS = ("id", "source", "embedding")


class EmbeddingFileError(ArchlabError, ValueError):
    """An embedding file that cannot be read, or files that must not be combined."""


def embed_candidates(ghn, candidates: Iterable[Candidate], batch_size: int = 4, metadata: bool = True,
                     progress: bool = True, total: int | None = None,
                     input_size: Any = None) -> Iterator[pd.DataFrame]:
    """Yield DataFrames of up to ``CHUNK`` rows (``id, source, embedding`` + metadata), embedding
    ``batch_size`` architectures per GHN pass (4: GHN-2's per-level products and GHN-3's padded
    attention grow with the batch, so small batches are fastest on a CPU).

    Each candidate is built for the GHN's classes and image size, its graph as GHN.predict builds
    it (at ``input_size``; default the native size, else the GHN's image size).
    """
    size = ghn.image_size
    buf: list[tuple[Candidate, Any]] = []
    bar = tqdm(total=total, desc="embed", unit="arch", disable=not progress)

    def flush() -> pd.DataFrame:
        graphs = [g for _, g in buf]
        emb = ghn.embed(graphs, batch_size=batch_size)
        rows = []
        for (cand, g), e in zip(buf, emb):
            row: dict[str, Any] = {"id": cand.id, "source": cand.source, "embedding": e.astype(np.float32)}
            if metadata:
                row.update(cand.metadata(ghn.num_classes, size, graph=g, input_size=input_size))
            rows.append(row)
        bar.update(len(buf))
        buf.clear()
        return pd.DataFrame(rows)

    for cand in candidates:
        if cand.is_genotype and input_size is None:  # straight from the genotype: no network built
            graph = cand.graph(ghn.num_classes, size)
        else:
            graph = ghn.graph_of(cand.build(ghn.num_classes, size), input_size)  # as GHN.predict builds it
        buf.append((cand, graph))
        if len(buf) >= CHUNK:
            yield flush()
    if buf:
        yield flush()
    bar.close()


def file_info(ghn) -> dict[str, Any]:
    """The metadata record stored in every embedding file written with ``ghn``."""
    return {"ghn_fingerprint": fingerprint(ghn), "ghn_config": ghn.config.to_dict(),
            "image_size": ghn.image_size, "num_classes": ghn.num_classes, "archlab_version": __version__}


def write_embeddings(chunks: Iterable[pd.DataFrame], path: str | os.PathLike, info: dict[str, Any]) -> int:
    """Stream DataFrame ``chunks`` to a Parquet file atomically; returns the row count."""
    import pyarrow.parquet as pq

    n = 0
    with atomic_open(path, "wb") as f:
        writer = None
        try:
            for df in chunks:
                if df.empty:
                    continue
                table = _to_table(df)
                if writer is None:
                    meta = dict(table.schema.metadata or {})
                    meta[META_KEY] = json.dumps(info, default=str).encode()
                    schema = table.schema.with_metadata(meta)
                    writer = pq.ParquetWriter(f, schema)
                table = table.cast(writer.schema) if table.schema != writer.schema else table
                writer.write_table(table)
                n += len(df)
            if writer is None:
                raise UsageError("no architectures to embed")
        finally:
            if writer is not None:
                writer.close()
    return n


def _to_table(df: pd.DataFrame):
    import pyarrow as pa

    dim = len(df["embedding"].iloc[0])
    cols = {c: df[c] for c in df.columns if c != "embedding"}
    emb = pa.FixedSizeListArray.from_arrays(
        pa.array(np.stack(df["embedding"].to_list()).astype(np.float32).ravel()), dim)
    table = pa.Table.from_pandas(pd.DataFrame(cols), preserve_index=False)
    return table.add_column(2, "embedding", emb)


def read_embeddings(path: str | os.PathLike) -> pd.DataFrame:
    """An embedding file as a DataFrame (``embedding``: float32 arrays); ``df.attrs["archlab"]``
    holds the file's metadata record. Reading never executes code from the file."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise EmbeddingFileError(f"embedding file {str(path)!r} does not exist")
    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - any parse failure is the same user-facing problem
        raise EmbeddingFileError(f"{path}: not a readable Parquet embedding file ({type(e).__name__}: "
                                 f"{str(e)[:200]})") from e
    meta = (table.schema.metadata or {}).get(META_KEY)
    missing = [c for c in BASE_COLUMNS if c not in table.column_names]
    if meta is None or missing:
        raise EmbeddingFileError(f"{path}: not an archlab embedding file "
                                 f"({'no archlab metadata' if meta is None else f'lacks columns {missing}'}); "
                                 "write one with `archlab embed`")
    df = table.to_pandas()
    df["embedding"] = [np.asarray(e, dtype=np.float32) for e in df["embedding"]]
    df.attrs["archlab"] = json.loads(meta)
    df.attrs["path"] = str(path)
    return df


def embedding_matrix(df: pd.DataFrame) -> np.ndarray:
    """The ``(N, d)`` float32 matrix of an embedding DataFrame."""
    if len(df) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(df["embedding"].to_list()).astype(np.float32)


def check_compatible(frames: list[pd.DataFrame]) -> None:
    """Refuse to combine embedding files written with different GHNs, naming both files."""
    first = frames[0]
    ref = first.attrs.get("archlab", {}).get("ghn_fingerprint")
    for df in frames[1:]:
        other = df.attrs.get("archlab", {}).get("ghn_fingerprint")
        if other != ref:
            raise EmbeddingFileError(
                f"{first.attrs.get('path', 'first file')} (GHN {ref}) and {df.attrs.get('path', 'another file')} "
                f"(GHN {other}) were embedded with different GHN checkpoints; embed both with the same --ckpt")
