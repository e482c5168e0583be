"""`archlab rank`: scores, correlations against a cached ground truth, resumption and two workers
sharing one ground-truth cache (real subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from archlab.analysis import GroundTruthSpec, correlations, ground_truth
from archlab.analysis._ground_truth import cache_file, read_result
from archlab.analysis._rank import check_methods
from archlab.cli import main
from archlab.engine import from_split
from archlab.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from archlab.ghn import GHNConfig, build_ghn, save_ghn

    torch.manual_seed(0)
    return save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=16)),
                    tmp_path_factory.mktemp("ghn") / "mlp.pt")


def test_methods_are_checked():
    with pytest.raises(UsageError, match="unknown ranking method"):
        check_methods(["ghn", "synflw"], ghn=object())
    with pytest.raises(UsageError, match="need a GHN"):
        check_methods(["ghn-ft"], ghn=None)
    with pytest.raises(UsageError, match="twice"):
        check_methods(["snip", "snip"], ghn=None)


def test_correlations_against_known_rankings():
    table = pd.DataFrame({"id": list("abcd"), "good": [1, 2, 3, 4], "bad": [4, 3, 2, 1],
                          "good_s": [0.5] * 4, "bad_s": [2.0] * 4, "ground_truth": [10.0, 20, 30, 40]})
    corr = correlations(table, ["good", "bad"], k=2).set_index("method")
    assert corr.loc["good", "kendall_tau"] == pytest.approx(1.0) and corr.loc["bad", "spearman"] == pytest.approx(-1.0)
    assert corr.loc["good", "top2_hit"] == 2 and corr.loc["bad", "top2_hit"] == 0
    assert corr.loc["bad", "seconds_per_candidate"] == 2.0


@pytest.mark.slow
def test_rank_cli_with_ground_truth(ckpt, tmp_path, capsys):
    out = tmp_path / "rank"
    args = ["rank", "--ckpt", str(ckpt), "--split", "test", "--limit", "4", "--methods",
            "ghn,ghn-ft,random-ft,synflow,naswot,params", "--ft-steps", "2", "--ground-truth", "--epochs", "1",
            "--max-eval-images", "64", "--device", "cpu", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    ranking = pd.read_csv(out / "ranking.csv")
    assert ranking["id"].tolist() == [f"test/{i}" for i in range(4)]
    assert {"ghn", "ghn-ft", "random-ft", "synflow", "naswot", "params", "ground_truth"} <= set(ranking.columns)
    assert ranking["ground_truth"].between(0, 100).all() and ranking["ghn"].between(0, 100).all()
    corr = pd.read_csv(out / "correlations.csv")
    assert corr["method"].tolist() == ["ghn", "ghn-ft", "random-ft", "synflow", "naswot", "params"]
    assert corr["kendall_tau"].between(-1, 1).all() and (corr["seconds_per_candidate"] > 0).all()
    for png in ("scatter.png", "tau_vs_cost.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "| method | Kendall" in (out / "correlations.md").read_text()
    # a rerun reuses the cached scores and ground truth: nothing is recomputed
    stamps = {p: p.stat().st_mtime_ns for p in (out / "ground_truth").glob("*.json")}
    assert len(stamps) == 4
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert pd.read_csv(out / "ranking.csv").equals(ranking)


def test_rank_cli_without_ground_truth(ckpt, tmp_path, capsys):
    out = tmp_path / "rank"
    assert main(["rank", "--ckpt", str(ckpt), "--models", "resnet18,squeezenet1_0", "--methods", "ghn,snip,params",
                 "--max-eval-images", "32", "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    ranking = pd.read_csv(out / "ranking.csv")
    assert ranking["id"].tolist() == ["resnet18", "squeezenet1_0"] and "ground_truth" not in ranking.columns
    assert ranking.loc[0, "params"] > ranking.loc[1, "params"]  # resnet18 is the bigger network
    assert not (out / "correlations.csv").exists()


def test_scores_cache_refuses_other_settings_and_ft_post_is_applied(ckpt, tmp_path, capsys):
    """A rerun into the same folder with other settings is refused, never served the old scores;
    ``--ft-post`` changes ghn-ft's start (orth) or removes the noise (none) and nothing else."""
    out = tmp_path / "rank"
    base = ["rank", "--ckpt", str(ckpt), "--split", "test", "--limit", "3", "--methods", "ghn,ghn-ft,random-ft",
            "--ft-steps", "1", "--max-eval-images", "128", "--device", "cpu", "--no-progress"]
    scores = {}
    for post in ("noise", "orth", "none"):
        assert main([*base, "--ft-post", post, "--out", str(out / post)]) == 0
        scores[post] = pd.read_csv(out / post / "ranking.csv").set_index("id")
        assert json.loads((out / post / "scores.json").read_text())["ft_post"] == post
    assert scores["orth"]["random-ft"].equals(scores["noise"]["random-ft"])
    assert scores["orth"]["ghn"].equals(scores["noise"]["ghn"])
    assert not scores["orth"]["ghn-ft"].equals(scores["noise"]["ghn-ft"])
    capsys.readouterr()
    for other, field in ((["--ft-steps", "2"], "ft_steps=1 (now 2)"), (["--ft-post", "orth"], "ft_post='noise'"),
                         (["--seed", "1"], "seed=0 (now 1)")):
        assert main([*base, *other, "--out", str(out / "noise")]) == 2
        err = capsys.readouterr().err
        assert field in err and "use another --out" in err, err
    assert pd.read_csv(out / "noise" / "ranking.csv").set_index("id").equals(scores["noise"])  # untouched
    torch.manual_seed(1)
    from archlab.ghn import GHNConfig, build_ghn, save_ghn

    other = save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=16)), tmp_path / "other.pt")
    assert main([*base, "--ckpt", str(other), "--out", str(out / "noise")]) == 2
    assert "ghn=" in capsys.readouterr().err
    # random-ft does not use the GHN: its cache serves a run with another GHN, nothing rescored
    only_random = [*base[:8], "random-ft", *base[9:], "--out", str(out / "random")]
    assert main(only_random) == 0
    stamp = (out / "random" / "scores.csv").stat().st_mtime_ns
    assert main([*only_random, "--ckpt", str(other)]) == 0
    assert (out / "random" / "scores.csv").stat().st_mtime_ns == stamp
    assert pd.read_csv(out / "random" / "ranking.csv")["random-ft"].tolist() == scores["noise"]["random-ft"].tolist()


