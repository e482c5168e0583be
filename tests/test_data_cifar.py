"""CIFAR-10 from real data: the JPEG ImageFolder tarball and python batches written from the
lossless PNG subset (fixtures in conftest.py)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from archlab.data import (
    CIFAR10_CLASSES,
    dataset_info,
    detect_cifar_layout,
    load_dataset,
    make_loader,
)

CIFAR10_NAMES = list(CIFAR10_CLASSES)


def _hwc(ds, i: int) -> np.ndarray:
    return ds.images[i].permute(1, 2, 0).numpy()


def _within_class_index(labels: np.ndarray, j: int) -> int:
    """Index of image j among the images of its class, in the original order (= NNNN)."""
    return int((labels[:j] == labels[j]).sum())


# --- python batches (torchvision layout), exact pixels -------------------------------------


def test_python_layout_detected_from_dir_or_parent(cifar10_python_root: Path):
    inner = cifar10_python_root / "cifar-10-batches-py"
    for d in (cifar10_python_root, inner):
        layout = detect_cifar_layout("cifar10", d)
        assert layout.kind == "python" and layout.root == inner


@pytest.mark.parametrize("split", ["train", "test"])
def test_python_batches_pixels_and_labels_exact(
    cifar10_python_root, cifar10_exact, cifar10_names, split
):
    ds = load_dataset("cifar10", cifar10_python_root, split=split, val_fraction=0.0,
                      augment=False)
    x, y = cifar10_exact[f"{split}_x"], cifar10_exact[f"{split}_y"]
    assert len(ds) == len(x) and "python batches" in ds.source
    assert ds.classes == cifar10_names
    assert np.array_equal(ds.images.permute(0, 2, 3, 1).numpy(), x)
    assert np.array_equal(ds.labels.numpy(), y)
    img, label = ds[7]
    info = dataset_info("cifar10")
    expect = (torch.from_numpy(x[7].copy()).permute(2, 0, 1).float() / 255
              - torch.tensor(info.mean).view(3, 1, 1)) / torch.tensor(info.std).view(3, 1, 1)
    assert label == int(y[7]) and torch.allclose(img, expect, atol=1e-6)


def test_python_batches_val_split(cifar10_python_root, cifar10_exact):
    tr = load_dataset("cifar10", cifar10_python_root, split="train")
    va = load_dataset("cifar10", cifar10_python_root, split="val")
    assert len(tr) + len(va) == 4000 and abs(len(va) - 400) <= 5  # 10% of each class, rounded
    assert not set(tr.indices.tolist()) & set(va.indices.tolist())
    assert np.array_equal(va.labels.numpy(), cifar10_exact["train_y"][va.indices])


def test_python_batches_wrong_label_names(cifar10_exact, write_python_batches, tmp_path):
    e = cifar10_exact
    names = CIFAR10_NAMES[:-1] + ["zebra"]
    write_python_batches(tmp_path / "cifar-10-batches-py", e["train_x"][:50], e["train_y"][:50],
                         e["test_x"][:10], e["test_y"][:10], names)
    with pytest.raises(ValueError, match="label names .*zebra.* are not the CIFAR-10 classes"):
        load_dataset("cifar10", tmp_path, split="test")


def test_python_batches_missing_batch_file(cifar10_python_root, tmp_path):
    broken = tmp_path / "cifar-10-batches-py"
    shutil.copytree(cifar10_python_root / "cifar-10-batches-py", broken)
    (broken / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="missing python-batch file .*data_batch_3"):
        load_dataset("cifar10", tmp_path, split="train")
    assert len(load_dataset("cifar10", tmp_path, split="test")) == 1000


# --- ImageFolder JPEG tree (the full dataset) ----------------------------------------------


def test_imagefolder_train_val_and_cache(cifar10_root: Path, cifar10_exact):
    start = time.perf_counter()
    full = load_dataset("cifar10", cifar10_root, split="train", val_fraction=0.0, augment=False)
    first = time.perf_counter() - start
    assert "ImageFolder" in full.source and str(cifar10_root) in full.source
    assert len(full) == 50000 and full.classes == list(CIFAR10_CLASSES)
    assert np.bincount(full.targets).tolist() == [5000] * 10
    caches = list((cifar10_root / ".archlab_cache").glob("cifar10-train-*.npz"))
    assert len(caches) == 1

    start = time.perf_counter()
    tr = load_dataset("cifar10", cifar10_root, split="train")
    second = time.perf_counter() - start
    va = load_dataset("cifar10", cifar10_root, split="val")
    print(f"first load {first:.1f}s, cached load {second:.1f}s")
    assert second < first
    assert len(tr) == 45000 and len(va) == 5000  # GHN-2's 45k/5k
    assert np.bincount(va.targets).tolist() == [500] * 10
    assert not set(tr.indices.tolist()) & set(va.indices.tolist())
    assert torch.equal(tr.images[:100], full.images[torch.from_numpy(tr.indices[:100])])

    # JPEG image of class c, NNNN = k is the exact image with within-class index k
    x, y = cifar10_exact["train_x"], cifar10_exact["train_y"]
    diffs = []
    for j in range(0, 4000, 20):
        pos = int(y[j]) * 5000 + _within_class_index(y, j)
        assert full.labels[pos] == y[j]
        diffs.append(np.abs(_hwc(full, pos).astype(float) - x[j]).mean())
    diffs = np.asarray(diffs) / 255
    assert diffs.max() < 15 / 255 and diffs.mean() < 8 / 255, (diffs.mean(), diffs.max())


def test_imagefolder_test_split_matches_exact(cifar10_root: Path, cifar10_exact):
    ds = load_dataset("cifar10", cifar10_root, split="test")
    assert len(ds) == 10000 and np.bincount(ds.targets).tolist() == [1000] * 10
    x, y = cifar10_exact["test_x"], cifar10_exact["test_y"]
    where = np.argsort(ds.indices)  # file position (class by class) -> position in the split
    for j in (0, 1, 2, 500, 999):
        pos = int(y[j]) * 1000 + _within_class_index(y, j)
        assert ds.labels[where[pos]] == y[j]
        assert np.abs(_hwc(ds, where[pos]).astype(float) - x[j]).mean() < 15
    img, label = ds[0]
    assert img.shape == (3, 32, 32) and label == ds.labels[0]
    assert torch.equal(ds[0][0], ds[0][0])  # no augmentation on test


def test_imagefolder_eval_splits_come_mixed_not_class_by_class(cifar10_root: Path, cifar10_python_root: Path):
    """A class-folder tree lists images class by class; evaluation (BatchNorm on batch
    statistics) needs mixed batches, so val and test come in a fixed shuffled order."""
    for split, n in (("test", 10000), ("val", 5000)):
        ds = load_dataset("cifar10", cifar10_root, split=split)
        labels = np.asarray(ds.labels)
        assert len(ds) == n and len(np.unique(ds.indices)) == n
        classes_per_batch = [len(np.unique(labels[i:i + 64])) for i in range(0, n - 63, 64)]
        assert min(classes_per_batch) >= 6, (split, min(classes_per_batch))  # sorted order: 1-2
        again = load_dataset("cifar10", cifar10_root, split=split, seed=3)
        if split == "test":  # the order is fixed, not drawn from the caller's seed
            assert np.array_equal(again.indices, ds.indices)
    train = load_dataset("cifar10", cifar10_root, split="train")
    assert np.all(np.diff(train.indices) > 0)  # the training split keeps its order (it is shuffled per epoch)
    python = load_dataset("cifar10", cifar10_python_root, split="test")
    assert np.array_equal(python.indices, np.arange(len(python)))  # an order that is already mixed is kept


def test_imagefolder_few_shot_and_augment(cifar10_root: Path):
    few = load_dataset("cifar10", cifar10_root, split="train", n_per_class=100, seed=0)
    assert len(few) == 1000 and np.bincount(few.targets).tolist() == [100] * 10
    again = load_dataset("cifar10", cifar10_root, split="train", n_per_class=100, seed=0)
    other = load_dataset("cifar10", cifar10_root, split="train", n_per_class=100, seed=1)
    assert np.array_equal(few.indices, again.indices)
    assert not np.array_equal(few.indices, other.indices)
    va = load_dataset("cifar10", cifar10_root, split="val", seed=0)
    assert not set(few.indices.tolist()) & set(va.indices.tolist())
    torch.manual_seed(0)
    views = torch.stack([few[0][0] for _ in range(16)])
    assert views.shape == (16, 3, 32, 32)
    assert (views != views[0]).flatten(1).any(1).sum() > 8  # crops/flips differ


def _small_tree(src: Path, dest: Path, classes: list[str], per_class: int = 3) -> Path:
    """A small ImageFolder copy of the real JPEGs with the given class folder names."""
    for split in ("train", "test"):
        for new, old in zip(classes, CIFAR10_NAMES * 2, strict=False):
            (dest / split / new).mkdir(parents=True)
            for f in sorted((src / split / old).iterdir())[:per_class]:
                shutil.copy(f, dest / split / new / f.name)
    return dest


def test_imagefolder_wrong_classes(cifar10_root: Path, tmp_path):
    wrong = CIFAR10_NAMES[:-1] + ["zebra"]
    root = _small_tree(cifar10_root, tmp_path / "wrong", wrong)
    with pytest.raises(ValueError, match=r"found 10 class folders .*missing \['truck'\]; "
                                         r"unexpected \['zebra'\]"):
        load_dataset("cifar10", root, split="test")
    few = _small_tree(cifar10_root, tmp_path / "few", CIFAR10_NAMES[:9])
    with pytest.raises(ValueError, match="found 9 class folders"):
        load_dataset("cifar10", few, split="train")


def test_imagefolder_cache_keyed_by_file_list(cifar10_root: Path, tmp_path):
    root = _small_tree(cifar10_root, tmp_path / "small", CIFAR10_NAMES, per_class=4)
    a = load_dataset("cifar10", root, split="test")
    assert len(a) == 40
    f = root / "test" / "cat" / "0000.jpg"
    shutil.copy(f, f.with_name("9999.jpg"))
    b = load_dataset("cifar10", root, split="test")
    assert len(b) == 41
    assert len(list((root / ".archlab_cache").glob("cifar10-test-*.npz"))) == 2
    assert not list((root / ".archlab_cache").glob("*.tmp"))


def test_layout_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=f"no CIFAR-10 found: {missing} is not a dir"):
        load_dataset("cifar10", missing)
    (tmp_path / "train").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    msg = (f"no CIFAR-10 found in {tmp_path}: expected cifar-10-batches-py/ .*torchvision python "
           r"batches.* or train/<class>/ and test/<class>/ \(ImageFolder\); found \['notes.txt', "
           r"'train'\]")
    with pytest.raises(FileNotFoundError, match=msg):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(FileNotFoundError, match="no CIFAR-100 found in .*cifar-100-python/"):
        load_dataset("cifar100", tmp_path)


def test_imagenet_folder(cifar10_root: Path, tmp_path):
    """ImageNet code path on a tiny real-image tree (train/ and val/ ImageFolder)."""
    root = tmp_path / "imagenet"
    for split, sub in (("train", "train"), ("test", "val")):
        for c in CIFAR10_NAMES[:3]:
            (root / sub / f"n0{c}").mkdir(parents=True)
            for f in sorted((cifar10_root / split / c).iterdir())[:10]:
                shutil.copy(f, root / sub / f"n0{c}" / f.name)
    tr = load_dataset("imagenet", root, split="train", val_fraction=0.2)
    va = load_dataset("imagenet", root, split="val", val_fraction=0.2)
    te = load_dataset("imagenet", root, split="test")
    assert (len(tr), len(va), len(te)) == (24, 6, 30)
    assert tr.classes == [f"n0{c}" for c in CIFAR10_NAMES[:3]]
    x, y = tr[0]
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32 and y == 0
    assert te[0][0].shape == (3, 224, 224) and torch.equal(te[0][0], te[0][0])
    shutil.rmtree(root / "val" / "n0bird")
    with pytest.raises(ValueError, match=r"missing \['n0bird'\]"):
        load_dataset("imagenet", root, split="test")
    with pytest.raises(FileNotFoundError, match="expected train/<wnid>/ and val/<wnid>/"):
        load_dataset("imagenet", tmp_path / "nothing")


def test_download_flag_uses_data_already_present(cifar10_python_root):
    """download=True only fetches when nothing is found; present data needs no network."""
    ds = load_dataset("cifar10", cifar10_python_root, split="test", download=True)
    assert len(ds) == 1000 and "python batches" in ds.source


@pytest.mark.slow
def test_trained_network_scores_the_same_from_either_layout(cifar10_root: Path, cifar10_python_root: Path):
    """The same 1,000 test images from torchvision's python batches (mixed order on disk) and from
    the class-folder tree score alike under batch-statistics BatchNorm; in class-by-class order
    (what the tree gave before) the trained network falls to chance."""
    from torch import nn

    from archlab.engine import accuracy, short_finetune

    train = load_dataset("cifar10", cifar10_python_root, split="train", val_fraction=0.1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    short_finetune(model, make_loader(train, 64, shuffle=True, seed=0, drop_last=True),
                   make_loader(torch.utils.data.Subset(train, range(64)), 64, shuffle=False), 300, lr=0.05)

    python = load_dataset("cifar10", cifar10_python_root, split="test")
    folder = load_dataset("cifar10", cifar10_root, split="test")
    y = np.asarray(python.labels)
    official = np.array([int(y[j]) * 1000 + _within_class_index(y, j) for j in range(len(y))])
    same = np.flatnonzero(np.isin(folder.indices, official))  # those 1,000 images, in the tree's order
    by_class = same[np.argsort(np.asarray(folder.labels)[same], kind="stable")]
    dev = torch.device("cpu")

    def top1(ds) -> float:
        return accuracy(model, make_loader(ds, 64, shuffle=False), dev)[0]

    a_python = top1(python)
    a_folder = top1(torch.utils.data.Subset(folder, same.tolist()))
    a_sorted = top1(torch.utils.data.Subset(folder, by_class.tolist()))
    print(f"top-1: python batches {a_python:.1f}, tree {a_folder:.1f}, tree class by class {a_sorted:.1f}")
    assert a_python > 25, a_python  # the network did learn
    assert abs(a_folder - a_python) < 3, (a_folder, a_python)  # JPEG vs lossless, other batches
    assert a_sorted < a_python - 10, (a_sorted, a_python)
