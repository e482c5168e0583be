"""``manifest.json`` for a study's results: what ran, from which code, when, where.

Each ``analyses/<study>/run.py`` calls :func:`provenance` when it starts (so that the git state
is the one of the code that ran, before any output exists) and :func:`write_manifest` once its
outputs are written. The manifest is written atomically (``archlab._io``)::

    {"study": ..., "command": "python analyses/ghn_digits/run.py --seed 0 ...",
     "argv": [...], "args": {...}, "seeds": [0],
     "git": {"commit": "<40 hex>", "dirty": false, "changed": []},
     "started": "2026-11-24T05:02:11+00:00", "finished": "...",
     "machine": {"hostname": ..., "platform": ..., "cpu_count": 2, "python": ...,
                 "torch": "2.5.1", "device": "cpu"},
     "outputs": ["results.csv", ...]}

``git.dirty`` is true when tracked files differ from the commit (``git status --porcelain
--untracked-files=no``); ``git.changed`` names them (at most 50). Outside a git checkout, or
without git, ``commit`` and ``dirty`` are null.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from archlab._io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
MANIFEST = "manifest.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    try:
        r = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """``{"commit", "dirty", "changed"}`` of the checkout holding this file."""
    head = _git("rev-parse", "HEAD")
    if head is None:
        return {"commit": None, "dirty": None, "changed": []}
    status = _git("status", "--porcelain", "--untracked-files=no")
    changed = [line[3:] for line in (status or "").splitlines() if line.strip()]
    return {"commit": head.strip(), "dirty": None if status is None else bool(changed),
            "changed": changed[:50]}


def machine(device: str | None = None) -> dict[str, Any]:
    """Host name, platform, CPU count, Python and torch versions, and the device used."""
    info: dict[str, Any] = {"hostname": socket.gethostname(), "platform": platform.platform(),
                            "cpu_count": os.cpu_count(), "python": platform.python_version()}
    try:
        import torch
    except ImportError:
        info["torch"] = None
    else:
        info["torch"] = torch.__version__
        if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
            device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    info["device"] = None if device is None else str(device)
    return info


def provenance(study: str, args: Any, seeds: list[int], argv: list[str] | None = None) -> dict[str, Any]:
    """The manifest's fields known when a run starts (``args``: the parsed argparse namespace)."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]) if argv else Path(study)
    try:
        shown = str(script.resolve().relative_to(REPO))
    except ValueError:
        shown = str(script)
    return {
        "study": study,
        "command": shlex.join(["python", shown, *argv[1:]]),
        "argv": argv,
        "cwd": os.getcwd(),
        "args": dict(vars(args)),
        "seeds": list(seeds),
        "git": git_state(),
        "started": _now(),
    }


def write_manifest(out: str | os.PathLike, info: dict[str, Any], device: str | None = None,
                   outputs: list[str] | None = None, **extra: Any) -> Path:
    """Write ``out/manifest.json`` from :func:`provenance`'s ``info`` plus the finish time, the
    machine and the output files (relative to ``out``; default: every file under it except what is
    not committed: checkpoints, ``*.pt``, and the git-ignored ``cache/`` folder)."""
    out = Path(out)
    if outputs is None:
        outputs = sorted(str(p.relative_to(out)) for p in out.rglob("*")
                         if p.is_file() and p.suffix != ".pt" and p != out / MANIFEST
                         and not p.name.startswith(".") and p.relative_to(out).parts[0] != "cache")
    data = {**info, "finished": _now(), "machine": machine(device), "outputs": outputs, **extra}
    return atomic_write_text(json.dumps(data, indent=2, default=str) + "\n", out / MANIFEST)