def test_ghn_loss_is_minus_the_loss_of_the_prediction_and_a_cache_gains_only_new_methods(ckpt, tmp_path):
    """``ghn-loss`` = −cross-entropy of the predicted parameters on the held-out images (checked
    against a forward pass written here); ``ghn`` is ``proxy_score``'s top-1. A cache made
    without ``ghn-loss`` keeps its scores and is scored for ``ghn-loss`` alone."""
    import torch.nn.functional as F

    from archlab.analysis import rank
    from archlab.engine import proxy_score
    from archlab.engine._common import seed_everything
    from archlab.engine._short_ft import proxy_data
    from archlab.ghn import load_ghn, use_batch_stats

    ghn = load_ghn(ckpt)
    data = proxy_data("digits", max_eval_images=100)
    cands = from_split("test", limit=3)
    first = rank(cands, ["ghn", "params"], ghn, data, tmp_path, progress=False).set_index("id")
    cached = pd.read_csv(tmp_path / "scores.csv").set_index("id")
    both = rank(cands, ["ghn", "ghn-loss", "params"], ghn, data, tmp_path, progress=False).set_index("id")
    for col in ("ghn", "ghn_s", "params", "params_s"):
        assert both[col].tolist() == cached[col].tolist() == first[col].tolist(), col  # not rescored
    assert set(pd.read_csv(tmp_path / "scores.csv").columns) >= {"ghn-loss", "ghn-loss_s"}
    for cand in cands:
        seed_everything(0)
        model = use_batch_stats(cand.build(data.num_classes, data.image_size))
        ghn.predict(model)
        model.eval()
        with torch.no_grad():
            losses = [F.cross_entropy(model(x), y, reduction="sum").item() for x, y in data.eval_loader()]
        assert both.loc[cand.id, "ghn-loss"] == pytest.approx(-sum(losses) / len(data.eval), rel=1e-5)
        assert both.loc[cand.id, "ghn"] == proxy_score(cand, "ghn", ghn, data, 0).final_top1


