"""Hostile and careless input, through real ``archlab`` subprocesses on real files.

* every file archlab reads is loaded without running code: a pickle payload planted in a GHN
  checkpoint, a ``.resume.pt``, a CIFAR python batch or a decode cache never runs;
* ``archlab train`` never destroys a file that is not its own (a user's file, a finished GHN),
  holds a lock on its output (two runs never write one output), checkpoints on the clock as well
  as on steps, says whether it resumes, and turns a full disk into one clear error.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from archlab._lock import LockHeldError, acquire, hold_lock, release

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
TINY = ["--ghn", "ghn2", "--hid", "8", "--meta-batch", "2", "--batch-size", "8", "--widths", "8",
        "--device", "cpu", "--no-progress", "--log-every", "1"]


class Plant:
    """Unpickling this runs ``open(marker, 'w')``: proof that a loader executed a payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def archlab(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archlab", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def assert_refused(proc: subprocess.CompletedProcess, path: Path, marker: Path | None = None) -> None:
    """Exit 2, one ``archlab VERB: error:`` naming ``path``, no traceback, no payload run."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "error:" in proc.stderr and str(path) in proc.stderr, proc.stderr[-3000:]
    if marker is not None:
        assert not marker.exists(), "the planted payload ran"


def test_the_payload_is_live(tmp_path):
    """The planted object really runs code when unpickled: the tests below prove something."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Plant(marker)))
    assert marker.exists()


# ---------------------------------------------------------------- GHN checkpoints, resume state


def _planted_checkpoint(path: Path, marker: Path, raw_pickle: bool = False) -> Path:
    from archlab.ghn import GHNConfig, build_ghn, save_ghn

    save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=32)), path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["extra"] = {"note": Plant(marker)}
    if raw_pickle:  # a legacy (non-zip) torch file: the whole file is one pickle
        path.write_bytes(pickle.dumps(ckpt))
    else:
        torch.save(ckpt, path)
    return path


VERBS = {
    "predict": ["--model", "resnet18", "--out", "w.pt", "--device", "cpu"],
    "evaluate": ["--models", "resnet18", "--max-images", "8", "--device", "cpu", "--no-progress"],
    "embed": ["--models", "resnet18", "--out", "e.parquet", "--device", "cpu", "--no-progress"],
}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_planted_ghn_checkpoint_never_runs(tmp_path, verb):
    marker = tmp_path / "ran"
    ckpt = _planted_checkpoint(tmp_path / "evil.pt", marker, raw_pickle=verb == "evaluate")
    proc = archlab(verb, "--ckpt", str(ckpt), *VERBS[verb], cwd=tmp_path)
    assert_refused(proc, ckpt, marker)
    assert not (tmp_path / "w.pt").exists() and not (tmp_path / "e.parquet").exists()


def test_planted_resume_state_never_runs(tmp_path):
    marker = tmp_path / "ran"
    state = tmp_path / "ghn.resume.pt"
    torch.save({"config": {}, "ghn": {}, "optimizer": {}, "scaler": {}, "state": {},
                "rng": Plant(marker)}, state)
    proc = archlab("train", *TINY, "--steps", "1", "--out", "ghn.pt", "--resume", cwd=tmp_path)
    assert_refused(proc, Path("ghn.resume.pt"), marker)  # named as given: --out ghn.pt
    assert "exec" in proc.stderr and "add_safe_globals" not in proc.stderr
    assert not (tmp_path / "ghn.pt").exists() and not (tmp_path / "ghn.lock").exists()


