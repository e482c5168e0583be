"""Image datasets and loaders: embedded digits, CIFAR-10/100, ImageNet folders.

    ds = load_dataset("cifar10", data_dir, split="train")   # items: (float [3, 32, 32], int)
    loader = make_loader(ds, batch_size=128, shuffle=True, seed=0)
    dataset_info("cifar10").num_classes                      # 10
"""

from ._api import (
    DATASETS,
    DatasetInfo,
    dataset_info,
    default_download_dir,
    load_dataset,
    make_loader,
)
from ._base import SPLITS, TensorImageDataset
from ._cifar import CIFAR10_CLASSES, CIFAR100_CLASSES, detect_cifar_layout

__all__ = [
    "DATASETS",
    "SPLITS",
    "CIFAR10_CLASSES",
    "CIFAR100_CLASSES",
    "DatasetInfo",
    "TensorImageDataset",
    "dataset_info",
    "default_download_dir",
    "detect_cifar_layout",
    "load_dataset",
    "make_loader",
]
