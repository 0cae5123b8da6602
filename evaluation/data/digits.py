"""scikit-learn's handwritten digits as a small RGB image classification set (no download)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from evaluation.data.base import ImageDataset

SPLIT_SEED = 0  # fixed: the train/test split never changes
TEST_FRACTION = 0.2


@lru_cache(maxsize=4)
def _digits_uint8(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits  # here: importing scikit-learn takes a second

    digits = load_digits()
    grey = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8), 0..1
    up = torch.nn.functional.interpolate(grey, size=(image_size, image_size), mode="bilinear",
                                         align_corners=False)
    rgb = (up.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return rgb, torch.from_numpy(digits.target.astype(np.int64))


def load_digits_dataset(split: str, *, image_size: int = 32) -> ImageDataset:
    """The ``"train"`` (1,437) or ``"test"`` (360) part of the digits, RGB at ``image_size``."""
    if split not in ("train", "test"):
        raise ValueError(f"digits has splits 'train' and 'test', got {split!r}")
    from sklearn.model_selection import train_test_split

    images, labels = _digits_uint8(image_size)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels.numpy()
    )
    idx = torch.from_numpy(np.sort(train_idx if split == "train" else test_idx))
    return ImageDataset(images[idx], labels[idx], num_classes=10)
