"""Published GHN checkpoints (ppuda GHN-2/MLP, ghn3 GHN-3 torch and joblib files).

The files are written by archlab itself in the published layouts (``save_published``); the
equivalence with the reference code was checked outside the project (README, "Published GHNs").
"""

from __future__ import annotations

import pickle

import pytest
import torch
import torchvision

from archlab.errors import UsageError
from archlab.ghn import (
    CheckpointError,
    GHNConfig,
    build_ghn,
    download_published,
    fingerprint,
    load_ghn,
)
from archlab.ghn._published import save_published
from archlab.graph import build_graph

CASES = [("ghn2", "ppuda", "ppuda"), ("mlp", "ppuda", "ppuda"), ("ghn3-t", "ghn3", "ghn3"),
         ("ghn3-t", "ghn3-joblib", "ghn3")]


def _ghn(preset: str):
    torch.manual_seed(0)
    return build_ghn(GHNConfig.preset(preset, num_classes=10, image_size=32))


@pytest.mark.parametrize("preset,layout,reference", CASES)
def test_published_layouts_load_with_their_config(tmp_path, preset, layout, reference):
    ghn = _ghn(preset)
    path = save_published(ghn, tmp_path / f"{preset}.pt", layout)
    loaded = load_ghn(path)
    assert loaded.config == ghn.config.replace(reference=reference)
    assert fingerprint(loaded) != fingerprint(ghn)  # the config differs (reference) ...
    state = loaded.state_dict()
    assert all(torch.equal(state[k], v) for k, v in ghn.state_dict().items())  # ... not the weights
    origin = "ppuda" if layout == "ppuda" else "ghn3"
    assert loaded.source.startswith(f"{preset}.pt ({origin} {ghn.config.kind}")
    assert ("config from ghn3-t" in loaded.source) == (layout == "ghn3-joblib")


def test_files_are_in_the_published_layouts(tmp_path):
    raw = torch.load(save_published(_ghn("ghn2"), tmp_path / "a.pt", "ppuda"), weights_only=True)
    assert set(raw) == {"state_dict", "config", "epoch"}
    assert raw["config"] == {"max_shape": (64, 64, 11, 11), "num_classes": 10, "hypernet": "gatedgnn",
                             "decoder": "conv", "weight_norm": True, "ve": True, "layernorm": True, "hid": 32}
    sd = raw["state_dict"]
    assert sd["decoder.conv.0.weight"].shape == (256, 128, 1, 1)  # ppuda's 1x1 convolutions
    assert {"embed.weight", "gnn.gru.weight_ih", "gnn.mlp_ve.fc.0.weight", "bias_class.1.weight"} <= set(sd)
    joblib = pytest.importorskip("joblib")
    sd3 = joblib.load(save_published(_ghn("ghn3-t"), tmp_path / "b.pt", "ghn3-joblib"))
    assert {"gnn.0.attn.to_qkv.weight", "gnn.2.ff.net.3.weight", "gnn.0.centrality_embed_in.weight",
            "gnn.0.attn.edge_embed.embed.weight", "decoder.conv.2.weight"} <= set(sd3)


def test_joblib_written_by_joblib_and_compressed(tmp_path):
    joblib = pytest.importorskip("joblib")
    ghn = build_ghn(GHNConfig(kind="ghn3", hid=16, layers=1, heads=8, max_shape=(16, 16, 11, 11)))
    sd = torch.load(save_published(ghn, tmp_path / "t.pt", "ghn3"), weights_only=True)["state_dict"]
    for compress in (0, 3, ("gzip", 3), ("bz2", 1), ("lzma", 1), ("xz", 1)):
        path = tmp_path / f"j{compress}.pt"
        joblib.dump(sd, path, compress=compress)
        loaded = load_ghn(path).state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in ghn.state_dict().items()), compress


class _Boom:
    def __reduce__(self):
        import os
        return (os.system, ("touch pwned",))


