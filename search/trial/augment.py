"""Training augmentations on batches of images (float (B, 3, H, W) in [0, 1]), before normalisation.

Kept small and on tensors (no PIL round trip), so they cost little on CPU:

- ``none``: the images as they are.
- ``flip``: a random horizontal flip per image.
- ``randaug_lite``: flip, a random translation of up to 1/8 of the side (reflect padding and a crop),
  and a random brightness and contrast change per image (factors in [0.8, 1.2]).

They deliberately avoid the corruptions of the test set (noise, blur, weather), which would leak the
judging set into training.
"""

from __future__ import annotations

import torch

from search.space.schema import AUGMENTATIONS


def augment(images: torch.Tensor, name: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply augmentation ``name`` to a batch (B, C, H, W) in [0, 1]; returns a new batch."""
    if name not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {name!r}")
    if name == "none":
        return images
    images = _flip(images, generator)
    if name == "randaug_lite":
        images = _translate(images, generator)
        images = _brightness_contrast(images, generator)
    return images


def _flip(images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    b = images.shape[0]
    flip = torch.rand(b, generator=generator) < 0.5  # (B,)
    return torch.where(flip.view(b, 1, 1, 1).to(images.device), images.flip(-1), images)


def _translate(images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    b, _, h, w = images.shape
    pad = max(1, min(h, w) // 8)
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad), mode="reflect")  # (B, C, H+2p, W+2p)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


def _brightness_contrast(images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    b = images.shape[0]
    bright = (0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=generator)).to(images)  # per image
    contrast = (0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=generator)).to(images)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return ((images - mean) * contrast + mean * bright).clamp(0.0, 1.0)