def _gt_worker(out: Path, n: int, epochs: int) -> subprocess.Popen:
    code = (
        "import sys; from archlab.analysis import GroundTruthSpec, ground_truth; "
        "from archlab.engine import from_split; "
        f"r = ground_truth(from_split('test', limit={n}), {str(out)!r}, GroundTruthSpec(epochs={epochs}), "
        "progress=False, wait_s=0.5); print(len(r))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.slow
def test_two_workers_share_the_ground_truth_cache(tmp_path):
    procs = [_gt_worker(tmp_path, 4, 1) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    assert [o.strip().splitlines()[-1] for o, _ in outs] == ["4", "4"]
    records = [json.loads(cache_file(tmp_path, c.id).read_text()) for c in from_split("test", limit=4)]
    # each candidate trained once: every result file written by exactly one worker, read by both
    assert len({r["id"] for r in records}) == 4
    assert not list((tmp_path / "ground_truth").glob("*.lock"))


@pytest.mark.slow
def test_killed_ground_truth_run_resumes_from_its_cache(tmp_path):
    p = _gt_worker(tmp_path, 3, 2)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((tmp_path / "ground_truth").glob("*.json")):
        time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    done = {f.name: f.stat().st_mtime_ns for f in (tmp_path / "ground_truth").glob("*.json")}
    assert 1 <= len(done) < 3
    results = ground_truth(from_split("test", limit=3), tmp_path, GroundTruthSpec(epochs=2), progress=False)
    assert len(results) == 3  # the stale lock of the killed worker is taken over
    assert {f: (tmp_path / "ground_truth" / f).stat().st_mtime_ns for f in done} == done  # not retrained


def test_ground_truth_on_fixed_subsets_trains_and_scores_on_those_images(tmp_path):
    whole = GroundTruthSpec(epochs=1)
    assert "train_images" not in whole.key() and "test_images" not in whole.key()  # old caches stay valid
    spec = GroundTruthSpec(epochs=1, train_images=256, test_images=125)
    assert spec.key() == whole.key() | {"train_images": 256, "test_images": 125}
    cand = from_split("test", limit=1)
    rec = ground_truth(cand, tmp_path, spec, progress=False)[cand[0].id]
    assert [step for step, _ in rec["history"]] == [0, 256 // 64]  # one epoch of the 256 images
    for top1 in (rec["top1"], rec["top1_noise"]):
        assert abs(top1 * 125 / 100 - round(top1 * 125 / 100)) < 1e-6  # a count out of 125 test images
    assert read_result(cache_file(tmp_path, cand[0].id), whole) is None  # never mixed with whole-split runs
    with pytest.raises(UsageError, match="train_images=32: fewer images than one batch"):
        GroundTruthSpec(train_images=32)
    cached = cache_file(tmp_path, cand[0].id).stat().st_mtime_ns
    args = ["rank", "--split", "test", "--limit", "1", "--methods", "params", "--ground-truth", "--epochs", "1",
            "--device", "cpu", "--no-progress", "--out", str(tmp_path)]
    assert main([*args, "--gt-train-images", "256", "--gt-test-images", "125"]) == 0  # the flags make that spec
    assert cache_file(tmp_path, cand[0].id).stat().st_mtime_ns == cached  # its cached result, not retrained
    assert pd.read_csv(tmp_path / "ranking.csv")["ground_truth"].tolist() == [pytest.approx(rec["top1"], abs=1e-3)]
    assert main([*args, "--gt-train-images", "10"]) == 2
