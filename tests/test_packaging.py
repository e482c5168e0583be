"""A normal (non-editable) install works outside the checkout: shipped splits are package data."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installed_outside_checkout_evaluates_a_shipped_split(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("archlab-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies (torch & co.) come from this interpreter's site-packages, appended after the
    # new venv's own; the editable archlab there is not activated (its .pth is not processed)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                    str(wheel)], check=True, cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    where = subprocess.run([str(py), "-c", "import archlab; print(archlab.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv), f"archlab imported from {where}, not the installed wheel"
    ckpt = work / "ghn.pt"
    subprocess.run([str(py), "-c", "from archlab.ghn import GHNConfig, build_ghn, save_ghn; "
                    f"save_ghn(build_ghn(GHNConfig.preset('mlp', num_classes=10, image_size=8)), {str(ckpt)!r})"],
                   cwd=work, env=env, check=True)
    out = subprocess.run([str(py), "-m", "archlab", "evaluate", "--ckpt", str(ckpt), "--split", "test",
                          "--limit", "2", "--max-images", "64", "--no-progress"],
                         cwd=work, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "test/0" in out.stdout or "2 architectures" in out.stdout or "ghn" in out.stdout, out.stdout
