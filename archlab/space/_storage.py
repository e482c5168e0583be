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
from pathlib import Path

from ._genotype import Genotype

#: Where the shipped evaluation splits live (``<repo>/datasets/deepnets1m``).
DATASET_DIR = Path(__file__).resolve().parents[2] / "datasets" / "deepnets1m"


def dumps_record(record: dict) -> str:
    """Canonical one-line JSON of a record (sorted keys, no spaces, ASCII)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def _open_write(path: Path, gz: bool):
    if gz:
        raw = open(path, "wb")  # noqa: SIM115 - closed via the returned wrapper
        zf = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
        return io.TextIOWrapper(zf, encoding="ascii", newline="\n"), raw
    return open(path, "w", encoding="ascii", newline="\n"), None  # noqa: SIM115


def write_split(records: Iterable[dict], path: str | os.PathLike) -> int:
    """Stream ``records`` to ``path`` (JSON Lines, gzipped if it ends in ``.gz``), atomically:
    written to a temporary file in the same folder, then renamed. Returns the record count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    n = 0
    try:
        f, raw = _open_write(tmp, path.name.endswith(".gz"))
        try:
            for rec in records:
                f.write(dumps_record(rec))
                f.write("\n")
                n += 1
        finally:
            f.close()
            if raw is not None:
                raw.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def read_split(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the records of a JSON Lines split file one at a time (constant memory)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"split file {str(path)!r} does not exist")
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="ascii") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not a JSON record ({e.msg})") from None


def read_genotypes(path: str | os.PathLike) -> Iterator[Genotype]:
    """Yield the :class:`Genotype` of each record of a split file."""
    for rec in read_split(path):
        yield Genotype.from_dict(rec["genotype"])


def split_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Path of a shipped split file: ``<root or DATASET_DIR>/<name>.jsonl``."""
    return Path(root if root is not None else DATASET_DIR) / f"{name}.jsonl"
