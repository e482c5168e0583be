"""GHN training: budgets, metrics, skipping, bit-exact resumption (in-process and after a real
SIGKILL / SIGTERM of a subprocess) and 2-process gloo DDP. Real digits data, real GHN-2."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from archlab.engine._common import Budget, CSVLog
from archlab.engine._train import TrainConfig, _lr_at, train_ghn
from archlab.engine._train_step import chance_floor, explode_limit

REPO = Path(__file__).resolve().parents[1]
TINY = dict(ghn="ghn2", meta_batch=2, batch_size=8, widths=(8,), fc_dim=16,
            ghn_overrides={"hid": 8}, progress=False, log_every=1, device="cpu")


def _tiny(tmp_path: Path, name: str = "ghn.pt", **kw) -> TrainConfig:
    return TrainConfig(out=str(tmp_path / name), **{**TINY, **kw})


def _weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["ghn"]


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def test_budget_rules():
    with pytest.raises(ValueError, match="exactly one"):
        Budget(steps=3, minutes=1)
    with pytest.raises(ValueError, match="must be > 0"):
        Budget(steps=0)
    assert Budget(epochs=1.5).total_steps(10) == 15
    assert Budget(minutes=1).total_steps(10) is None
    assert Budget(minutes=1).progress(0, 30, 10) == pytest.approx(0.5)


def test_lr_schedule_follows_ppuda_milestones():
    cfg = TrainConfig(steps=300)
    assert _lr_at(cfg, 0.0) == pytest.approx(1e-3)
    assert _lr_at(cfg, 199 / 300) == pytest.approx(1e-3)
    assert _lr_at(cfg, 200 / 300) == pytest.approx(1e-4)
    assert _lr_at(cfg, 250 / 300) == pytest.approx(1e-5)


def test_lr_warmup_ramps_linearly_then_follows_the_milestones():
    cfg = TrainConfig(steps=100, lr_warmup=0.1, lr_milestones=(0.5,))
    assert _lr_at(cfg, 0.0) == pytest.approx(1e-5)  # never exactly zero: the first step moves
    assert _lr_at(cfg, 0.05) == pytest.approx(5e-4)
    assert _lr_at(cfg, 0.1) == pytest.approx(1e-3)
    assert _lr_at(cfg, 0.6) == pytest.approx(1e-4)
    assert _lr_at(TrainConfig(steps=100), 0.0) == pytest.approx(1e-3)  # off by default


def test_explosion_limit_is_tied_to_the_chance_loss():
    floor = chance_floor(10)
    assert floor == pytest.approx(3 * math.log(10))
    # digits, running loss at chance: the old max(100, 10x running) trained on losses of 37.8
    # (seed 1, step 167); the chance-based limit drops them and keeps an ordinary 3.0 bump
    assert explode_limit(None, floor, 3.0) == pytest.approx(floor)
    assert 3.0 < explode_limit(2.3, floor, 3.0) < 15.0  # and a 15.0 one (seed 2, step 81)
    assert explode_limit(0.05, floor, 3.0) == pytest.approx(floor)  # late in training: the floor
    assert explode_limit(float("nan"), floor, 3.0) == pytest.approx(floor)
    assert explode_limit(8.0, floor, 3.0) == pytest.approx(24.0)
    assert chance_floor(1000) > chance_floor(10)


def test_csv_log_rewinds_to_checkpoint_step(tmp_path):
    log = CSVLog(tmp_path / "m.csv", ["step", "loss"])
    for s in range(1, 6):
        log.write({"step": s, "loss": float(s)})
    log.close()
    log = CSVLog(tmp_path / "m.csv", ["step", "loss"], rewind_to=3)
    log.write({"step": 4, "loss": 40.0})
    log.close()
    rows = _rows(tmp_path / "m.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4] and rows[-1]["loss"] == "40"


def test_exploding_losses_are_skipped_and_counted(tmp_path):
    res = train_ghn(_tiny(tmp_path, steps=2, explode_floor=1e-6, explode_factor=0.0))
    assert res.skipped["explode"] == 4 and res.skipped["update"] == 2
    assert math.isnan(res.loss_avg)  # no accepted loss: the average is not polluted


def test_explosion_guard_cannot_lock_training_out(tmp_path):
    # a floor below every real loss: the first step's losses are dropped, but they enter the
    # running average, the limit rises to 3x it, and every later step trains
    res = train_ghn(_tiny(tmp_path, steps=4, explode_floor=0.1))
    assert res.skipped["explode"] == 2 and res.skipped.get("update", 0) == 1
    assert res.loss_avg > 0.1


def test_train_then_stop_and_resume_bit_exact(tmp_path):
    """A full 3-step run (checked: GHN file, metrics CSV, summary) and a run stopped after 1 step
    then resumed end with bit-identical GHN weights, optimiser included."""
    from archlab.ghn import load_ghn

    full = train_ghn(_tiny(tmp_path / "a", steps=3, ckpt_every=100))
    assert full.finished and full.steps == 3 and full.archs_seen == 6
    assert math.isfinite(full.loss_avg) and 0 <= full.acc_avg <= 1
    rows = _rows(full.metrics_path)
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert set(rows[0]) >= {"step", "loss", "acc", "archs_per_s", "skipped"}
    ghn = load_ghn(full.out)
    assert ghn.config.kind == "ghn2" and ghn.config.hid == 8
    with pytest.raises(ValueError, match="resume"):
        train_ghn(_tiny(tmp_path / "a", steps=3))  # an existing run is never silently overwritten

    part = train_ghn(_tiny(tmp_path / "b", steps=3, stop_after=1))
    assert part.steps == 1 and not part.finished
    res = train_ghn(_tiny(tmp_path / "b", steps=3, resume=True))
    assert res.steps == 3 and res.finished and res.archs_seen == full.archs_seen
    a, b = (torch.load(r.state_path, weights_only=False) for r in (full, res))
    _assert_same(a["ghn"], b["ghn"])
    assert a["optimizer"]["state"][0]["step"] == b["optimizer"]["state"][0]["step"]
    assert [int(r["step"]) for r in _rows(res.metrics_path)] == [1, 2, 3]


def _cli(tmp: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "archlab", "train", "--ghn", "ghn2", "--hid", "8",
            "--meta-batch", "2", "--batch-size", "8", "--widths", "8", "--steps", "5",
            "--device", "cpu", "--no-progress", "--log-every", "1", "--arch-workers", "1",
            "--out", str(tmp / "ghn.pt"),
            *extra]


def _step_of(state: Path) -> int:
    try:
        return torch.load(state, weights_only=False)["state"]["step"]
    except (FileNotFoundError, EOFError, RuntimeError):
        return -1


def _run_until_checkpoint_then(sig: int, tmp: Path, min_step: int = 2) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_cli(tmp, "--ckpt-every", "1"), env=env, cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = tmp / "ghn.resume.pt"
    deadline = time.time() + 300
    while _step_of(state) < min_step and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    proc.send_signal(sig)
    proc.wait(timeout=300)
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_subprocess_resumes_to_identical_weights(tmp_path, sig):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    (tmp_path / "ref").mkdir()
    (tmp_path / "run").mkdir()
    subprocess.run(_cli(tmp_path / "ref"), env=env, check=True, capture_output=True)
    proc = _run_until_checkpoint_then(sig, tmp_path / "run")
    stopped_at = _step_of(tmp_path / "run" / "ghn.resume.pt")
    assert 2 <= stopped_at < 5, stopped_at
    assert _left_running(tmp_path / "run") == [], "the graph-building worker outlived its trainer"
    if sig == signal.SIGTERM:  # graceful: checkpoint written, resumable exit code
        assert proc.returncode == 130, proc.stderr.read().decode()[-2000:]
    subprocess.run(_cli(tmp_path / "run", "--resume"), env=env, check=True, capture_output=True)
    _assert_same(_weights(tmp_path / "ref" / "ghn.resume.pt"),
                 _weights(tmp_path / "run" / "ghn.resume.pt"))


def _left_running(folder: Path, wait_s: float = 10.0) -> list[int]:
    """PIDs of processes whose command line names ``folder`` (Linux /proc), after up to ``wait_s``."""
    if not Path("/proc/self/cmdline").exists():
        return []
    deadline = time.time() + wait_s
    while True:
        pids = []
        for cmd in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if str(folder) in cmd.read_bytes().decode(errors="replace"):
                    pids.append(int(cmd.parent.name))
            except OSError:
                pass
        if not pids or time.time() > deadline:
            return pids
        time.sleep(0.2)


DDP_SCRIPT = """
import os, sys
from archlab.engine._train import TrainConfig, train_ghn
cfg = TrainConfig(ghn='ghn2', meta_batch=4, batch_size=8, widths=(8,), fc_dim=16,
                  ghn_overrides={'hid': 8}, progress=False, device='cpu', steps=2,
                  out=sys.argv[1] + '/ghn.pt')
