"""``archlab generate``: output equals the Python API, and no torch import."""

from __future__ import annotations

import subprocess
import sys

import archlab.space as S
from archlab.space._storage import dumps_record


def test_generate_cli_matches_api_without_torch(tmp_path):
    code = ("import sys; from archlab.cli import main; "
            f"rc = main(['generate', '--split', 'val', '-n', '12', '--out', {str(tmp_path)!r}, '--quiet']); "
            "print(rc, 'torch' in sys.modules, 'torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-3:] == ["0", "False", "False"], out.stdout + out.stderr
    lines = (tmp_path / "val.jsonl").read_text().splitlines()
    assert lines == [dumps_record(r) for r in S.generate_split("val", n=12)]


def test_generate_cli_seed_file_target_and_errors(tmp_path, capsys):
    from archlab.cli import main

    target = tmp_path / "x.jsonl.gz"
    assert main(["generate", "--split", "train", "-n", "5", "--seed", "3", "--out", str(target), "--quiet"]) == 0
    assert [r["hash"] for r in S.read_split(target)] == [r["hash"] for r in S.generate_split("train", n=5, seed=3)]
    assert main(["generate", "--split", "tset", "--out", str(tmp_path)]) == 2
    assert "unknown split 'tset'" in capsys.readouterr().err
    assert main(["generate", "--split", "eval", "-n", "3", "--out", str(tmp_path)]) == 2
    assert main(["generate", "--split", "val", "--workers", "0", "--out", str(tmp_path)]) == 2
