"""Hostile and careless input: every user mistake is one line ``archlab VERB: error: ...`` with
exit code 2 and no traceback; no wrong number is reported with exit 0; no input is overwritten."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from archlab.cli import main
from archlab.ghn import GHNConfig, build_ghn, save_ghn
from archlab.graph import GraphError, normalize_input_size, resolve_model

REPO = Path(__file__).resolve().parents[1]
MY_VERBS = ["graph", "generate", "train", "evaluate", "predict", "finetune", "embed", "demo", "shift", "map",
            "properties"]

MODELS = '''
import torch
from torch import nn


class _Fixed(nn.Module):
    """Runs only at SIZE x SIZE: its classifier reads a fixed number of features."""

    size = 32

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * (self.size // 2) ** 2, num_classes)

    def forward(self, x):
        return self.fc(torch.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))


class Net32(_Fixed):
    size = 32


class Net16(_Fixed):
    size = 16


class FiveWay(nn.Module):
    """A fixed 5-class head (no num_classes argument)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))
'''


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> dict[str, str]:
    """Paths used by the invocations: tiny GHNs (good, NaN, GHN-2), a model file, bad inputs."""
    root = tmp_path_factory.mktemp("hostile")
    torch.manual_seed(0)
    save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=16, hid=8)), root / "mlp16.pt")
    save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=32, hid=8)), root / "mlp32.pt")
    save_ghn(build_ghn(GHNConfig.preset("ghn2", num_classes=10, image_size=16, hid=8)), root / "ghn2.pt")
    nan = build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=16))
    with torch.no_grad():
        for p in nan.parameters():
            p.fill_(float("nan"))
    save_ghn(nan, root / "nan.pt")
    (root / "models.py").write_text(MODELS)
    (root / "notes.txt").write_text("not JSON Lines\n")
    (root / "bad.jsonl").write_text("this is not json\n")
    (root / "empty").mkdir()
    (root / "a_dir.parquet").mkdir()
    (root / "train_only" / "train").mkdir(parents=True)
    return {"d": str(root), "mlp": str(root / "mlp16.pt"), "mlp32": str(root / "mlp32.pt"),
            "ghn2": str(root / "ghn2.pt"), "nan": str(root / "nan.pt"), "m": str(root / "models.py"),
            "txt": str(root / "notes.txt")}


def cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """``archlab ARGV`` in-process: exit code, stdout, stderr."""
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse and --help
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


FT = "finetune --model resnet18 --steps 1 --max-test-images 32 --no-progress --out {d}/ft"
EV = "evaluate --ckpt {mlp} --max-images 32 --no-progress"

BAD = [
    # 3. wrong numbers with exit 0
    ("evaluate --ckpt {nan} --models resnet18 --max-images 32 --no-progress", "NaN"),
    ("predict --ckpt {nan} --model resnet18 --out {d}/w.pt", "NaN"),
    ("embed --ckpt {nan} --models resnet18 --out {d}/e.parquet --no-progress", "NaN"),
    (FT + " --ckpt {nan}", "NaN"),
    ("predict --ckpt {mlp} --model resnet18 --num-classes 100 --out {d}/w.pt", "10-class classifiers, not 100"),
    (EV + " --models {m}:FiveWay", "10-class classifiers but FiveWay's classifier fc.weight has 5"),
    ("finetune --init random --model {m}:FiveWay --steps 1 --no-progress --out {d}/ft",
     "dataset has 10 classes"),
    (EV + " --split test --max-images 0", "--max-images must be >= 1, got 0"),
    (EV + " --split test --limit 0", "--limit must be >= 1, got 0"),
    (EV + " --split test --limit 1 --baseline-ckpt {ghn2}", "is a ghn2 GHN; the baseline row is an MLP GHN"),
    ("predict --ckpt {mlp} --model resnet18 --input-size 3x32 --out {d}/w.pt", "CxHxW"),
    ("graph resnet18 --input-size 3x32", "reads as CxH with W missing"),
    (EV + " --models resnet18 --input-size 1x2x3x4", "CxHxW"),
    # 4. tracebacks for user mistakes
    (FT + " --ckpt {mlp} --dataset cifar10 --data-dir {d}/missing", "no CIFAR-10 found"),
    (FT + " --ckpt {mlp} --dataset cifar10 --data-dir {d}/empty", "no CIFAR-10 found"),
    (FT + " --ckpt {mlp} --dataset cifar10 --data-dir {d}/train_only", "no CIFAR-10 found"),
    (FT + " --ckpt {mlp} --dataset cifar10", "needs data_dir"),
    (FT + " --ckpt {mlp} --dataset mnist", "unknown dataset 'mnist'"),
    (EV + " --models resnet18 --dataset cifar10 --data-dir {d}/empty", "no CIFAR-10 found"),
    ("graph resnet18 --json {d}/missing/g.json", "does not exist"),
    ("graph resnet18 --plot {d}/missing/g.png", "does not exist"),
    ("graph resnet18 --plot {d}/g.gif", "unknown image format 'gif'"),
    ("predict --ckpt {mlp} --model resnet18 --out {d}", "is a directory"),
    ("embed --ckpt {mlp} --models resnet18 --out {d}/a_dir.parquet", "is a directory"),
    (EV + " --models resnet18 --json {d}", "is a directory"),
    (FT + " --ckpt {mlp} --out {txt}", "not a folder"),
    ("predict --ckpt {mlp} --model resnet18 --num-classes -3 --out {d}/w.pt", "--num-classes must be >= 1"),
    ("graph resnet18 --num-classes -3", "--num-classes must be >= 1"),
    ("demo --model resnet5O --out {d}/demo", "did you mean resnet50"),
    ("graph resnet5O", "did you mean resnet50"),
    ("predict --ckpt {mlp} --model resnet5O --out {d}/w.pt", "did you mean resnet50"),
    ("generate --split val -n 2 --out {txt} --quiet", "not JSON Lines"),
    ("generate --split val -n 2 --out {txt}/sub --quiet", "not a folder"),
    ("generate --split val -n 2 --out {txt}/val.jsonl --quiet", "not a folder"),
    ("embed --ckpt {mlp} --train 0 --out {d}/e.parquet", "--train must be >= 1"),
    (FT + " --ckpt {mlp} --lr 0", "--lr must be a number > 0"),
    (EV + " --genotypes {d}/bad.jsonl", "not a JSON Lines genotype file"),
    (EV + " --models resnet18 --ckpt {d}/nope.pt", "not found"),
    # 5. custom models that only run at their own size
    ("graph {m}:Net32", "--input-size"),
    ("predict --ckpt {mlp} --model {m}:Net32 --out {d}/w.pt", "nor at 3x16x16"),
    ("embed --ckpt {mlp} --models {m}:Net32 --out {d}/e.parquet --no-progress", "--input-size"),
    (EV + " --models {m}:Net32", "--input-size"),
    (EV + " --models {m}:Net32 --input-size 32", "cannot run on the dataset's 3x16x16 images"),
    (FT + " --ckpt {mlp} --model {m}:Net32", "--input-size"),
]


@pytest.mark.parametrize("args,fragment", BAD, ids=[" ".join(a.split()[:1] + [f[:24]]) for a, f in BAD])
def test_bad_invocation_is_one_line_exit_2(d, capsys, args, fragment):
    argv = args.format(**d).split()  # a repeated option: the last one counts (argparse)
    rc, out, err = cli(capsys, argv)
    assert rc == 2, (out, err)
    assert "Traceback" not in err
    assert fragment in err, err
    assert err.count(f"archlab {argv[0]}: error:") == 1, err


def test_demo_checks_model_before_writing(d, capsys):
    out = Path(d["d"]) / "demo_never"
    rc, _, err = cli(capsys, ["demo", "--model", "resnet5O", "--out", str(out)])
    assert rc == 2 and "did you mean resnet50" in err and not out.exists()


@pytest.mark.parametrize("verb", ["predict", "embed", "evaluate"])
def test_output_equal_to_checkpoint_is_refused_and_kept(d, capsys, tmp_path, verb):
    ckpt = tmp_path / "ghn.parquet"  # a name embed's --out would accept
    save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=16, hid=8)), ckpt)
    before = ckpt.read_bytes()
    os.symlink(ckpt, tmp_path / "alias.parquet")
    for out in (str(ckpt), str(tmp_path / "." / "ghn.parquet"), str(tmp_path / "alias.parquet")):
        argv = {"predict": ["predict", "--ckpt", str(ckpt), "--model", "resnet18", "--out", out],
                "embed": ["embed", "--ckpt", str(ckpt), "--models", "resnet18", "--out", out],
                "evaluate": ["evaluate", "--ckpt", str(ckpt), "--models", "resnet18",
                             "--max-images", "32", "--json", out]}[verb]
        rc, _, err = cli(capsys, argv)
        assert rc == 2 and "same file as --ckpt" in err and "Traceback" not in err
        assert ckpt.read_bytes() == before


# ---------------------------------------------------------------------- section 5: custom sizes
def test_custom_model_falls_back_to_the_ghn_image_size(d, capsys, tmp_path):
    spec = f"{d['m']}:Net32"
    rc, out, err = cli(capsys, ["embed", "--ckpt", d["mlp32"], "--models", spec,
                                "--out", str(tmp_path / "e.parquet"), "--no-progress"])
    assert rc == 0, err
    rc, out, err = cli(capsys, ["predict", "--ckpt", d["mlp"], "--model", spec, "--input-size", "32",
                                "--out", str(tmp_path / "w.pt")])
    assert rc == 0, err
    assert torch.load(tmp_path / "w.pt", weights_only=True)["fc.weight"].shape == (10, 4 * 16 * 16)
    net16 = f"{d['m']}:Net16"  # digits are 16 px: the GHN's size is the one the model runs at
    rc, out, err = cli(capsys, ["evaluate", "--ckpt", d["mlp"], "--models", net16, "--max-images", "32",
                                "--no-progress", "--json", str(tmp_path / "ev.json")])
    assert rc == 0, err
    rows = json.loads((tmp_path / "ev.json").read_text())["rows"]
    assert {r["method"] for r in rows} == {"ghn", "random"} and all(r["n_images"] == 32 for r in rows)
    rc, out, err = cli(capsys, ["finetune", "--ckpt", d["mlp"], "--model", net16, "--steps", "1",
                                "--max-test-images", "32", "--no-progress", "--input-size", "16",
                                "--out", str(tmp_path / "ft")])
    assert rc == 0, err


def test_fallback_is_said_in_one_line(d, tmp_path):
    r = _archlab("predict", "--ckpt", d["mlp32"], "--model", f"{d['m']}:Net32",
                 "--out", str(tmp_path / "w.pt"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if "native input size" in line]
    assert len(notes) == 1 and "3x224x224" in notes[0] and "3x32x32" in notes[0], r.stderr


# ---------------------------------------------------------------------- real processes
def _archlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "archlab", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args,fragment", [
    (("evaluate", "--ckpt", "{nan}", "--models", "resnet18", "--max-images", "32", "--no-progress"), "NaN"),
    (("finetune", "--model", "resnet18", "--ckpt", "{mlp}", "--steps", "1", "--dataset", "cifar10",
      "--data-dir", "{d}/empty", "--out", "{d}/ft"), "no CIFAR-10 found"),
], ids=["nan-checkpoint", "empty-data-dir"])
def test_subprocess_user_error_is_one_line(d, tmp_path, args, fragment):
    r = _archlab(*(a.format(**d) for a in args), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and fragment in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"archlab {args[0]}: error:")


# ---------------------------------------------------------------------- corrupt image files
def _cifar_folder(root: Path) -> Path:
    from PIL import Image

    from archlab.data import CIFAR10_CLASSES

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in CIFAR10_CLASSES:
            (root / split / c).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / split / c / "0.png")
    bad = root / "test" / "cat" / "1.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    return bad


def test_corrupt_image_is_a_data_error(d, capsys, tmp_path):
    _cifar_folder(tmp_path / "cifar")
    rc, _, err = cli(capsys, ["evaluate", "--ckpt", d["mlp32"], "--models", "resnet18", "--no-progress",
                              "--dataset", "cifar10", "--data-dir", str(tmp_path / "cifar")])
    assert rc == 2 and "Traceback" not in err and "archlab evaluate: error:" in err, err


def test_truncated_image_names_the_file(tmp_path):
    from archlab.data import load_dataset
    from archlab.errors import DataError

    bad = _cifar_folder(tmp_path / "cifar")
    good = tmp_path / "cifar" / "test" / "cat" / "0.png"
    bad.write_bytes(good.read_bytes()[:60])  # a truncated PNG
    with pytest.raises(DataError, match="1.jpg"):
        load_dataset("cifar10", tmp_path / "cifar", split="test")


# ---------------------------------------------------------------------- units and help
@pytest.mark.parametrize("text,expected", [
    ("3x224x224", (3, 224, 224)), ("224x224", (3, 224, 224)), ("32", (3, 32, 32)), (32, (3, 32, 32)),
    ((16, 16), (3, 16, 16)), ("1x28x28", (1, 28, 28)),
])
def test_input_size_forms(text, expected):
    assert normalize_input_size(text) == expected


@pytest.mark.parametrize("text", ["3x32", "1x28", "1x2x3x4", "", "x32", "32x", "a", "3x-2x2", (3, 0, 3), True])
def test_input_size_refused(text):
    with pytest.raises(GraphError, match="input size"):
        normalize_input_size(text)


def test_unknown_model_suggests_the_nearest():
    with pytest.raises(GraphError, match="did you mean resnet50"):
        resolve_model("resnet5O")
    with pytest.raises(GraphError, match="num_classes must be a positive integer"):
        resolve_model("resnet18", num_classes=-3)


def test_evaluate_json_is_strict(d, capsys, tmp_path):
    out = tmp_path / "ev.json"
    rc, _, err = cli(capsys, ["evaluate", "--ckpt", d["mlp"], "--models", "resnet18", "--max-images", "32",
                              "--no-progress", "--json", str(out)])
    assert rc == 0, err

    def refuse(name):
        raise AssertionError(f"bare {name} in strict JSON")

    doc = json.loads(out.read_text(), parse_constant=refuse)
    mlp_row = next(a for a in doc["aggregate"] if a["method"] == "mlp-ghn")
    assert mlp_row["top1_mean"] is None and mlp_row["status"] == "not provided"


@pytest.mark.parametrize("verb", MY_VERBS)
def test_help_ends_with_real_examples(capsys, verb):
    rc, out, _ = cli(capsys, [verb, "--help"])
    assert rc == 0
    tail = out.rstrip().split("examples:\n")
    assert len(tail) == 2, out[-400:]
    lines = tail[1].splitlines()
    assert 1 <= len(lines) <= 2 and all(line.startswith(f"  archlab {verb}") for line in lines)
