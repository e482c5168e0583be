"""Where a study lives: the ``--storage`` URL decides, as in Optuna's own CLI.

- no URL: a journal file ``DIR/study.journal`` (``JournalStorage(JournalFileBackend)``, safe for
  several worker processes on one machine);
- ``redis://...``: ``JournalStorage(JournalRedisBackend)``;
- an existing file, or a path without ``://``: a journal file at that path;
- any other URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``): ``RDBStorage`` with
  Optuna's heartbeat (``heartbeat_interval``, ``grace_period``) and
  ``RetryHeartbeatStaleTrialCallback(max_retry=3)``. SQLAlchemy 2.1 maps a bare
  ``postgresql://`` to the psycopg 3 driver; when only psycopg2 is installed (the ``postgres``
  extra), such a URL is opened as ``postgresql+psycopg2://``.

Journal storages have no heartbeat in Optuna; :mod:`archlab.search._heartbeat` supplies one.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archlab._optional import require
from archlab.errors import MissingDependencyError, UsageError

JOURNAL_NAME = "study.journal"
MAX_RETRY = 3
SCHEMA_ATTEMPTS = 5


@dataclass(frozen=True)
class StorageInfo:
    """An opened storage: ``kind`` is ``"journal"`` or ``"rdb"``; ``url`` is what to pass as
    ``--storage`` to more workers (a journal: its file path)."""

    storage: Any
    url: str
    kind: str

    @property
    def display(self) -> str:
        """The URL with any password masked."""
        return mask_password(self.url)


def mask_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def storage_url(url: str | None, out_dir: str | os.PathLike | None) -> str:
    """The URL a worker uses: ``url``, else the journal file under ``out_dir``."""
    if url:
        return url
    if out_dir is None:
        raise UsageError("give --storage URL (or --out DIR for a journal file DIR/study.journal)")
    return str(Path(out_dir) / JOURNAL_NAME)


def is_journal_url(url: str) -> bool:
    return url.startswith("redis") or os.path.isfile(url) or "://" not in url


def open_storage(url: str, heartbeat_interval: int = 10, grace_period: int = 60,
                 create: bool = True) -> StorageInfo:
    """Open the storage ``url`` names (see the module docstring); errors are UsageErrors."""
    optuna = require("optuna", "archlab search")
    from optuna.storages.journal import JournalFileBackend, JournalRedisBackend

    if url.startswith("redis"):
        require("redis", "a redis:// search storage")
        return StorageInfo(optuna.storages.JournalStorage(JournalRedisBackend(url)), url, "journal")
    if is_journal_url(url):
        path = Path(url)
        if path.is_dir():
            raise UsageError(f"--storage {url!r} is a folder; give a journal file or a database URL")
        if not path.exists() and not create:
            raise UsageError(f"--storage {url!r}: no such journal file")
        if not path.parent.is_dir():
            raise UsageError(f"--storage {url!r}: folder {str(path.parent)!r} does not exist")
        return StorageInfo(optuna.storages.JournalStorage(JournalFileBackend(str(path))), str(path), "journal")
    return StorageInfo(_rdb(optuna, url, heartbeat_interval, grace_period), url, "rdb")


def driver_url(url: str) -> str:
    """``url``, with a bare ``postgresql://`` routed to psycopg2 when psycopg 3 is missing."""
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2://{rest}"
    return url


def _rdb(optuna: Any, url: str, heartbeat_interval: int, grace_period: int) -> Any:
    import sqlalchemy.exc
    from optuna.exceptions import ExperimentalWarning

    def connect() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.storages.RDBStorage(
                driver_url(url), heartbeat_interval=int(heartbeat_interval), grace_period=int(grace_period),
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=MAX_RETRY))

    try:
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                return connect()
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                # workers started together on an empty database race to create Optuna's tables
                if attempt == SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")
    except ImportError as e:
        hint = " (pip install 'archlab[postgres]')" if url.startswith("postgres") else ""
        raise MissingDependencyError(f"the database driver for --storage {mask_password(url)!r} is not "
                                     f"installed: {e.__cause__ or e}{hint}") from e
    except sqlalchemy.exc.ArgumentError as e:
        raise UsageError(f"--storage {mask_password(url)!r} is not a database URL or journal file: {e}") from e
    except sqlalchemy.exc.SQLAlchemyError as e:
        first = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise UsageError(f"cannot reach the study storage {mask_password(url)!r}: {first}") from e


def study_names(info: StorageInfo) -> list[str]:
    """Names of the studies in a storage."""
    import optuna

    return list(optuna.get_all_study_names(info.storage))
