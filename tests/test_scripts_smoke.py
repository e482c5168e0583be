"""Every benchmark (``benchmarks/*.py``) and every study script (``analyses/*/run.py``) runs.

Each script is run as a real subprocess from the repository root, as its docstring shows, with the
smallest arguments it has (one run, a step or two, tiny models, outputs into ``tmp_path``). The test
checks the exit status, that the script printed its table, and for studies that it wrote its
outputs and a ``manifest.json`` naming the checked-out commit. Scripts are found by glob: a new one
fails here until it has a row in ``CASES``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(str(p.relative_to(REPO)) for p in (*REPO.glob("benchmarks/*.py"), *REPO.glob("analyses/*/run.py")))
TIMEOUT_S = 240


@dataclass(frozen=True)
class Case:
    args: list[str]  # "{out}" -> an empty folder in tmp_path, "{ckpt}" -> a tiny 10-class GHN checkpoint,
    # "{cifar10}" -> the real CIFAR-10 tarball (ARCHLAB_CIFAR10; skips without it outside CI)
    printed: list[str]  # substrings the script's stdout must contain
    files: list[str] = field(default_factory=list)  # paths under {out} the script must write
    slow: bool = False  # more than ~10 s on two idle cores


CASES: dict[str, Case] = {
    "benchmarks/bench_generate.py": Case(
        ["--n", "5", "--repeats", "1", "--workers", "1"], ["archs/s", "1M projected"]),
    "benchmarks/bench_graph.py": Case(
        ["--models", "resnet18", "--repeats", "1", "--forward-repeats", "1"], ["build med s", "resnet18"]),
    "benchmarks/bench_predict.py": Case(
        ["--models", "resnet18", "--presets", "mlp", "--image-size", "64", "--num-classes", "10", "--runs", "1"],
        ["total/fwd", "resnet18"]),
    "benchmarks/bench_embed.py": Case(["--archs", "4", "--runs", "1"], ["ms/arch", "embed_candidates"], slow=True),
    "benchmarks/bench_gnn.py": Case(
        ["--meta-batch", "1", "--batches", "1", "--runs", "1"], ["ms / meta-batch", "| archlab"], slow=True),
    "benchmarks/bench_train.py": Case(
        ["--ghn", "mlp", "--meta-batch", "1", "--widths", "16", "--batch-size", "16", "--steps", "1",
         "--runs", "1", "--device", "cpu", "--settings", "fp32", "--memory-steps", "1"],
        ["archs/s", "fp32 ", "floor share", "peak RSS"], slow=True),
    "analyses/ghn_digits/run.py": Case(
        ["--steps", "1", "--archs", "2", "--max-images", "32", "--meta-batch", "1", "--widths", "16",
         "--no-augment", "--device", "cpu", "--seed", "0", "--out", "{out}"],
        ["GHN-2 top-1 %", "mlp-ghn"],
        ["summary.md", "summary.csv", "seed0/results.csv", "seed0/summary.md", "seed0/accuracy.png",
         "seed0/manifest.json"], slow=True),
    "analyses/ghn_cifar10/run.py": Case(
        ["--data-dir", "{cifar10}", "--steps", "2", "--eval-at", "1,2", "--meta-batch", "1", "--widths", "16",
         "--batch-size", "16", "--archs", "2", "--max-images", "32", "--device", "cpu", "--out", "{out}"],
        ["held-out top-1 %", "archlab GHN-2"],
        ["curves.csv", "heldout.csv", "curves.png", "summary.md", "manifest.json"], slow=True),
    "analyses/shift/run.py": Case(
        ["--ckpt", "{ckpt}", "--ref-size", "60", "--per-split", "3", "--accuracy-per-split", "2", "--models", "resnet18",
         "--max-images", "32", "--device", "cpu", "--out", "{out}"],
        ["AUROC", "torchvision models", "Spearman", "| deep | 3 |",  # AUROC on 3 per split,
         "| mean+sum | test+ood | knn | 10 |"],  # the Spearman on the 2 per split with an accuracy
        ["summary.md", "auroc.csv", "torchvision.csv", "correlation.csv", "shift.png", "map.png"], slow=True),
    "analyses/search/run.py": Case(
        ["--ckpt", "{ckpt}", "--budget", "3", "--epochs", "1", "--ft-steps", "2", "--batch-size", "16",
         "--max-eval-images", "32", "--seeds", "0", "--device", "cpu", "--ft-post", "orth", "--out", "{out}"],
        ["best fully-trained top-1", "Kendall τ", "Target", "ghn-ft post-processing orth"],
        ["runs.csv", "retrained.csv", "tau.csv", "summary.md", "best.png", "proxy_vs_truth.png",
         "random_proxies.csv"], slow=True),
    "analyses/ranking/run.py": Case(
        ["--ckpt", "{ckpt}", "--test", "6", "--val", "10", "--epochs", "1", "--ft-steps", "1,2",
         "--cost-candidates", "3", "--max-eval-images", "32", "--ft-post", "orth", "--out", "{out}"],
        ["Kendall τ", "`ghn` τ", "`ghn-loss` τ", "(post-processing orth) beats", "Properties from graph embeddings"],
        ["ranking.csv", "correlations.csv", "ft_steps.png", "stability.csv", "cost.csv", "properties.csv",
         "embeddings.parquet", "property_prediction.csv", "property_prediction.png", "summary.md"], slow=True),
    "analyses/init_diversity/run.py": Case(
        ["--ckpt", "{ckpt}", "--archs", "2", "--ft-steps", "2", "--inits", "random,noise:0.5,orth",
         "--truth", "analyses/ranking/results/ranking.csv", "--out", "{out}"],
        ["layer cosine", "| noise:0.5 |", "| orth |", "Kendall τ"], ["diversity.csv", "summary.md", "diversity.png"]),
    "analyses/finetune_init/run.py": Case(
        ["--ckpt", "{ckpt}", "--dataset", "digits", "--models", "resnet18", "--steps", "1",
         "--n-per-class", "1", "--max-test-images", "16", "--device", "cpu", "--out", "{out}"],
        ["top1_final", "ghn+noise"],
        ["results.csv", "results.md", "curves_resnet18.png", "runs/resnet18-ghn/curve.csv"], slow=True),
}


def _params():
    for script in SCRIPTS:
        case = CASES.get(script)
        marks = [pytest.mark.slow] if case is not None and case.slow else []
        yield pytest.param(script, marks=marks, id=script)


def _head() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def _tiny_ckpt(path: Path) -> Path:
    from archlab.data import dataset_info
    from archlab.ghn import GHNConfig, build_ghn, save_ghn

    info = dataset_info("digits")
    save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=info.num_classes,
                                        image_size=info.image_size, hid=8)), path)
    return path


def test_every_script_has_a_case():
    assert SCRIPTS, "no scripts found under benchmarks/ or analyses/*/"
    assert not sorted(set(CASES) - set(SCRIPTS)), "CASES names scripts that no longer exist"


@pytest.mark.parametrize("script", list(_params()))
def test_script_runs(script: str, tmp_path: Path, request: pytest.FixtureRequest):
    case = CASES.get(script)
    if case is None:
        pytest.fail(f"{script} has no minimal arguments in CASES of {Path(__file__).name}: add a row "
                    "(and, if it cannot run small, a small-run option to the script)")
    out = tmp_path / "out"
    subs = {"{out}": str(out)}
    if any("{ckpt}" in a for a in case.args):
        subs["{ckpt}"] = str(_tiny_ckpt(tmp_path / "ghn.pt"))
    if "{cifar10}" in case.args:
        subs["{cifar10}"] = str(request.getfixturevalue("cifar10_tarball"))
    args = [subs.get(a, a) for a in case.args]
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    r = subprocess.run([sys.executable, script, *args], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=TIMEOUT_S)
    log = f"$ python {script} {' '.join(args)}\n--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-4000:]}"
    assert r.returncode == 0, log
    for text in case.printed:
        assert text in r.stdout, f"{text!r} not printed\n{log}"
    for name in case.files:
        assert (out / name).is_file(), f"{name} not written\n{log}"
    if script.startswith("analyses/"):
        manifest = out / "manifest.json"
        assert manifest.is_file(), f"no manifest.json in --out\n{log}"
        m = json.loads(manifest.read_text())
        head = _head()
        assert m["git"]["commit"] == head, (m["git"], head)
        if head is not None:
            assert isinstance(m["git"]["dirty"], bool)
        assert script in m["command"]
        for key in ("started", "finished", "seeds"):
            assert m[key], key
        for key in ("hostname", "platform", "cpu_count", "torch", "device"):
            assert m["machine"][key], key
        assert not m.get("reconstructed", False)
        assert all((out / name).is_file() for name in m["outputs"]), m["outputs"]
        assert not [name for name in m["outputs"] if name.split("/")[0] == "cache"], "git-ignored cache listed"