@pytest.mark.slow
def test_train_outputs_resume_and_refusals(tmp_path):
    """A fresh run (``--resume`` without state says it starts afresh) writes a resume state that
    loads with weights_only=True; a truncated one, a finished GHN without resume state, a user's
    file and a directory at ``--out`` are refused; ``--overwrite`` replaces on request."""
    proc = archlab("train", *TINY, "--steps", "1", "--out", "ghn.pt", "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no training state at ghn.resume.pt: starting afresh at step 0" in proc.stderr
    state, out = tmp_path / "ghn.resume.pt", tmp_path / "ghn.pt"
    ck = torch.load(state, weights_only=True)  # tensors and plain containers only
    assert ck["state"]["step"] == 1 and isinstance(ck["rng"]["numpy"]["keys"], torch.Tensor)
    assert not (tmp_path / "ghn.lock").exists()

    good = state.read_bytes()
    state.write_bytes(good[: len(good) // 2])
    proc = archlab("train", *TINY, "--steps", "2", "--out", "ghn.pt", "--resume", cwd=tmp_path)
    assert_refused(proc, Path("ghn.resume.pt"))
    assert "not a readable archlab training state" in proc.stderr

    state.unlink()  # ghn.pt is now a finished GHN: a new run must not replace it
    finished = out.read_bytes()
    for extra in ([], ["--resume"]):
        proc = archlab("train", *TINY, "--steps", "1", "--out", "ghn.pt", *extra, cwd=tmp_path)
        assert_refused(proc, Path("ghn.pt"))
        assert "finished GHN checkpoint" in proc.stderr and "--out" in proc.stderr
        assert out.read_bytes() == finished

    notes = tmp_path / "notes.txt"
    notes.write_text("a week of lab notes\n")
    notes.chmod(0o600)
    proc = archlab("train", *TINY, "--steps", "1", "--out", "notes.txt", cwd=tmp_path)
    assert_refused(proc, Path("notes.txt"))
    assert "not an archlab GHN checkpoint" in proc.stderr
    assert notes.read_text() == "a week of lab notes\n" and notes.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "notes.resume.pt").exists() and not (tmp_path / "notes.lock").exists()

    (tmp_path / "adir").mkdir()
    proc = archlab("train", *TINY, "--steps", "1", "--out", "adir", cwd=tmp_path)
    assert_refused(proc, Path("adir"))
    assert "is a directory" in proc.stderr

    proc = archlab("train", *TINY, "--steps", "1", "--out", "ghn.pt", "--overwrite", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_bytes() != finished and "starting afresh" in proc.stderr


@pytest.mark.parametrize("flag", ["--batch-size", *(pytest.param(f, marks=pytest.mark.slow) for f in (
    "--log-every", "--ckpt-every", "--meta-batch", "--steps", "--ckpt-minutes"))])
def test_train_rejects_out_of_range_options_before_any_work(tmp_path, flag):
    for value in (["0"] if flag != "--ckpt-minutes" else []) + ["-3"]:
        steps = ["--steps", "2"] if flag != "--steps" else []
        proc = archlab("train", *TINY, *steps, flag, value, "--out", "ghn.pt", cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and flag in lines[0], lines
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- data files


def _tiny_cifar_python(folder: Path, write_python_batches) -> Path:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    y = np.arange(20) % 10
    return write_python_batches(folder / "cifar-10-batches-py", x, y, x[:10], y[:10])


def test_cifar_python_batches_load_with_the_restricted_unpickler(tmp_path, write_python_batches):
    from archlab.data import load_dataset

    _tiny_cifar_python(tmp_path, write_python_batches)
    ds = load_dataset("cifar10", tmp_path, split="test", augment=False)
    assert len(ds) == 10 and ds.targets == list(range(10))


@pytest.mark.parametrize("victim", ["data_batch_1", "batches.meta"])
def test_planted_cifar_batch_never_runs(tmp_path, write_python_batches, victim):
    root = _tiny_cifar_python(tmp_path / "data", write_python_batches)
    marker = tmp_path / "ran"
    with open(root / victim, "wb") as f:
        pickle.dump({b"data": Plant(marker), b"labels": [0], b"label_names": Plant(marker)}, f,
                    protocol=2)
    proc = archlab("train", *TINY, "--steps", "1", "--dataset", "cifar10", "--data-dir",
                   str(tmp_path / "data"), "--out", "ghn.pt", cwd=tmp_path)
    assert_refused(proc, root / victim, marker)
    assert not (tmp_path / "ghn.pt").exists()


def test_planted_decode_cache_never_runs_and_is_rebuilt(tmp_path, cifar10_names):
    """The ImageFolder decode cache is archlab's own derived data: a planted one is not
    unpickled, is named in a warning, and is replaced by a freshly decoded one."""
    from PIL import Image

    from archlab.data import load_dataset

    root = tmp_path / "data"
    for split in ("train", "test"):
        for c, name in enumerate(cifar10_names):
            (root / split / name).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (32, 32), (c * 20, i * 50, 7)).save(root / split / name / f"{i}.png")
    load_dataset("cifar10", root, split="train")  # writes the cache
    (cache,) = (root / ".archlab_cache").glob("cifar10-train-*.npz")
    marker = tmp_path / "ran"
    planted = np.empty(1, dtype=object)
    planted[0] = Plant(marker)
    with open(cache, "wb") as f:
        np.savez(f, images=planted, labels=planted)
    proc = archlab("train", *TINY, "--steps", "1", "--dataset", "cifar10", "--data-dir", str(root),
                   "--out", "ghn.pt", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not marker.exists(), "the planted payload ran"
    assert f"ignoring unreadable cache {cache}" in proc.stderr
    with np.load(cache, allow_pickle=False) as z:  # rebuilt: plain uint8 again
        assert z["images"].dtype == np.uint8 and z["images"].shape == (30, 3, 32, 32)


# ---------------------------------------------------------------- the run lock


def _holder(path: Path, pid: int, host: str | None = None, started: float | None = None) -> None:
    path.write_text(json.dumps({"host": host or socket.gethostname(), "pid": pid,
                                "process_started": started, "locked_at": started or time.time(),
                                "what": "training ghn.pt"}))


def test_lock_refuses_live_holders_and_takes_over_dead_ones(tmp_path, caplog):
    lock = tmp_path / "ghn.lock"
    _holder(lock, os.getpid(), started=time.time() - 5)  # alive: this very process
    with pytest.raises(LockHeldError, match=f"PID {os.getpid()}"):
        acquire(lock, "training ghn.pt")
    _holder(lock, os.getpid(), host="elsewhere.example")  # another host: cannot tell, refuse
    with pytest.raises(LockHeldError, match="another host"):
        acquire(lock, "training ghn.pt")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _holder(lock, gone.pid)  # that PID no longer runs
    with hold_lock(lock, "training ghn.pt"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists() and "taking over stale lock" in caplog.text
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a live PID that started after the lock was written: the PID was reused
        time.sleep(0.5)
        _holder(lock, sleeper.pid, started=time.time() - 3600)
        release(lock, acquire(lock, "training ghn.pt"))
    finally:
        sleeper.kill()
        sleeper.wait()
    lock.write_text("")  # unreadable: never taken over silently
    with pytest.raises(LockHeldError, match="not a readable archlab lock"):
        acquire(lock, "training ghn.pt")


RACER = """
import sys, time
from archlab._lock import LockHeldError, hold_lock
while time.time() < float(sys.argv[2]):
    pass
try:
    with hold_lock(sys.argv[1], "racer"):
        print("GOT", flush=True)
        time.sleep(3)
except LockHeldError as e:
    print("REFUSED", e, flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("stale", [False, True])
def test_lock_racers_exactly_one_wins(tmp_path, stale):
    lock = tmp_path / "ghn.lock"
    if stale:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        _holder(lock, gone.pid)
    start = time.time() + 3
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(lock), str(start)], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert sorted(o.split()[0] for o in outs) == ["GOT", "REFUSED", "REFUSED", "REFUSED"], outs
    assert not lock.exists()


def _step_of(state: Path) -> int:
    try:
        return int(torch.load(state, weights_only=True)["state"]["step"])
    except Exception:  # noqa: BLE001 - not written yet, or being replaced
        return -1


@pytest.mark.slow
def test_two_runs_never_share_an_output_and_a_killed_run_resumes_from_the_clock(tmp_path):
    """Run A checkpoints on the clock only (``--ckpt-every`` 100 is never reached); B, plain or
    ``--resume``, is refused while A runs, naming A's PID; after SIGKILL a resumed run takes the
    stale lock over and says from which step it resumes."""
    cmd = [sys.executable, "-m", "archlab", "train", *TINY, "--steps", "100000", "--out", "ghn.pt",
           "--ckpt-minutes", "0.01"]
    a = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state, lock = tmp_path / "ghn.resume.pt", tmp_path / "ghn.lock"
    try:
        deadline = time.time() + 300
        while _step_of(state) < 1 and a.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert a.poll() is None, a.communicate()[1].decode()[-3000:]
        assert json.loads(lock.read_text())["pid"] == a.pid
        for extra in ([], ["--resume"]):
            b = archlab("train", *TINY, "--steps", "3", "--out", "ghn.pt", *extra, cwd=tmp_path)
            assert_refused(b, Path("ghn.lock"))
            assert f"PID {a.pid}" in b.stderr
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=60)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    saved = _step_of(state)
    assert 1 <= saved < 100 and lock.exists()  # only the clock checkpointed; the lock is stale
    c = archlab("train", *TINY, "--steps", "1", "--out", "ghn.pt", "--resume", cwd=tmp_path)
    assert c.returncode == 0, c.stderr[-3000:]
    assert "taking over stale lock" in c.stderr and f"PID {a.pid}" in c.stderr
    assert f"resuming ghn.resume.pt at step {saved}" in c.stderr
    assert not lock.exists()
    from archlab.ghn import load_ghn

    load_ghn(tmp_path / "ghn.pt")


# ---------------------------------------------------------------- a full disk


FULL_DISK = r"""
set -e
mount -t tmpfs -o size=4m tmpfs "$DISK"
cp "$SRC/ghn.pt" "$SRC/ghn.resume.pt" "$DISK/"
free=$("$PY" -c "import os; s=os.statvfs('$DISK'); print(s.f_bavail * s.f_frsize)")
head -c $((free - 65536)) /dev/zero > "$DISK/filler"
set +e
"$PY" -m archlab train $TINY --steps 3 --resume --out "$DISK/ghn.pt" > "$SRC/out.txt" 2> "$SRC/err.txt"
echo $? > "$SRC/rc.txt"
cmp -s "$SRC/ghn.resume.pt" "$DISK/ghn.resume.pt"; echo $? > "$SRC/same.txt"
ls -A "$DISK" > "$SRC/ls.txt"
"""


@pytest.mark.slow
def test_full_disk_keeps_the_previous_state_and_says_so(tmp_path):
    """On a real 4 MiB tmpfs (own mount namespace; skipped where unshare cannot mount): a
    resumed run that cannot write its checkpoint exits 2 naming the file, the previous resume
    state is intact and no temporary file is left."""
    if not shutil.which("unshare"):
        pytest.skip("unshare not available")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {probe.stderr.decode()[-200:]}")
    src, disk = tmp_path / "src", tmp_path / "disk"
    src.mkdir()
    disk.mkdir()
    proc = archlab("train", *TINY, "--steps", "1", "--out", "ghn.pt", "--ckpt-minutes", "0",
                   cwd=src)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = {**ENV, "DISK": str(disk), "SRC": str(src), "PY": sys.executable, "TINY": " ".join(TINY)}
    subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", FULL_DISK],
                   env=env, check=True, timeout=600)
    err = (src / "err.txt").read_text()
    assert (src / "rc.txt").read_text().strip() == "2", err[-3000:]
    assert "Traceback" not in err and f"no space left to write {disk}/ghn" in err, err[-3000:]
    assert (src / "same.txt").read_text().strip() == "0", "the previous resume state changed"
    left = (src / "ls.txt").read_text().split()
    assert not [n for n in left if n.endswith(".tmp")] and "ghn.lock" not in left, left
