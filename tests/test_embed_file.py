"""`archlab embed` continues an interrupted run from its saved chunks (a real SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from archlab.analysis import embedding_matrix, read_embeddings
from archlab.analysis._embed_file import partial_dir
from archlab.analysis._embeddings import CHUNK

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_killed_embed_continues_from_its_chunks(tmp_path):
    from archlab.ghn import GHNConfig, build_ghn, save_ghn

    torch.manual_seed(0)
    ckpt = save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=16)), tmp_path / "g.pt")
    out = tmp_path / "ref.parquet"
    n = 2 * CHUNK + 40
    cmd = [sys.executable, "-m", "archlab", "embed", "--ckpt", str(ckpt), "--train", str(n), "--out", str(out),
           "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = partial_dir(out) / "000000.parquet"
    deadline = time.monotonic() + 300
    while not first.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists() and not out.exists(), "killed before the first chunk was saved, or after the end"
    again = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    df = read_embeddings(out)
    assert df["id"].tolist() == [f"train/{i}" for i in range(n)]
    assert embedding_matrix(df).shape == (n, 32) and not partial_dir(out).exists()
    # the reused chunk equals a fresh embedding of the same architectures
    fresh = tmp_path / "fresh.parquet"
    fresh_cmd = [*cmd[: cmd.index("--out") + 1], str(fresh), "--no-progress"]
    assert subprocess.run(fresh_cmd, env=env, cwd=tmp_path, capture_output=True, timeout=600).returncode == 0
    assert (embedding_matrix(read_embeddings(fresh)) == embedding_matrix(df)).all()
