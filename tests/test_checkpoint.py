"""GHN checkpoints: round trip, foreign/corrupt files, atomic writes."""

from __future__ import annotations

import pickle

import pytest
import torch
import torchvision

from archlab.ghn import FORMAT, CheckpointError, GHNConfig, build_ghn, load_ghn, save_ghn
from archlab.graph import OP_TYPES, build_graph


@pytest.fixture(scope="module")
def graph():
    return build_graph(torchvision.models.resnet18(num_classes=10))


@pytest.mark.parametrize("preset", ["ghn2", "ghn3-t", "mlp"])
def test_round_trip_same_predictions(tmp_path, graph, preset):
    torch.manual_seed(0)
    ghn = build_ghn(GHNConfig.preset(preset, num_classes=10, image_size=32))
    path = save_ghn(ghn, tmp_path / "ghn.pt", extra={"epoch": 3, "acc": 0.5})
    loaded = load_ghn(path)
    assert loaded.config == ghn.config
    with torch.no_grad():
        a, b = ghn([graph])[0], loaded([graph])[0]
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["op_types"] == list(OP_TYPES)
    assert raw["extra"] == {"epoch": 3, "acc": 0.5} and raw["image_size"] == 32
    assert raw["config"]["kind"] == ghn.config.kind and isinstance(raw["archlab_version"], str)


def _save_raw(path, obj):
    torch.save(obj, path)
    return path


def test_foreign_and_corrupt_files(tmp_path):
    ghn = build_ghn(GHNConfig.preset("ghn2"))
    good = save_ghn(ghn, tmp_path / "good.pt")
    data = good.read_bytes()

    cases = {
        "truncated.pt": lambda p: p.write_bytes(data[: len(data) // 2]),
        "text.pt": lambda p: p.write_text("hello, not a checkpoint\n"),
        "empty.pt": lambda p: p.write_bytes(b""),
        "state_dict.pt": lambda p: _save_raw(p, ghn.state_dict()),
        "ppuda.pt": lambda p: _save_raw(p, {"config": {"hid": 32, "max_shape": [64, 64, 11, 11]},
                                            "state_dict": {"gnn.gru.weight_ih": torch.zeros(3)},
                                            "epoch": 300}),
        "list.pt": lambda p: _save_raw(p, [1, 2, 3]),
        "pickle.pt": lambda p: p.write_bytes(pickle.dumps({"format": FORMAT, "x": object()})),
    }
    expected = {"truncated.pt": "not a readable torch checkpoint", "text.pt": "not a readable",
                "empty.pt": "not a readable", "state_dict.pt": "plain state_dict",
                "ppuda.pt": "GHN-2 \\(ppuda\\)", "list.pt": "expected a checkpoint dict",
                "pickle.pt": "not a readable"}
    for name, write in cases.items():
        p = tmp_path / name
        write(p)
        with pytest.raises(CheckpointError, match=expected[name]) as err:
            load_ghn(p)
        assert str(p) in str(err.value)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_ghn(tmp_path / "missing.pt")


def test_mismatched_contents(tmp_path):
    ghn = build_ghn(GHNConfig.preset("ghn2"))
    raw = torch.load(save_ghn(ghn, tmp_path / "a.pt"), weights_only=True)

    bad_ops = dict(raw, op_types=list(OP_TYPES)[::-1])
    with pytest.raises(CheckpointError, match="op vocabulary differs"):
        load_ghn(_save_raw(tmp_path / "ops.pt", bad_ops))

    bad_cfg = dict(raw, config=dict(raw["config"], hid=48))  # weights of hid 32
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_ghn(_save_raw(tmp_path / "cfg.pt", bad_cfg))

    sd = dict(raw["state_dict"])
    sd.pop("decoder.fc.weight")
    with pytest.raises(CheckpointError, match="missing weights \\['decoder.fc.weight'\\]"):
        load_ghn(_save_raw(tmp_path / "miss.pt", dict(raw, state_dict=sd)))

    with pytest.raises(CheckpointError, match="invalid GHN config"):
        load_ghn(_save_raw(tmp_path / "kind.pt", dict(raw, config=dict(raw["config"], kind="ghn9"))))

    with pytest.raises(CheckpointError, match="format 'archlab.ghn/0'"):
        load_ghn(_save_raw(tmp_path / "fmt.pt", dict(raw, format="archlab.ghn/0")))


def test_atomic_write_leaves_no_partial_file(tmp_path):
    ghn = build_ghn(GHNConfig.preset("mlp"))
    path = tmp_path / "ghn.pt"
    save_ghn(ghn, path, extra={"epoch": 1})
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - lambdas cannot be pickled; torch.save fails midway
        save_ghn(ghn, path, extra={"bad": lambda: 0})
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ghn.pt"]  # no temporary left behind
    fresh = tmp_path / "new.pt"
    with pytest.raises(Exception):  # noqa: B017
        save_ghn(ghn, fresh, extra={"bad": lambda: 0})
    assert not fresh.exists()
    assert load_ghn(path).config == ghn.config
