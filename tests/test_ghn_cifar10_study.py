"""analyses/ghn_cifar10/run.py --replot: the figure and table of a finished run are redrawn from
its files (a new reference curve beside it), with no GHN, no images and no training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SCRIPT = "analyses/ghn_cifar10/run.py"


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, SCRIPT, "--data-dir", str(out / "no-images-here"), "--steps", "60",
                           "--eval-at", "30,60", "--replot", "--out", str(out), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _finished_run(out: Path) -> None:
    """The files a finished 60-step run leaves: its metrics log and held-out table."""
    steps = range(1, 61)
    pd.DataFrame({"step": steps, "epoch": [s / 700 for s in steps], "lr": 1e-3,
                  "loss": [2.3 - 0.002 * s for s in steps], "loss_avg": 2.2,
                  "acc": [0.10 + 0.001 * s for s in steps], "archs_per_s": 1.0, "skipped": 0,
                  "elapsed_s": [6.0 * s for s in steps]}).to_csv(out / "ghn2_cifar10.metrics.csv", index=False)
    pd.DataFrame([{"step": 30, "method": "ghn", "top1": 14.0, "sem": 0.5, "n_archs": 30},
                  {"step": 30, "method": "random", "top1": 10.0, "sem": 0.2, "n_archs": 30},
                  {"step": 60, "method": "ghn", "top1": 16.0, "sem": 0.4, "n_archs": 30},
                  {"step": 60, "method": "random", "top1": 10.0, "sem": 0.2, "n_archs": 30}]).to_csv(
        out / "heldout.csv", index=False)


def test_replot_redraws_from_the_run_files_with_the_reference_beside_it(tmp_path: Path):
    out = tmp_path / "results"
    out.mkdir()
    _finished_run(out)
    ref = tmp_path / "ref.csv"
    ref_acc = [0.08 + 0.0015 * s for s in range(1, 61)]
    pd.DataFrame({"step": range(1, 61), "loss": 2.4, "acc": ref_acc}).to_csv(ref, index=False)
    ref.with_suffix(".eval.json").write_text(json.dumps({"60": [12.5, 0.3]}))

    r = _run(out, "--reference", str(ref))
    assert r.returncode == 0, r.stderr[-3000:]
    summary = (out / "summary.md").read_text()
    # training-batch accuracy: mean over the 50 steps up to each evaluation step
    ours_60 = 100 * sum(0.10 + 0.001 * s for s in range(11, 61)) / 50
    ref_30 = 100 * sum(ref_acc[:30]) / 30
    loss_60 = sum(2.3 - 0.002 * s for s in range(11, 61)) / 50
    assert f"| archlab GHN-2 | 60 | {loss_60:.3f} | {ours_60:.2f} | 16.00 ± 0.40 |" in summary
    assert f"| reference GHN-2 (ppuda) | 30 | 2.400 | {ref_30:.2f} |  |" in summary
    assert "| reference GHN-2 (ppuda) | 60 | 2.400 |" in summary and "12.50 ± 0.30 |" in summary
    assert (out / "curves.png").stat().st_size > 10_000
    assert not (out / "ghn2_cifar10.pt").exists() and not (out / "cache").exists()  # nothing trained or unpacked
    assert not (out / "manifest.json").exists()  # the training run's manifest is not replaced


def test_replot_names_what_is_missing(tmp_path: Path):
    out = tmp_path / "results"
    out.mkdir()
    r = _run(out)
    assert r.returncode != 0
    assert "ghn2_cifar10.metrics.csv" in r.stderr
    _finished_run(out)
    held = pd.read_csv(out / "heldout.csv")
    held[held["step"] != 60].to_csv(out / "heldout.csv", index=False)
    r = _run(out)
    assert r.returncode != 0
    assert "missing: [60]" in r.stderr
