"""Embedding files that survive interruption: :func:`embed_to_file`.

Candidates are embedded in chunks of :data:`CHUNK`; each finished chunk is saved atomically in
``.<name>.partial/`` beside the output. A rerun with the same GHN and the same candidates skips
the saved chunks and continues; when every chunk is done they are merged into the output file
(atomically) and the partial folder is removed. Memory stays at one chunk.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from archlab._io import atomic_write_text
from archlab.analysis._embeddings import (
    CHUNK,
    embed_candidates,
    file_info,
    read_embeddings,
    write_embeddings,
)
from archlab.engine import Candidate


def partial_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


def embed_to_file(ghn, candidates: Iterable[Candidate], path: str | os.PathLike, total: int | None = None,
                  batch_size: int = 4, progress: bool = True, input_size: Any = None) -> int:
    """Embed ``candidates`` with ``ghn`` into the Parquet file ``path``, resumably; returns the row count."""
    info = file_info(ghn)
    work = partial_dir(path)
    marker = work / "run.json"
    run = {"ghn_fingerprint": info["ghn_fingerprint"], "input_size": input_size, "chunk": CHUNK}
    if work.exists() and (not marker.exists() or json.loads(marker.read_text()) != run):
        shutil.rmtree(work)  # left by a run with another GHN or settings: start again
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(run), marker)
    it = iter(candidates)
    parts: list[Path] = []
    bar = tqdm(total=total, desc="embed", unit="arch", disable=not progress)
    for i in itertools.count():
        chunk = list(itertools.islice(it, CHUNK))
        if not chunk:
            break
        part = work / f"{i:06d}.parquet"
        if part.exists() and _ids(part) == [c.id for c in chunk]:
            bar.update(len(chunk))
        else:
            frames = embed_candidates(ghn, chunk, batch_size=batch_size, progress=False, input_size=input_size)
            write_embeddings(frames, part, info)
            bar.update(len(chunk))
        parts.append(part)
    bar.close()
    n = write_embeddings((_frame(p) for p in parts), path, info)
    shutil.rmtree(work)
    return n


def _ids(part: Path) -> list[str]:
    try:
        return read_embeddings(part)["id"].tolist()
    except Exception:  # noqa: BLE001 - an unreadable part is redone, never trusted
        return []


def _frame(part: Path) -> pd.DataFrame:
    df = read_embeddings(part)
    df.attrs = {}
    return df
