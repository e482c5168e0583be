"""JSON Lines storage of architecture splits (one record per line, streamed both ways).

Record: ``{"id": int, "hash": str, "genotype": {...}, "meta": {...}}`` written with sorted keys
and no spaces, so regenerating a split gives byte-identical files. ``.gz`` paths are gzipped
(with a zero timestamp, also byte-identical).
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

from archlab._io import atomic_open

from ._genotype import Genotype

#: The package holding the shipped evaluation splits (package data, read with importlib.resources).
SHIPPED_PACKAGE = "archlab.space.splits"


def dumps_record(record: dict) -> str:
    """Canonical one-line JSON of a record (sorted keys, no spaces, ASCII)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def write_split(records: Iterable[dict], path: str | os.PathLike) -> int:
    """Stream ``records`` to ``path`` (JSON Lines, gzipped if it ends in ``.gz``), atomically
    (see :mod:`archlab._io`). Returns the record count."""
    path = Path(path)
    n = 0
    with atomic_open(path, "wb") as raw:
        zf = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if path.name.endswith(".gz") else None
        f = io.TextIOWrapper(zf if zf is not None else raw, encoding="ascii", newline="\n")
        try:
            for rec in records:
                f.write(dumps_record(rec))
                f.write("\n")
                n += 1
            f.flush()
        finally:
            f.detach()
            if zf is not None:
                zf.close()
    return n


def read_split(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the records of a JSON Lines split file one at a time (constant memory)."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file {str(path)!r} does not exist")
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not a JSON record ({e.msg})") from None


def _open_text(path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="ascii")
    return path.open("r", encoding="ascii")


def read_genotypes(path: str | os.PathLike) -> Iterator[Genotype]:
    """Yield the :class:`Genotype` of each record of a split file."""
    for rec in read_split(path):
        yield Genotype.from_dict(rec["genotype"])


def split_path(name: str, root: str | os.PathLike | None = None):
    """The split file ``<name>.jsonl``: under ``root`` (a user folder of generated splits) or, with
    no root, the shipped one inside the package (a :mod:`importlib.resources` traversable)."""
    if root is not None:
        return Path(root) / f"{name}.jsonl"
    return resources.files(SHIPPED_PACKAGE).joinpath(f"{name}.jsonl")