def test_code_in_pickles_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sd = dict(torch.load(save_published(_ghn("ghn3-t"), tmp_path / "t.pt", "ghn3"), weights_only=True)["state_dict"])
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({**sd, "x": _Boom()}))
    with pytest.raises(CheckpointError, match=r"evil.pt: .*os.system|evil.pt: .*posix.system") as e:
        load_ghn(path)
    assert "joblib.load" in str(e.value) and not (tmp_path / "pwned").exists()
    np = pytest.importorskip("numpy")
    joblib = pytest.importorskip("joblib")
    joblib.dump({k: np.asarray(v) for k, v in sd.items()}, tmp_path / "np.pt")
    with pytest.raises(CheckpointError, match="numpy.*torch.save"):
        load_ghn(tmp_path / "np.pt")


def test_unmappable_published_files(tmp_path):
    raw = torch.load(save_published(_ghn("ghn2"), tmp_path / "a.pt", "ppuda"), weights_only=True)
    torch.save({**raw, "config": {**raw["config"], "decoder": "mlp"}}, tmp_path / "mlpdec.pt")
    with pytest.raises(CheckpointError, match="mlpdec.pt: .*decoder='mlp' is not supported"):
        load_ghn(tmp_path / "mlpdec.pt")
    torch.save(raw["state_dict"], tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="bare.pt: .*no config record"):
        load_ghn(tmp_path / "bare.pt")
    sd = dict(raw["state_dict"])
    sd["gnn.extra.weight"] = torch.zeros(2)
    torch.save({**raw, "state_dict": sd}, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match=r"extra.pt: .*unexpected weights \['gnn.extra.weight'\]"):
        load_ghn(tmp_path / "extra.pt")


def test_published_graphs_drop_what_the_reference_does_not_model():
    convnext = torchvision.models.convnext_tiny()
    g = build_graph(convnext, mode="ghn2", published=True)
    own = build_graph(convnext, mode="ghn2")
    assert len(g.meta["not_modelled"]) == 18 and all(p.endswith("layer_scale") for p in g.meta["not_modelled"])
    assert (g.num_nodes, g.num_edges) == (own.num_nodes - 18, own.num_edges - 18) == (161, 178)
    assert g.unused == []
    mnv3 = torchvision.models.mobilenet_v3_large()
    g3 = build_graph(mnv3, mode="ghn3", published=True)
    counts = g3.op_counts()
    assert counts["cse"] == 8 and counts["glob_avg"] == 1  # the gates' global means are dropped
    vit = torchvision.models.vit_b_16()
    gv = build_graph(vit, mode="ghn2", published=True)
    assert gv.meta["not_modelled"] == ["class_token"] and "msa" not in gv.op_counts()
    assert any("ppuda cannot build graphs of VisionTransformer" in n for n in gv.meta["notes"])


def test_published_ghn3_predicts_as_ghn3_does(tmp_path):
    ghn = load_ghn(save_published(_ghn("ghn3-t"), tmp_path / "g.pt", "ghn3-joblib"))
    torch.manual_seed(1)
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                               hidden_dim=64, mlp_dim=128, num_classes=10)
    before = {n: p.detach().clone() for n, p in vit.named_parameters()}
    ghn.predict(vit)
    after = dict(vit.named_parameters())
    assert torch.equal(after["class_token"], before["class_token"])  # not modelled: kept
    pos = after["encoder.pos_embedding"]
    assert torch.equal(pos[:, 0], before["encoder.pos_embedding"][:, 0])  # class-token position kept
    assert not torch.equal(pos[:, 1:], before["encoder.pos_embedding"][:, 1:])
    # the 4x4 predicted grid fills rows 1..16, equal to the differentiable forward's
    fwd = ghn([ghn.graph_of(vit)])[0]["encoder.pos_embedding"]
    assert torch.allclose(fwd[:, 1:], pos[:, 1:].detach(), atol=1e-6) and not fwd[:, 0].any()
    changed = [n for n in before if not torch.equal(before[n], after[n])]
    assert len(changed) == len(before) - 1


