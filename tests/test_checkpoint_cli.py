"""`archlab predict` / `archlab embed` with a saved GHN checkpoint."""

from __future__ import annotations

import numpy as np
import torch
import torchvision

from archlab.analysis import embedding_matrix, read_embeddings
from archlab.cli import main
from archlab.engine import adapt_to_small_images
from archlab.ghn import GHNConfig, build_ghn, fingerprint, load_ghn, save_ghn


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
    emb = tmp_path / "e.parquet"
    assert main(["embed", "--ckpt", str(ckpt), "--models", "resnet18,squeezenet1_0", "--out", str(emb)]) == 0
    df = read_embeddings(emb)
    assert df["id"].tolist() == ["resnet18", "squeezenet1_0"] and set(df["source"]) == {"torchvision"}
    assert embedding_matrix(df).shape == (2, 32)
    ghn = load_ghn(ckpt)
    assert df.attrs["archlab"]["ghn_fingerprint"] == fingerprint(ghn)
    # the candidate is built as evaluate builds it: stem adapted to the GHN's 32-px images
    direct = ghn.embed([adapt_to_small_images(torchvision.models.squeezenet1_0(num_classes=10), 32)])
    assert np.allclose(embedding_matrix(df)[1], direct[0], atol=1e-5)
    adapted = adapt_to_small_images(torchvision.models.resnet18(num_classes=10), 32)
    assert df.loc[0, "params"] == sum(p.numel() for p in adapted.parameters())


def test_cli_errors(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    assert main(["predict", "--ckpt", str(bad), "--model", "resnet18", "--out", str(tmp_path / "w.pt")]) == 2
    assert "not a readable torch checkpoint" in capsys.readouterr().err
    ckpt = save_ghn(build_ghn(GHNConfig.preset("mlp")), tmp_path / "g.pt")
    assert main(["predict", "--ckpt", str(ckpt), "--model", "nosuchnet", "--out", str(tmp_path / "w.pt")]) == 2
    assert "nosuchnet" in capsys.readouterr().err
    assert not (tmp_path / "w.pt").exists()
