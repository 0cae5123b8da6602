"""Data sets by name, with no download ever.

``load_dataset(name, split, *, path=None, image_size=32, subset=None, seed=0)`` returns a torch
``Dataset`` of ``(image, label)`` with ``image`` float32 (3, H, W) in [0, 1] and an attribute
``num_classes``. Names (:data:`DATASETS`):

* ``digits``: scikit-learn's 1,797 handwritten digits (8x8 grey), as RGB upsampled bilinearly to
  ``image_size``; a fixed stratified split (20 % test, split seed 0), ``split`` "train" or "test".
* ``cifar10`` / ``cifar100``: the python-pickle batches in ``path`` (see :mod:`.cifar`).
* ``imagefolder``: ``path/<split>/<class>/<image>`` (see :mod:`.imagefolder`).

Pre-made corrupted benchmarks (ImageNet-C folders, CIFAR-10-C/100-C ``.npy``) are opened with
:func:`evaluation.data.corrupted_benchmarks.load_corrupted_benchmark`.

``subset`` keeps a seeded random ``subset`` of the split (``seed`` picks which; the split itself
never changes). ``normalize`` applies timm's ImageNet mean/std, for whoever feeds a model.
"""

from __future__ import annotations

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch.utils.data import Dataset

from evaluation.data.base import ImageDataset, SubsetDataset
from evaluation.data.cifar import load_cifar
from evaluation.data.digits import load_digits_dataset
from evaluation.data.imagefolder import load_imagefolder

DATASETS = ("digits", "cifar10", "cifar100", "imagefolder")

__all__ = ["DATASETS", "ImageDataset", "SubsetDataset", "load_dataset", "normalize"]


def load_dataset(name: str, split: str, *, path: str | None = None, image_size: int = 32,
                 subset: int | None = None, seed: int = 0) -> Dataset:
    """Open the data set ``name`` (one of :data:`DATASETS`) at ``split``; see the module docstring."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid names: {list(DATASETS)}")
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an integer >= 8, got {image_size!r}")
    if name == "digits":
        ds = load_digits_dataset(split, image_size=image_size)
    elif name in ("cifar10", "cifar100"):
        ds = load_cifar(name, split, path=path, image_size=image_size)
    else:
        ds = load_imagefolder(split, path=path, image_size=image_size)
    if subset is not None:
        ds = SubsetDataset.random(ds, subset, seed)
    return ds


def normalize(batch: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std with timm's IMAGENET_DEFAULT_MEAN/STD, for (3, H, W) or (B, 3, H, W)."""
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN, dtype=batch.dtype, device=batch.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_DEFAULT_STD, dtype=batch.dtype, device=batch.device).view(3, 1, 1)
    return (batch - mean) / std
