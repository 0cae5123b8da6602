"""Distribution-shift test sets, read from disk (never downloaded): ImageNet-R, ImageNet-A,
ImageNet-Sketch and CIFAR-10.1.

* ImageNet-R / ImageNet-A / ImageNet-Sketch: ``PATH/<wnid>/<image>`` (R and A: 200 of the 1,000
  ImageNet classes; Sketch: all 1,000). Each WordNet id is mapped onto the model's class index:
  the position of the wnid in the clean set's class list (an imagefolder of ImageNet, whose sorted
  class folders are the 1,000 wnids) or else in timm's list of the 1,000 ImageNet-1k synsets. When a
  set holds fewer classes than the model (R, A), the model's prediction is taken over those classes
  only (the published protocol for R and A). Images: shorter side to ``image_size / 0.875``, centre crop.
* CIFAR-10.1: ``PATH/cifar10.1_v6_data.npy`` (uint8 (N, 32, 32, 3)) and
  ``PATH/cifar10.1_v6_labels.npy`` (CIFAR-10's class order), or the ``v4`` pair.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from evaluation.data.base import ImageDataset, resize_batch
from evaluation.data.imagefolder import ImageFolderDataset, scan_classes

SHIFT_SETS = ("imagenet_r", "imagenet_a", "imagenet_sketch", "cifar10_1")
WNID_LAYOUT = "PATH/<wnid>/<image> (e.g. PATH/n01443537/x.jpg)"
CIFAR101_LAYOUT = "PATH/cifar10.1_v6_data.npy + PATH/cifar10.1_v6_labels.npy (or the v4 pair)"


@dataclass
class ShiftSet:
    """A shift test set: ``dataset`` of (image, label in the model's classes) and, when the set
    covers only some of the model's classes, their indices (predictions are taken over them)."""

    name: str
    dataset: Dataset
    class_subset: torch.Tensor | None


def imagenet_synsets() -> list[str]:
    """The 1,000 ImageNet-1k WordNet ids in class-index order (timm's bundled list)."""
    import timm.data

    path = Path(os.path.dirname(timm.data.__file__)) / "_info" / "imagenet_synsets.txt"
    return path.read_text().split()


def _wnid_set(name: str, path: Path, image_size: int, classes: list[str] | None, num_classes: int) -> ShiftSet:
    files, local, wnids = scan_classes(path)
    model_classes = classes if classes is not None else imagenet_synsets()
    index = {w: i for i, w in enumerate(model_classes)}
    unknown = [w for w in wnids if w not in index]
    if unknown:
        raise ValueError(f"{name} folder {path}: class folders {unknown[:3]} are not classes of the model "
                         f"({len(model_classes)} ImageNet wnids); layout {WNID_LAYOUT}")
    mapped = [index[wnids[j]] for j in local]
    if max(index[w] for w in wnids) >= num_classes:
        raise ValueError(f"{name} folder {path}: its classes need a model of the 1,000 ImageNet classes, "
                         f"this one has {num_classes}")
    subset = None if len(wnids) >= num_classes else torch.tensor(sorted(index[w] for w in wnids))
    return ShiftSet(name, ImageFolderDataset(files, mapped, list(model_classes), image_size), subset)


def _cifar101(path: Path, image_size: int) -> ShiftSet:
    for version in ("v6", "v4"):
        data, labels = path / f"cifar10.1_{version}_data.npy", path / f"cifar10.1_{version}_labels.npy"
        if data.is_file() and labels.is_file():
            break
    else:
        raise ValueError(f"cifar10_1 folder {path}: no CIFAR-10.1 files; layout {CIFAR101_LAYOUT}")
    try:
        x, y = np.load(data, allow_pickle=False), np.load(labels, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"cifar10_1 folder {path}: unreadable .npy ({str(err).splitlines()[0][:100]})") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3 or len(x) != len(y):
        raise ValueError(f"{data}: {x.dtype} {x.shape} with {len(y)} labels; layout {CIFAR101_LAYOUT}")
    images = resize_batch(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), image_size)
    return ShiftSet("cifar10_1", ImageDataset(images, torch.from_numpy(y.astype(np.int64)), 10), None)


def load_shift_set(name: str, path: str | os.PathLike, *, image_size: int, num_classes: int,
                   classes: list[str] | None = None) -> ShiftSet:
    """Open the shift set ``name`` (one of :data:`SHIFT_SETS`) at ``path``; see the module docstring."""
    if name not in SHIFT_SETS:
        raise ValueError(f"unknown shift set {name!r}; valid names: {list(SHIFT_SETS)}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ValueError(f"{name}: {root} is not a folder; layout "
                         f"{CIFAR101_LAYOUT if name == 'cifar10_1' else WNID_LAYOUT}")
    if name == "cifar10_1":
        return _cifar101(root, image_size)
    return _wnid_set(name, root, image_size, classes, num_classes)
