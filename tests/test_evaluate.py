"""Evaluation of predicted parameters (with baselines) and the small-image adaptation.
Real torchvision models, real digits test images, a real (untrained, tiny) GHN checkpoint."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torchvision

from archlab.engine import adapt_to_small_images, evaluate, format_summary, summarize
from archlab.errors import UsageError

FAMILIES = ["resnet18", "convnext_tiny", "vit_b_16"] + [
    pytest.param(n, marks=pytest.mark.slow)
    for n in ("densenet121", "mobilenet_v3_small", "efficientnet_b0", "regnet_x_400mf", "swin_t",
              "shufflenet_v2_x0_5", "alexnet")]


@pytest.mark.parametrize("name", FAMILIES)
def test_adapt_to_small_images_runs_on_32px(name):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=10)
    adapt_to_small_images(model, 32)
    assert model.archlab_adaptations, f"{name}: nothing adapted"
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_stem_is_3x3_stride1_without_maxpool():
    m = adapt_to_small_images(torchvision.models.resnet18(num_classes=10))
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert isinstance(m.maxpool, torch.nn.Identity)
    # 32 px keeps a 4x4 map before pooling (32 -> /8 over the three strided stages)
    feats = torch.nn.Sequential(*list(m.children())[:-2])
    assert feats(torch.randn(1, 3, 32, 32)).shape[-1] == 4


@pytest.fixture(scope="module")
def tiny_ckpts(tmp_path_factory):
    from archlab.ghn import GHNConfig, build_ghn, save_ghn

    d = tmp_path_factory.mktemp("ghn")
    torch.manual_seed(0)
    save_ghn(build_ghn(GHNConfig.preset("ghn2", num_classes=10, image_size=32, hid=8)), d / "g.pt")
    save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=32, hid=8)), d / "m.pt")
    return d / "g.pt", d / "m.pt"


def _split_eval(ghn, baseline=None):
    return evaluate(ghn, split="test", limit=2, max_images=64, width=8, baseline=baseline,
                    progress=False, device="cpu")


def test_evaluate_split_without_baseline_says_so(tiny_ckpts):
    df = _split_eval(tiny_ckpts[0])
    assert set(df["method"]) == {"ghn", "random"} and df["id"].nunique() == 2
    assert (df["n_images"] == 64).all()
    assert df["top1"].between(0, 100).all() and (df["top5"] >= df["top1"]).all()
    assert any("batch statistics" in n for n in df.attrs["notes"])
    assert any("not provided" in n for n in df.attrs["notes"])
    summary = summarize(df)
    assert list(summary["method"]) == ["ghn", "random", "mlp-ghn"]
    assert summary.set_index("method").loc["mlp-ghn", "status"] == "not provided"
    assert "not provided" in format_summary(summary)


@pytest.mark.slow
def test_evaluate_split_with_mlp_baseline(tiny_ckpts):
    ghn, mlp = tiny_ckpts
    df, df2 = _split_eval(ghn), _split_eval(ghn, mlp)
    s2 = summarize(df2).set_index("method")
    assert s2.loc["mlp-ghn", "n_archs"] == 2 and s2.loc["ghn", "top1_se"] >= 0
    # random-init rows do not depend on which GHN is evaluated
    assert df.query("method == 'random'")["top1"].tolist() == \
        df2.query("method == 'random'")["top1"].tolist()


def test_evaluate_cli_models_json(tiny_ckpts, tmp_path, capsys):
    from archlab.cli import main

    ghn, _ = tiny_ckpts
    out = tmp_path / "eval.json"
    rc = main(["evaluate", "--ckpt", str(ghn), "--models", "resnet18", "--max-images", "64",
               "--json", str(out), "--no-progress", "--device", "cpu"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "± " in text and "batch statistics" in text and "not provided" in text
    doc = json.loads(out.read_text())
    assert {r["method"] for r in doc["rows"]} == {"ghn", "random"}
    assert [a["method"] for a in doc["aggregate"]] == ["ghn", "random", "mlp-ghn"]
    assert all(math.isfinite(r["top1"]) for r in doc["rows"])


def test_evaluate_cli_usage_errors(tmp_path, capsys):
    from archlab.cli import main

    assert main(["evaluate", "--ckpt", str(tmp_path / "nope.pt"), "--split", "test"]) == 2
    assert "not found" in capsys.readouterr().err


def test_max_images_is_a_fixed_random_subset_not_a_prefix():
    from archlab.data import load_dataset
    from archlab.engine._evaluate import fixed_subset

    test = load_dataset("digits", split="test")
    a, b = fixed_subset(test, 100, seed=0), fixed_subset(test, 100, seed=0)
    assert len(a) == 100 and a.indices == b.indices and a.indices != list(range(100))
    assert len({int(test.labels[i]) for i in a.indices}) == 10


def test_accuracy_scores_in_eval_mode_and_gives_the_modes_back():
    """A DeepNets-1M candidate with a two-layer head has Dropout(0.5): accuracy must not drop
    units (same figure every call, the figure of eval mode) and must leave every module's mode."""
    from archlab.data import load_dataset, make_loader
    from archlab.engine import accuracy, from_split
    from archlab.ghn import use_batch_stats

    cand = next(c for c in from_split("test", limit=20)
                if any(isinstance(m, torch.nn.Dropout) for m in c.build(10, 16).modules()))
    torch.manual_seed(0)
    model = use_batch_stats(cand.build(10, 16))
    loader = make_loader(load_dataset("digits", split="val"), 128, shuffle=False)
    frozen = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    model.train()
    frozen.eval()  # a module the caller froze in eval mode stays so; the others stay in train mode
    first, second = accuracy(model, loader, "cpu")[0], accuracy(model, loader, "cpu")[0]
    assert model.training and not frozen.training
    assert all(m.training for m in model.modules() if m is not frozen)
    with torch.no_grad():
        model.eval()
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
        n = sum(len(y) for _, y in loader)
    assert first == second == pytest.approx(100.0 * correct / n)
    model.train()  # with dropout on, the same network scores differently from call to call
    with torch.no_grad():
        noisy = {sum(int((model(x).argmax(1) == y).sum()) for x, y in loader) for _ in range(5)}
    assert len(noisy) > 1


def test_scores_gives_the_mean_cross_entropy_and_refuses_labels_past_the_outputs():
    """Zero weights give uniform logits: the loss is log(10) whatever the labels; the top-1 is that
    of :func:`accuracy`; a label past the model's outputs is named, not an opaque index error."""
    from archlab.engine import accuracy
    from archlab.engine._evaluate import scores

    x = torch.randn(20, 3, 4, 4)
    y = torch.arange(20) % 10
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10))
    torch.nn.init.zeros_(model[1].weight)
    torch.nn.init.zeros_(model[1].bias)
    n, loss = scores(model, [(x[:8], y[:8]), (x[8:], y[8:])], "cpu")[2:]
    assert n == 20 and loss == pytest.approx(math.log(10))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10))
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(x), y).item()
    top1, top5, n, loss = scores(model, [(x, y)], "cpu")
    assert loss == pytest.approx(expected, rel=1e-6) and (top1, top5, n) == accuracy(model, [(x, y)], "cpu")
    small = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 5))
    with pytest.raises(UsageError, match="5 outputs but a label is 9"):
        scores(small, [(x, y)], "cpu")
