"""Post-processing of predicted parameters and fine-tuning from them (real digits data)."""

from __future__ import annotations

import csv

import pytest
import torch
import torchvision

from archlab.engine import adapt_to_small_images, orthogonalize, postprocess, weight_layers


def _resnet():
    torch.manual_seed(0)
    return adapt_to_small_images(torchvision.models.resnet18(num_classes=10))


def _space_net():
    from archlab.space import build_network, load_split

    torch.manual_seed(0)
    return build_network(load_split("test")[0], 10, input="cifar", C=8, fc_dim=16)


@pytest.mark.parametrize(("make", "method"), [
    (_resnet, "noise"), (_space_net, "noise"), (_space_net, "orth"),
    pytest.param(_resnet, "orth", marks=pytest.mark.slow)])
def test_postprocess_never_touches_classifier(make, method):
    model = make()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cls_name = weight_layers(model)[-1][0]
    changed = postprocess(model, method, from_layer=0, seed=0)
    after = model.state_dict()
    assert changed and f"{cls_name}.weight" not in changed
    for k in before:
        if k.startswith(cls_name + "."):
            assert torch.equal(before[k], after[k]), k
    assert not torch.equal(before[changed[0]], after[changed[0]])


def test_postprocess_from_layer_and_scales():
    model = _resnet()
    layers = weight_layers(model)
    before = {n: m.weight.detach().clone() for n, m in layers}
    changed = postprocess(model, "noise", from_layer=5, eps=0.1, seed=1)
    names = [n for n, _ in layers]
    assert changed == [f"{n}.weight" for n in names[5:-1]]
    for n, m in layers[:5]:
        assert torch.equal(before[n], m.weight)
    n, m = layers[7]
    rel = ((m.weight - before[n]).std() / before[n].std()).detach()
    assert 0.08 < float(rel) < 0.12  # eps * std(w) noise

    model = _space_net()
    k = len(weight_layers(model)) - 3
    n, m = weight_layers(model)[k]
    w0 = m.weight.detach().clone()
    postprocess(model, "orth", from_layer=k, seed=0)
    w = m.weight.detach()
    assert float(w.std()) == pytest.approx(float(w0.std()), rel=1e-4)
    mat = orthogonalize(w0).reshape(w0.shape[0], -1)
    gram = mat @ mat.t() if mat.shape[0] <= mat.shape[1] else mat.t() @ mat
    assert torch.allclose(gram, torch.eye(gram.shape[0]), atol=1e-4)


def test_postprocess_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown post-processing 'nois'"):
        postprocess(_resnet(), "nois")


def test_finetune_cli_writes_curves(tmp_path, capsys):
    from archlab.cli import main
    from archlab.ghn import GHNConfig, build_ghn, save_ghn

    torch.manual_seed(0)
    ckpt = tmp_path / "g.pt"
    save_ghn(build_ghn(GHNConfig.preset("ghn2", num_classes=10, image_size=32, hid=8)), ckpt)
    out = tmp_path / "ft"
    rc = main(["finetune", "--model", "resnet18", "--init", "ghn", "--ckpt", str(ckpt),
               "--post", "noise", "--from-layer", "2", "--steps", "2", "--n-per-class", "4",
               "--batch-size", "20", "--max-test-images", "64", "--out", str(out),
               "--no-progress", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    with open(out / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 2]
    assert (out / "curve.png").stat().st_size > 10_000 and (out / "summary.json").exists()
    assert main(["finetune", "--model", "resnet18", "--init", "random", "--post", "orth",
                 "--steps", "1", "--out", str(out)]) == 2
