"""`archlab predict` / `archlab embed` with a saved GHN checkpoint."""

from __future__ import annotations

import numpy as np
import torch
import torchvision

from archlab.cli import main
from archlab.ghn import GHNConfig, build_ghn, load_ghn, save_ghn


def test_predict_and_embed_cli(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_ghn(build_ghn(GHNConfig.preset("ghn2", num_classes=10, image_size=32)), tmp_path / "g.pt")
    out = tmp_path / "w.pt"
    assert main(["predict", "--ckpt", str(ckpt), "--model", "resnet18", "--out", str(out), "--device", "cpu"]) == 0
    state = torch.load(out, weights_only=True)
    model = torchvision.models.resnet18(num_classes=10)
    expected = load_ghn(ckpt).predict_params([model])[0]
    assert state["fc.weight"].shape == (10, 512)
    for name, t in expected.items():
        assert torch.allclose(state[name], t, atol=1e-6), name
    emb = tmp_path / "e.npy"
    assert main(["embed", "--ckpt", str(ckpt), "--models", "resnet18,squeezenet1_0", "--out", str(emb)]) == 0
    assert np.load(emb).shape == (2, 32)


def test_cli_errors(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    assert main(["predict", "--ckpt", str(bad), "--model", "resnet18", "--out", str(tmp_path / "w.pt")]) == 2
    assert "not a readable torch checkpoint" in capsys.readouterr().err
    ckpt = save_ghn(build_ghn(GHNConfig.preset("mlp")), tmp_path / "g.pt")
    assert main(["predict", "--ckpt", str(ckpt), "--model", "nosuchnet", "--out", str(tmp_path / "w.pt")]) == 2
    assert "nosuchnet" in capsys.readouterr().err
    assert not (tmp_path / "w.pt").exists()
