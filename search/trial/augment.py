"""Training augmentations on batches of images (float (B, 3, H, W) in [0, 1]), before normalisation.

The operations are torchvision's: the tensor kernels of ``torchvision.transforms.v2.functional`` (such
as ``horizontal_flip_image``), called directly since the batches are plain tensors, with no PIL round
trip. Their parameters are drawn per image from the batch's ``torch.Generator`` (torch's global
generator is left alone), so that a resumed trial draws the same augmentation:

- ``none``: the images as they are.
- ``flip``: a random horizontal flip per image (probability 1/2, as ``v2.RandomHorizontalFlip``).
- ``randaug_lite``: flip, a random translation of up to 1/8 of the side (reflect padding and a random
  crop, as ``v2.RandomCrop(size, padding=side // 8, padding_mode="reflect")``), and a random
  brightness and contrast change per image (as ``v2.ColorJitter(brightness=0.2, contrast=0.2)``:
  factors uniform in [0.8, 1.2], the two applied in a random order, each clamped to [0, 1]).

Why kernels and not the ``v2`` transform objects: a ``v2`` transform called on a batch draws one set
of parameters for the whole batch, and calling it image by image costs several times more than the
kernels (mostly its dispatch; see the Augmentation section of docs/benchmarks.md). So the parameters are
drawn here, for the whole batch at once, and the kernels run on the whole batch where the operation
has no per-image parameter (the reflect padding, the flip, whose result is then chosen per image),
image by image otherwise (the crop and the colour change take scalar parameters).

They deliberately avoid the corruptions of the test set (noise, blur, weather), which would leak the
judging set into training.

- a timm RandAugment string such as ``rand-m9-mstd0.5-inc1`` (the published FAN and TAP/ADL
  recipes): timm's own ``rand_augment_transform``, applied image by image (it works on PIL images;
  ``v2.RandAugment`` has other operations and magnitudes, so it is not the published recipe), seeded
  from the batch's generator. One repair: where it posterizes to 0 bits (Pillow 13 raises for that),
  the image turns black, as on the Pillow versions the recipes were published with.
"""

from __future__ import annotations

import random
from functools import cache

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from search.space.schema import AUGMENTATIONS, is_rand_augment

JITTER = (0.8, 1.2)  # brightness and contrast factors: v2.ColorJitter(brightness=0.2, contrast=0.2)


def augment(images: torch.Tensor, name: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply augmentation ``name`` to a batch (B, C, H, W) in [0, 1]; returns a new batch."""
    if is_rand_augment(name):
        return _rand_augment(images, name, generator)
    if name not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS} or a timm RandAugment string "
                         f"(rand-m9-mstd0.5-inc1), got {name!r}")
    if name == "none":
        return images
    images = flip(images, generator)
    if name == "randaug_lite":
        images = crop_and_jitter(images, generator)
    return images


def flip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image flipped left-right with probability 1/2 (the kernel runs once, on the whole batch)."""
    b = images.shape[0]
    chosen = (torch.rand(b, generator=generator) < 0.5).to(images.device)  # (B,)
    return torch.where(chosen.view(b, 1, 1, 1), F.horizontal_flip_image(images), images)


def crop_and_jitter(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random translation (reflect padding of side // 8, then a crop) and a brightness and contrast
    change, each image with its own offsets, factors and order."""
    b, _, h, w = images.shape
    pad = max(1, min(h, w) // 8)
    padded = F.pad_image(images, [pad], padding_mode="reflect")  # (B, C, H + 2 pad, W + 2 pad), the whole batch
    tops = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    lefts = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    brightness = torch.empty(b).uniform_(*JITTER, generator=generator).tolist()
    contrast = torch.empty(b).uniform_(*JITTER, generator=generator).tolist()
    contrast_first = (torch.rand(b, generator=generator) < 0.5).tolist()  # ColorJitter's random order
    out = []
    for i in range(b):
        img = F.crop_image(padded[i], tops[i], lefts[i], h, w)  # (C, H, W)
        if contrast_first[i]:
            img = F.adjust_brightness_image(F.adjust_contrast_image(img, contrast[i]), brightness[i])
        else:
            img = F.adjust_contrast_image(F.adjust_brightness_image(img, brightness[i]), contrast[i])
        out.append(img)
    return torch.stack(out)


@cache
def rand_augment(config: str):
    """timm's RandAugment for ``config`` (its hparams as timm's create_transform sets them)."""
    from timm.data import IMAGENET_DEFAULT_MEAN
    from timm.data.auto_augment import posterize, rand_augment_transform

    transform = rand_augment_transform(config, {"img_mean": tuple(round(255 * m) for m in IMAGENET_DEFAULT_MEAN)})
    for op in transform.ops:
        if op.aug_fn is posterize:
            op.aug_fn = _posterize
    return transform


def _posterize(img, bits_to_keep: int, **kwargs):
    """timm's posterize, with 0 bits kept giving a black image as it did on Pillow < 13 (Pillow 13 raises
    for 0 bits, which timm's Posterize levels below 2.5 and PosterizeIncreasing at 10 ask for)."""
    from PIL import Image
    from timm.data.auto_augment import posterize

    return Image.new(img.mode, img.size) if bits_to_keep <= 0 else posterize(img, bits_to_keep, **kwargs)


def _rand_augment(images: torch.Tensor, config: str, generator: torch.Generator | None) -> torch.Tensor:
    transform = rand_augment(config)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)  # timm's RandAugment draws its operations from NumPy, their magnitudes from random
    np.random.seed(seed)
    try:
        out = [F.pil_to_tensor(transform(F.to_pil_image((img * 255).round().to(torch.uint8)))) for img in images.cpu()]
    finally:
        random.setstate(state)
        np.random.set_state(np_state)
    return (torch.stack(out).to(images.device, torch.float32) / 255.0)
