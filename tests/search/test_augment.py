"""The training augmentations on real images (scikit-learn's digits): what each one does to a batch."""

from __future__ import annotations

import pytest
import torch

from evaluation.data import load_digits_dataset
from search.space.schema import AUGMENTATIONS
from search.trial.augment import augment, crop_and_jitter, flip

NAMES = (*AUGMENTATIONS, "rand-m9-mstd0.5-inc1")


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """32 digits at 16 px, float (32, 3, 16, 16) in [0, 1]."""
    return load_digits_dataset("train", image_size=16).images[:32].float() / 255


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", NAMES)
def test_every_augmentation_keeps_shape_dtype_and_range(digits, name):
    for images in (digits, torch.rand(5, 3, 32, 24)):  # the digits; a CIFAR-like size, not square
        out = augment(images, name, _seeded(0))
        assert out.shape == images.shape and out.dtype == torch.float32
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert augment(digits, "none") is digits


def test_flip_flips_exactly_the_chosen_images(digits):
    out = flip(digits, _seeded(1))
    chosen = torch.rand(len(digits), generator=_seeded(1)) < 0.5  # the draw flip makes: one per image
    assert 0 < int(chosen.sum()) < len(digits)
    assert not any(torch.equal(d, d.flip(-1)) for d in digits)  # no digit is its own mirror image
    torch.testing.assert_close(out[chosen], digits[chosen].flip(-1), rtol=0, atol=0)
    torch.testing.assert_close(out[~chosen], digits[~chosen], rtol=0, atol=0)


def _best_offset(out: torch.Tensor, padded: torch.Tensor, size: int) -> tuple[tuple[int, int], float]:
    """The crop of ``padded`` that ``out`` is an affine change of (largest Pearson correlation)."""
    best, best_r = (0, 0), -2.0
    for top in range(padded.shape[-2] - size + 1):
        for left in range(padded.shape[-1] - size + 1):
            crop = padded[..., top:top + size, left:left + size]
            r = float(torch.corrcoef(torch.stack([out.flatten(), crop.flatten()]))[0, 1])
            if r > best_r:
                best, best_r = (top, left), r
    return best, best_r


def test_crop_and_jitter_shift_the_content_and_change_brightness_and_contrast_per_image(digits):
    images = 0.3 + 0.4 * digits  # mid-grey range: no factor in [0.8, 1.2] clamps, so each output is affine in its crop
    out = crop_and_jitter(images, _seeded(2))
    pad = 16 // 8
    padded = torch.nn.functional.pad(images, (pad,) * 4, mode="reflect")
    offsets, slopes = [], []
    for o, p in zip(out, padded, strict=True):
        offset, r = _best_offset(o, p, 16)
        assert r > 0.9999  # the output is its crop, brightened and contrasted: nothing else
        offsets.append(offset)
        crop = p[:, offset[0]:offset[0] + 16, offset[1]:offset[1] + 16]
        slopes.append(float(((o - o.mean()) * (crop - crop.mean())).sum() / ((crop - crop.mean()) ** 2).sum()))
    assert len(set(offsets)) > 4 and any(offset != (pad, pad) for offset in offsets)  # shifted, each its own way
    assert all(0 <= t <= 2 * pad and 0 <= u <= 2 * pad for t, u in offsets)  # by at most 1/8 of the side
    assert all(0.8 * 0.8 - 1e-4 <= s <= 1.2 * 1.2 + 1e-4 for s in slopes)  # the two factors in [0.8, 1.2]
    assert max(slopes) - min(slopes) > 0.1  # a factor per image, not one for the batch
    means = (out.mean(dim=(1, 2, 3)) / images.mean(dim=(1, 2, 3)))  # brightness moves the mean
    assert float(means.min()) < 0.97 and float(means.max()) > 1.03


@pytest.mark.parametrize("name", NAMES[1:])
def test_the_same_generator_seed_draws_the_same_batch_and_another_seed_another(digits, name):
    global_state = torch.get_rng_state()
    a, b = augment(digits, name, _seeded(7)), augment(digits, name, _seeded(7))
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # a resumed trial draws the same augmentation
    assert not torch.equal(a, augment(digits, name, _seeded(8)))
    assert torch.equal(torch.get_rng_state(), global_state)  # torch's global generator is left alone


def test_successive_batches_of_one_generator_differ(digits):
    g = _seeded(3)
    assert not torch.equal(augment(digits, "randaug_lite", g), augment(digits, "randaug_lite", g))


def test_timm_rand_augment_posterizing_to_no_bits_gives_black_images_instead_of_raising(digits):
    from torchvision.transforms.v2.functional import to_pil_image

    from search.trial.augment import rand_augment

    # m10 without noise: PosterizeIncreasing always keeps 0 bits, which Pillow 13 refuses; three
    # operations of 15 per image: about 1 image in 10 draws it.
    for seed in range(3):
        out = augment(digits.repeat(2, 1, 1, 1), "rand-m10-n3-inc1", _seeded(seed))
        assert out.shape == (64, 3, 16, 16)
    op = next(op for op in rand_augment("rand-m10-inc1").ops if op.name == "PosterizeIncreasing")
    img = to_pil_image(digits[0])
    assert max(op.aug_fn(img, 0, **op.kwargs).getextrema())[1] == 0  # every pixel black
    assert op.aug_fn(img, 4, **op.kwargs).getextrema() != (0, 0)
