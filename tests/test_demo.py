"""``archlab demo`` end to end (tiny budgets): the README's main command must keep working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_trains_evaluates_predicts_and_resumes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "archlab", "demo", "--minutes", "0.1", "--mlp-minutes", "0.05",
           "--archs", "3", "--ref-size", "60", "--rank-archs", "4", "--rank-epochs", "1", "--ft-steps", "2",
           "--search-trials", "4", "--device", "cpu", "--out", str(out)]
    first = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    for step in ("[1/7]", "[2/7]", "[3/7]", "[4/7]", "[5/7]", "[6/7]", "[7/7]"):
        assert step in first.stdout
    df = pd.read_csv(out / "evaluation.csv")
    assert sorted(df["method"].unique()) == ["ghn", "mlp-ghn", "random"]
    assert df.groupby("method")["id"].nunique().tolist() == [3, 3, 3]
    assert df["top1"].between(0, 100).all()
    for png in ("evaluation.png", "graph_resnet18.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "resnet18" in first.stdout and "parameters)" in first.stdout
    # stage 5: shift scores of the zoo and the custom model, and both maps
    shift = pd.read_csv(out / "shift" / "shift.csv")
    assert shift["id"].tolist()[:5] == ["resnet18", "resnet50", "convnext_tiny", "vit_b_16", "swin_t"]
    assert shift["id"].iloc[5].endswith("my_net.py:MyNet") and shift["percentile"].between(0, 100).all()
    for png in ("map.png", "shift/shift.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Plotly" in (out / "map.html").read_text()
    # stages 6 and 7: a ranking against ground truth, and a two-worker search
    corr = pd.read_csv(out / "rank" / "correlations.csv")
    assert corr["method"].tolist() == ["ghn", "ghn-loss", "ghn-ft", "random-ft", "synflow", "snip", "naswot"]
    trials = pd.read_csv(out / "search" / "trials.csv")
    assert (trials["state"].isin(["COMPLETE", "PRUNED"])).sum() >= 4
    assert (out / "search" / "history.png").read_bytes()[:4] == b"\x89PNG"
    timings = json.loads((out / "timings.json").read_text())  # seconds per stage, printed too
    assert list(timings) == [str(i) for i in range(1, 8)] and all(v >= 0 for v in timings.values())
    assert "stage seconds: 1:" in first.stdout
    cached = {p: p.stat().st_mtime_ns for p in (out / "ref60.parquet", out / "zoo.parquet", out / "evaluation3.csv",
                                                 out / "rank" / "scores.csv", *(out / "rank" / "ground_truth").glob("*.json"))}
    # the demo trains with the short-CPU recipe (no augmentation), recorded in its resumable state
    state = torch.load(out / "ghn2.resume.pt", weights_only=True)
    assert state["config"]["augment"] is False and state["config"]["meta_batch"] == 2
    steps = state["state"]["step"]
    # re-running reuses the finished trainings instead of training again
    again = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert torch.load(out / "ghn2.resume.pt", weights_only=True)["state"]["step"] == steps
    assert {p: p.stat().st_mtime_ns for p in cached} == cached  # every stage's output reused
