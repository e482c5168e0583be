"""A throwaway PostgreSQL cluster for the search tests: the ``postgres_url`` session fixture.

Starts ``initdb`` + ``pg_ctl`` (Debian's ``/usr/lib/postgresql/<v>/bin``, or ``$PG_BIN``) on
127.0.0.1 with a free port and a temporary data directory, as the ``postgres`` user when run as
root (initdb refuses root), and stops it and removes the directory at the end of the session.
Where no server can be started (no binaries, no driver, no non-root user) the tests that need
it skip with the reason, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL tests cannot run: {reason} (required under CI=true)")
    pytest.skip(f"PostgreSQL tests cannot run: {reason}")


def _pg_bin() -> Path | None:
    env = os.environ.get("PG_BIN")
    if env:
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user() -> list[str]:
    """The command prefix that runs PostgreSQL's tools as a non-root user."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        _unavailable("running as root and there is no 'postgres' user to run initdb as")
    if runuser is None:
        _unavailable("running as root and runuser is missing")
    return [runuser, "-u", "postgres", "--"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:PORT/postgres`` of a fresh cluster (trust auth)."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _unavailable("psycopg2 is not installed (pip install 'archlab[postgres]')")
    bin_dir = _pg_bin()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        _unavailable("no initdb found (install postgresql or set PG_BIN)")
    prefix = _as_user()
    root = Path(tempfile.mkdtemp(prefix="archlab-pg-"))
    data = root / "data"
    if prefix:
        shutil.chown(root, "postgres")
    port = _free_port()

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)

    r = run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    if r.returncode:
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(f"initdb failed: {r.stderr.strip()[-500:]}")
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=100 -c fsync=off"
    r = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w", "start")
    if r.returncode:
        log = (root / "log").read_text() if (root / "log").exists() else r.stderr
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(f"pg_ctl start failed: {log.strip()[-500:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server of ``url``; returns its URL."""
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return url.rsplit("/", 1)[0] + f"/{name}"