res = train_ghn(cfg)
# one file per rank: lines printed by two processes to one pipe can interleave
with open(sys.argv[1] + '/rank' + os.environ['RANK'] + '.txt', 'w') as f:
    f.write(f"IN_SYNC {os.environ['RANK']} {res.ranks_in_sync} {res.archs_seen}")
"""


@pytest.mark.slow
def test_ddp_two_gloo_ranks_end_identical(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert lines == ["IN_SYNC 0 True 8", "IN_SYNC 1 True 8"], proc.stdout
    assert (tmp_path / "ghn.pt").exists()


@pytest.mark.slow
def test_cli_lr_milestones(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = _cli(tmp_path, "--lr-milestones", "0.5")
    cmd[cmd.index("--steps") + 1] = "4"
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=tmp_path)
    lrs = [float(r["lr"]) for r in _rows(tmp_path / "ghn.metrics.csv")]
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4])
    flat = _cli(tmp_path / "flat", "--lr-milestones", "none")
    flat[flat.index("--steps") + 1] = "4"
    subprocess.run(flat, env=env, check=True, capture_output=True, cwd=tmp_path)
    lrs = [float(r["lr"]) for r in _rows(tmp_path / "flat" / "ghn.metrics.csv")]
    assert lrs == pytest.approx([1e-3] * 4)  # 'none': a constant rate
    for bad in ("0.9,0.5", "1.5", "x"):
        out = subprocess.run(_cli(tmp_path / "bad", "--lr-milestones", bad), env=env, cwd=tmp_path,
                             capture_output=True, text=True)
        assert out.returncode == 2 and "--lr-milestones" in out.stderr, out.stderr[-500:]
    warm = _cli(tmp_path / "warm", "--lr-warmup", "0.5")
    warm[warm.index("--steps") + 1] = "4"
    subprocess.run(warm, env=env, check=True, capture_output=True, cwd=tmp_path)
    lrs = [float(r["lr"]) for r in _rows(tmp_path / "warm" / "ghn.metrics.csv")]
    assert lrs == pytest.approx([1e-5, 5e-4, 1e-3, 1e-4])  # ramp, then the default milestones
    out = subprocess.run(_cli(tmp_path / "bad", "--lr-warmup", "1.5"), env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--lr-warmup" in out.stderr, out.stderr[-500:]


@pytest.mark.slow
def test_cli_no_augment_reaches_the_run_and_must_match_on_resume(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = _cli(tmp_path, "--no-augment")
    cmd[cmd.index("--steps") + 1] = "2"
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=tmp_path)
    saved = torch.load(tmp_path / "ghn.resume.pt", weights_only=False)["config"]
    assert saved["augment"] is False
    changed = [c for c in cmd if c != "--no-augment"] + ["--resume"]
    out = subprocess.run(changed, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 2 and "augment=False" in out.stderr, out.stderr[-500:]
    same = subprocess.run(cmd + ["--resume"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert same.returncode == 0, same.stderr[-500:]
