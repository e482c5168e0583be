"""The embedded digits dataset and the generic API (no external data needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from archlab.data import DATASETS, dataset_info, load_dataset, make_loader


def test_datasets_and_info():
    assert DATASETS == ("digits", "cifar10", "cifar100", "imagenet")
    for name in DATASETS:
        info = dataset_info(name)
        assert info.name == name and len(info.mean) == 3 and len(info.std) == 3
    assert dataset_info("cifar10").num_classes == 10
    assert dataset_info("CIFAR-100").num_classes == 100
    assert dataset_info("imagenet").image_size == 224
    assert dataset_info("digits").image_size == 16


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_digits_items(split):
    ds = load_dataset("digits", split=split)
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    assert isinstance(y, int) and 0 <= y < 10
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])  # grey replicated to 3 channels
    assert ds.classes == [str(d) for d in range(10)]
    assert "load_digits" in ds.source


def test_digits_splits_disjoint_cover_and_stratified():
    parts = {s: load_dataset("digits", split=s) for s in ("train", "val", "test")}
    sizes = {s: len(d) for s, d in parts.items()}
    assert sum(sizes.values()) == 1797
    assert 0.18 < sizes["test"] / 1797 < 0.22
    assert 0.08 < sizes["val"] / (sizes["train"] + sizes["val"]) < 0.12
    idx = {s: set(d.indices.tolist()) for s, d in parts.items()}
    assert not idx["train"] & idx["val"] and not idx["train"] & idx["test"]
    assert not idx["val"] & idx["test"]
    assert idx["train"] | idx["val"] | idx["test"] == set(range(1797))
    for d in parts.values():  # every class present in every split
        assert set(d.targets) == set(range(10))


def test_digits_pixels_match_sklearn():
    from sklearn.datasets import load_digits

    raw = load_digits()
    ds = load_dataset("digits", split="test", augment=False)
    i = int(ds.indices[3])
    assert ds[3][1] == raw.target[i]
    # the 16x16 image is the 8x8 one upsampled: 2x2 block means track the original
    img = ds.images[3, 0].float() / 255
    blocks = img.reshape(8, 2, 8, 2).mean(dim=(1, 3)).numpy()
    assert np.corrcoef(blocks.ravel(), raw.images[i].ravel())[0, 1] > 0.95


def test_digits_deterministic_and_seeded():
    a = load_dataset("digits", split="val", seed=0)
    b = load_dataset("digits", split="val", seed=0)
    c = load_dataset("digits", split="val", seed=1)
    assert np.array_equal(a.indices, b.indices)
    assert torch.equal(a.images, b.images)
    assert not np.array_equal(a.indices, c.indices)
    # the test split is fixed whatever the seed
    t0 = load_dataset("digits", split="test", seed=0)
    t1 = load_dataset("digits", split="test", seed=5)
    assert np.array_equal(t0.indices, t1.indices)


def test_digits_normalised_and_augment():
    ds = load_dataset("digits", split="train", augment=False)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    assert abs(float(x.mean())) < 0.1 and 0.85 < float(x.std()) < 1.15
    torch.manual_seed(0)
    aug = load_dataset("digits", split="train")  # augment defaults on for train
    outs = [aug[0][0] for _ in range(8)]
    assert all(o.shape == (3, 16, 16) for o in outs)
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    ev = load_dataset("digits", split="test")  # off for test
    assert torch.equal(ev[0][0], ev[0][0])


def test_n_per_class():
    ds = load_dataset("digits", split="train", n_per_class=20)
    assert len(ds) == 200
    assert np.bincount(ds.targets).tolist() == [20] * 10
    again = load_dataset("digits", split="train", n_per_class=20)
    assert np.array_equal(ds.indices, again.indices)
    val = load_dataset("digits", split="val")
    assert not set(ds.indices.tolist()) & set(val.indices.tolist())
    with pytest.raises(ValueError, match="n_per_class=1000 but class"):
        load_dataset("digits", split="val", n_per_class=1000)


def test_make_loader_deterministic():
    ds = load_dataset("digits", split="train", augment=False)

    def order(seed):
        return torch.cat([y for _, y in make_loader(ds, 64, shuffle=True, seed=seed)])

    a, b, c = order(0), order(0), order(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert sorted(a.tolist()) == sorted(ds.targets)
    x, y = next(iter(make_loader(ds, 32, shuffle=False)))
    assert x.shape == (32, 3, 16, 16) and y.dtype == torch.int64
    assert len(make_loader(ds, 100, shuffle=False, drop_last=True)) == len(ds) // 100


def test_make_loader_with_workers_is_deterministic():
    ds = load_dataset("digits", split="train", n_per_class=10)  # augmented

    def batches():
        return [x for x, _ in make_loader(ds, 50, shuffle=True, seed=3, num_workers=2)]

    a, b = batches(), batches()
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


def test_api_errors():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; choose from digits"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="unknown split 'tset'"):
        load_dataset("digits", split="tset")
    with pytest.raises(ValueError, match="'cifar10' needs data_dir"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="'imagenet' needs data_dir"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("digits", split="val", val_fraction=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(load_dataset("digits", split="test"), 0, shuffle=False)
