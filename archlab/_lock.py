"""Exclusive run locks on an output: ``with hold_lock("ghn.lock", "train ghn.pt"): ...``.

A lock is a small JSON file (host, PID, process start time, lock time, what) created atomically
with ``O_CREAT | O_EXCL``, so of two processes that try at once exactly one gets it; the other
gets :class:`LockHeldError` naming the holder. A lock left by a process that died (same host,
PID gone or now another process) is stale: it is taken over with a warning. A lock from
another host cannot be checked and is never taken over. The lock is removed when the ``with``
block ends, however it ends (a SIGKILL leaves it stale).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from archlab.errors import OutputConflictError

__all__ = ["LockHeldError", "hold_lock"]

log = logging.getLogger("archlab.lock")


class LockHeldError(OutputConflictError):
    """Another live process holds the lock on this output."""


def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def _process_start(pid: int) -> float | None:
    """Wall-clock start time of process ``pid`` (Linux /proc), or None when unknown."""
    boot = _boot_time()
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK") if boot is not None else None
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, started: float | None) -> bool:
    """Whether ``pid`` runs and is the process that wrote the lock (not a reused PID)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    now_start = _process_start(pid)
    # /proc start times are in clock ticks: allow for rounding
    return not (started is not None and now_start is not None and now_start > started + 2.0)


def _describe(holder: dict[str, Any]) -> str:
    when = holder.get("locked_at")
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) if when else "unknown time"
    return (f"PID {holder.get('pid')} on host {holder.get('host')!r} "
            f"({holder.get('what', '?')}, since {since})")


def _read(path: Path, wait_s: float = 1.0) -> tuple[bytes, dict[str, Any] | None]:
    """Raw bytes and parsed content of lock ``path``; retries briefly while a writer fills it."""
    deadline = time.monotonic() + wait_s
    while True:
        raw = path.read_bytes()
        try:
            holder = json.loads(raw)
            if isinstance(holder, dict):
                return raw, holder
        except ValueError:
            pass
        if time.monotonic() > deadline:
            return raw, None
        time.sleep(0.05)


def _create(path: Path, what: str) -> bytes | None:
    """Create ``path`` exclusively with this process's record; None if it exists."""
    pid = os.getpid()
    record = {"host": socket.gethostname(), "pid": pid, "process_started": _process_start(pid),
              "locked_at": time.time(), "what": what}
    data = json.dumps(record).encode()
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:  # e.g. a full disk: leave no empty lock behind
        path.unlink(missing_ok=True)
        raise
    return data


def _take_over(path: Path, raw: bytes) -> None:
    """Move the stale lock whose bytes are ``raw`` out of the way (one racer wins)."""
    moved = path.with_name(f"{path.name}.stale-{os.getpid()}")
    try:
        os.rename(path, moved)
    except FileNotFoundError:
        return  # another process took it over first
    if moved.read_bytes() != raw:  # a racer had already replaced it with a live lock: restore
        with suppress(FileExistsError):
            os.link(moved, path)
    moved.unlink(missing_ok=True)


def acquire(path: str | os.PathLike, what: str) -> bytes:
    """Take lock ``path`` for ``what``; returns its content. Raises :class:`LockHeldError`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        mine = _create(path, what)
        if mine is not None:
            return mine
        try:
            raw, holder = _read(path)
        except FileNotFoundError:
            continue  # released meanwhile
        if holder is None:
            raise LockHeldError(f"{path} exists but is not a readable archlab lock; if no archlab "
                                f"run is using this output, delete {path}")
        same_host = holder.get("host") == socket.gethostname()
        pid = holder.get("pid")
        if not (same_host and isinstance(pid, int)) or _alive(pid, holder.get("process_started")):
            where = "" if same_host else " (another host: archlab cannot check whether it still runs)"
            raise LockHeldError(f"{path}: held by {_describe(holder)}{where}; wait for that run to "
                                f"end, or pass another output; if it is dead, delete {path}")
        log.warning("taking over stale lock %s left by %s, which no longer runs",
                    path, _describe(holder))
        _take_over(path, raw)
    raise LockHeldError(f"{path}: could not take the lock (other processes keep taking it)")


def release(path: str | os.PathLike, mine: bytes) -> None:
    """Remove lock ``path`` if it still is the one this process created (content ``mine``)."""
    path = Path(path)
    try:
        if path.read_bytes() == mine:
            path.unlink()
    except FileNotFoundError:
        pass


@contextmanager
def hold_lock(path: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold lock ``path`` for the ``with`` block (see module docstring)."""
    mine = acquire(path, what)
    try:
        yield Path(path)
    finally:
        release(path, mine)
