"""The ``archlab`` command and its ``graph`` verb, run as real subprocesses."""

import json
import subprocess
import sys
from pathlib import Path

from tests.models import tricky

TRICKY = Path(tricky.__file__)


def archlab(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "archlab", *args], capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_help_lists_verbs_without_importing_torch():
    probe = ("import sys\nfrom archlab.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "graph" in r.stdout and "generate" in r.stdout
    assert r.stdout.strip().endswith("NOTORCH"), r.stdout + r.stderr


def test_graph_summary_json_and_plot(tmp_path):
    out_json, out_png = tmp_path / "g.json", tmp_path / "g.png"
    r = archlab("graph", "resnet18", "--json", str(out_json), "--plot", str(out_png))
    assert "coverage 1.0000" in r.stdout and "nodes 53" in r.stdout
    d = json.loads(out_json.read_text())
    assert d["format"] == "archlab.graph/1" and len(d["nodes"]) == 53
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_png.stat().st_size > 10_000


def test_graph_of_user_file_model_and_input_size():
    r = archlab("graph", f"{TRICKY}:TokenNet", "--input-size", "3x32x32")
    assert "input 3x32x32" in r.stdout and "pos_enc 2" in r.stdout


def test_graph_bad_inputs_exit_2_with_clear_message():
    r = archlab("graph", "resnet5", check=False)
    assert r.returncode == 2 and "unknown model 'resnet5'" in r.stderr
    r = archlab("graph", f"{TRICKY}:Missing", check=False)
    assert r.returncode == 2 and "has no class 'Missing'" in r.stderr
    r = archlab("graph", "vit_b_16", "--input-size", "3x16x16", check=False)
    assert r.returncode == 2 and "cannot run at input size 3x16x16" in r.stderr
    r = archlab("graph", f"{TRICKY}:UnusedParamNet", "--strict", check=False)
    assert r.returncode == 2 and "orphan" in r.stderr
    r = archlab("frobnicate", check=False)
    assert r.returncode == 2 and "unknown verb 'frobnicate'" in r.stderr


def test_zoo_table_for_a_family():
    r = archlab("graph", "--zoo", "--filter", "resnet1*")
    assert "resnet18" in r.stdout and "resnet101" in r.stdout and "3/3 models with coverage 1.0" in r.stdout
