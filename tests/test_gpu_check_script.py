"""scripts/gpu_check.sh (issue 20's one-call GPU check) runs end to end; here on the CPU with
the smallest settings, on the real CIFAR-10 tarball, as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def _run(data: str, out: Path, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHON": sys.executable, "MPLBACKEND": "Agg", **env}
    return subprocess.run(["bash", str(SCRIPT), data, str(out)], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_gpu_check_benchmarks_trains_evaluates_and_never_replaces_its_ghn(cifar10_tarball: Path, tmp_path: Path):
    out = tmp_path / "gpu"
    tiny = dict(DEVICE="cpu", MINUTES="0.1", META_BATCH="1", BATCH_SIZE="16", BENCH_STEPS="1",
                BENCH_RUNS="1", ARCHS="2", MAX_IMAGES="32", OMP_NUM_THREADS="1")
    r = _run(str(cifar10_tarball), out, **tiny)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    bench = (out / "bench_train.txt").read_text()
    assert "archs/s" in bench and "floor share" in bench
    held = json.loads((out / "heldout.json").read_text())
    ghn = [row for row in held["rows"] if row["method"] == "ghn"]
    assert [row["id"] for row in ghn] == ["test/0", "test/1"]
    assert all(row["n_images"] == 32 for row in ghn)
    assert held["ckpt"] == str(out / "ghn2_cifar10_gpu.pt")
    assert '"finished": true' in (out / "train.log").read_text()

    # a second run into the same OUT refuses to replace the trained GHN, and keeps it
    ghn_file = out / "ghn2_cifar10_gpu.pt"
    before = ghn_file.read_bytes()
    r = _run(str(cifar10_tarball), out, **tiny)
    assert r.returncode != 0
    assert "exists" in r.stderr + r.stdout and "--resume" in r.stderr + r.stdout
    assert ghn_file.read_bytes() == before


def test_gpu_check_names_a_missing_dataset(tmp_path: Path):
    r = _run(str(tmp_path / "nowhere"), tmp_path / "gpu")
    assert r.returncode == 2
    assert "no CIFAR-10 folder or tarball at" in r.stderr and "nowhere" in r.stderr
    bad = tmp_path / "cifar.tar.gz"
    bad.write_bytes(b"not a tarball")
    r = _run(str(bad), tmp_path / "gpu")
    assert r.returncode == 2
    assert "is not a readable .tar.gz" in r.stderr