def test_download_only_known_names_and_never_again(tmp_path):
    with pytest.raises(UsageError, match="unknown published checkpoint 'ghn9.pt'; choose from"):
        download_published("ghn9.pt", tmp_path)
    have = save_published(_ghn("ghn2"), tmp_path / "ghn2_cifar10.pt", "ppuda")
    before = have.read_bytes()
    assert download_published("ghn2_cifar10.pt", tmp_path) == have and have.read_bytes() == before  # offline


def _cli(capsys, *argv: str) -> tuple[int, str]:
    from archlab.cli import main

    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def test_ckpt_download_flag_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ARCHLAB_GHN_MIRROR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    out = ("--model", "resnet18", "--out", tmp_path / "w.pt")
    rc, err = _cli(capsys, "predict", "--ckpt", "ckpts/ghn3tm8.pt", *out)  # known name, no --download
    assert rc == 2 and "--ckpt 'ckpts/ghn3tm8.pt' not found; pass --download to fetch it (online only), " \
        "or get it from https://huggingface.co/SamsungSAILMontreal/ghn3/resolve/main/ghn3tm8.pt" in err
    rc, err = _cli(capsys, "embed", "--ckpt", "mlp_cifar10.pt", "--models", "resnet18", "--out", "e.parquet")
    assert rc == 2 and "(nor in " in err and "ppuda/main/checkpoints/mlp_cifar10.pt" in err
    rc, err = _cli(capsys, "predict", "--ckpt", "ghn9.pt", "--download", *out)  # unknown name
    assert rc == 2 and "--ckpt 'ghn9.pt' not found, and --download fetches only the published GHNs: " \
        "ghn2_cifar10.pt, ghn2_imagenet.pt, ghn3lm8.pt" in err
    monkeypatch.setenv("ARCHLAB_GHN_MIRROR", "http://127.0.0.1:9/ghns")  # nothing listens there
    rc, err = _cli(capsys, "predict", "--ckpt", "ckpts/ghn3tm8.pt", "--download", *out)
    assert rc == 2 and "could not download http://127.0.0.1:9/ghns/ghn3tm8.pt (" in err
    assert "Traceback" not in err and not (tmp_path / "ckpts").exists() and not (tmp_path / "w.pt").exists()


def test_ckpt_download_from_a_mirror(tmp_path, monkeypatch, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    save_published(_ghn("mlp"), mirror / "mlp_cifar10.pt", "ppuda")
    monkeypatch.setenv("ARCHLAB_GHN_MIRROR", mirror.as_uri())
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    rc, err = _cli(capsys, "predict", "--ckpt", "ckpts/mlp_cifar10.pt", "--download", "--model", "resnet18",
                   "--out", "a.pt")  # a path: into its folder
    assert rc == 0 and f"downloading {mirror.as_uri()}/mlp_cifar10.pt into ckpts" in err
    assert (tmp_path / "ckpts/mlp_cifar10.pt").read_bytes() == (mirror / "mlp_cifar10.pt").read_bytes()
    rc, _ = _cli(capsys, "predict", "--ckpt", "mlp_cifar10.pt", "--download", "--model", "resnet18",
                 "--out", "b.pt")  # a bare name: into ~/.cache/archlab/ghns/
    cached = tmp_path / "home/.cache/archlab/ghns/mlp_cifar10.pt"
    assert rc == 0 and cached.is_file() and not (tmp_path / "mlp_cifar10.pt").exists()
    monkeypatch.delenv("ARCHLAB_GHN_MIRROR")
    (mirror / "mlp_cifar10.pt").unlink()  # offline from here on: the cached copy is used
    rc, _ = _cli(capsys, "predict", "--ckpt", "mlp_cifar10.pt", "--model", "resnet18", "--out", "c.pt")
    assert rc == 0
    a, c = (torch.load(tmp_path / n, weights_only=True) for n in ("a.pt", "c.pt"))
    assert a.keys() == c.keys() and all(torch.equal(a[k], c[k]) for k in a)
