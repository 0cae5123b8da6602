"""Two small Dataset classes every loader returns: in-memory uint8 images, and a subset view."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of uint8 (N, 3, h, w) to (N, 3, size, size), rounded back to uint8."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False,
                        antialias=images.shape[-1] > size)
    return out.round().clamp(0, 255).to(torch.uint8)


class ImageDataset(Dataset):
    """Images held in memory as uint8 (N, 3, H, W) with int labels; yields float (3, H, W) in [0, 1].

    Attributes:
        images: uint8 tensor (N, 3, H, W).
        labels: int64 tensor (N,).
        num_classes: number of classes.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()
        self.num_classes = int(num_classes)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i].float() / 255, int(self.labels[i])


class SubsetDataset(Dataset):
    """A fixed subset of another data set (``indices`` into it), keeping ``num_classes``."""

    def __init__(self, base: Dataset, indices: torch.Tensor):
        self.base = base
        self.indices = indices.long()
        self.num_classes = base.num_classes

    @classmethod
    def random(cls, base: Dataset, size: int, seed: int) -> SubsetDataset:
        """A seeded random subset of ``size`` items (sorted indices); the whole set if smaller."""
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"subset must be a positive integer, got {size!r}")
        n = len(base)
        g = torch.Generator().manual_seed(int(seed))
        idx = torch.randperm(n, generator=g)[: min(size, n)].sort().values
        return cls(base, idx)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.base[int(self.indices[i])]
