"""Training augmentations on batches of images (float (B, 3, H, W) in [0, 1]), before normalisation.

Kept small and on tensors (no PIL round trip), so they cost little on CPU:

- ``none``: the images as they are.
- ``flip``: a random horizontal flip per image.
- ``randaug_lite``: flip, a random translation of up to 1/8 of the side (reflect padding and a crop),
  and a random brightness and contrast change per image (factors in [0.8, 1.2]).

They deliberately avoid the corruptions of the test set (noise, blur, weather), which would leak the
judging set into training.

- a timm RandAugment string such as ``rand-m9-mstd0.5-inc1`` (the published FAN and TAP/ADL
  recipes): timm's own ``rand_augment_transform``, applied image by image (it works on PIL images),
  seeded from the batch's generator so that a resumed trial draws the same operations.
"""

from __future__ import annotations

import random
from functools import cache

import numpy as np
import torch

from search.space.schema import AUGMENTATIONS, is_rand_augment


def augment(images: torch.Tensor, name: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply augmentation ``name`` to a batch (B, C, H, W) in [0, 1]; returns a new batch."""
    if is_rand_augment(name):
        return _rand_augment(images, name, generator)
    if name not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS} or a timm RandAugment string "
                         f"(rand-m9-mstd0.5-inc1), got {name!r}")
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


@cache
def rand_augment(config: str):
    """timm's RandAugment for ``config`` (its hparams as timm's create_transform sets them)."""
    from timm.data import IMAGENET_DEFAULT_MEAN
    from timm.data.auto_augment import rand_augment_transform

    return rand_augment_transform(config, {"img_mean": tuple(round(255 * m) for m in IMAGENET_DEFAULT_MEAN)})


def _rand_augment(images: torch.Tensor, config: str, generator: torch.Generator | None) -> torch.Tensor:
    from torchvision.transforms.v2.functional import pil_to_tensor, to_pil_image

    transform = rand_augment(config)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)  # timm's RandAugment draws its operations from NumPy, their magnitudes from random
    np.random.seed(seed)
    try:
        out = [pil_to_tensor(transform(to_pil_image((img * 255).round().to(torch.uint8)))) for img in images.cpu()]
    finally:
        random.setstate(state)
        np.random.set_state(np_state)
    return (torch.stack(out).to(images.device, torch.float32) / 255.0)
