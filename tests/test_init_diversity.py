"""analyses/init_diversity: the paired τ difference, and a rerun that keeps its earlier rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "analyses" / "init_diversity" / "run.py"
TRUTH = REPO / "analyses" / "ranking" / "results" / "ranking.csv"


@pytest.fixture(scope="module")
def study():
    sys.path.insert(0, str(SCRIPT.parent.parent))
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import importlib

        yield importlib.import_module("run")
    finally:
        sys.path.remove(str(SCRIPT.parent))
        sys.path.remove(str(SCRIPT.parent.parent))
        sys.modules.pop("run", None)


def test_paired_tau_difference_matches_scipy_and_brackets_it(study):
    rng = np.random.default_rng(1)
    truth = rng.normal(size=60)
    frame = pd.DataFrame({"good": truth + 0.3 * rng.normal(size=60), "bad": rng.normal(size=60),
                          "ground_truth": truth})
    d, lo, hi = study.paired_tau_difference(frame, "good", "bad", resamples=400)
    expect = kendalltau(frame.good, truth).statistic - kendalltau(frame.bad, truth).statistic
    assert d == pytest.approx(expect)
    assert lo < d < hi and lo > 0  # a clearly better ranking: the interval excludes 0
    same = study.paired_tau_difference(frame, "good", "good", resamples=50)
    assert same == (0.0, 0.0, 0.0)  # paired: identical columns differ by exactly 0 in every resample


def _run(out: Path, ckpt: Path, steps: int) -> subprocess.CompletedProcess:
    args = [sys.executable, str(SCRIPT), "--ckpt", str(ckpt), "--archs", "2", "--ft-steps", str(steps),
            "--inits", "random,orth", "--truth", str(TRUTH), "--out", str(out)]
    r = subprocess.run(args, cwd=REPO, env={**os.environ, "MPLBACKEND": "Agg"}, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_rerun_keeps_rows_of_the_same_settings_only(tmp_path: Path):
    from archlab.data import dataset_info
    from archlab.ghn import GHNConfig, build_ghn, save_ghn

    info = dataset_info("digits")
    ckpt = tmp_path / "ghn.pt"
    save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=info.num_classes, image_size=info.image_size,
                                        hid=8)), ckpt)
    out = tmp_path / "out"
    first = _run(out, ckpt, 2)
    assert "reusing" not in first.stdout
    table = pd.read_csv(out / "diversity.csv")
    assert len(table) == 4 and "Δτ vs random" in (out / "summary.md").read_text()

    again = _run(out, ckpt, 2)
    assert "reusing 4 rows" in again.stdout
    pd.testing.assert_frame_equal(pd.read_csv(out / "diversity.csv"), table)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows_reused"] == 4 and manifest["rows_from"]["started"]

    other = _run(out, ckpt, 3)  # other fine-tuning steps: nothing of the earlier run is kept
    assert "reusing" not in other.stdout
    assert json.loads((out / "manifest.json").read_text())["rows_reused"] == 0
