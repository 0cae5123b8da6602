"""The reference backend (``imagecorruptions``) and the per-image CPU paths of the fast backend.

``reference_corrupt`` runs the maintained package ``imagecorruptions`` (pip name
``imagecorruptions-imaug``) image by image. That package implements the ImageNet-C table only, so
the reference backend refuses ``table="cifar10"``; the CIFAR-10-C table is served by the fast
backend (see ``fast.py`` for what follows make_cifar_c and what does not).

Randomness: the reference draws from NumPy's global generator (and from ``seed`` arguments for
impulse noise and glass blur). Image ``i`` of a call with seed ``s`` is corrupted under the global
state seeded from ``SeedSequence([s, i])``; the caller's global NumPy state is restored afterwards.

``jpeg``, ``spatter_numpy`` and ``pixelate_pil`` are what the fast backend runs per image on the
CPU (pixelate only for CPU tensors: Pillow's resize beats batched matmuls there; CUDA tensors use
the torch version). They take their parameters from the table, so they serve both tables; with the
ImageNet table they give exactly the reference's output for the same NumPy draws (tested). The fast
backend spreads them over threads (``per_image(..., parallel=True)``, see ``parallel.py``; each
image has its own seed, so the output is the same as one by one); the reference backend runs one
image at a time (imagecorruptions uses NumPy's global generator).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from evaluation.corruptions.parallel import sub_seed, thread_map
from evaluation.corruptions.tables import params_for


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Floats in [0, 1] -> contiguous uint8 levels ``round(clamp(x, 0, 1) * 255)``."""
    return images.detach().float().mul(255).round_().clamp_(0, 255).to(torch.uint8).contiguous()


def per_image(images: torch.Tensor, fn: Callable[[np.ndarray, int], np.ndarray], seed: int,
              parallel: bool = False) -> torch.Tensor:
    """Apply ``fn(uint8 HWC image, image seed) -> uint8 HWC`` to each image of (B, 3, H, W).

    ``parallel``: spread the images over threads (:func:`parallel.thread_map`; Pillow and
    OpenCV release the GIL). Only for thread-safe ``fn`` that use no global state;
    each image still gets its own seed and the results keep their order, so the output is the
    same as the sequential one. Each image's conversions run on its thread too.
    """
    src = images.detach().cpu()
    out = torch.empty(src.shape, dtype=torch.float32)

    def one(i: int) -> None:
        hwc = to_uint8(src[i].permute(1, 2, 0)).numpy()
        result = torch.from_numpy(np.require(fn(hwc, sub_seed(seed, i)), np.uint8, ["C", "W"]))  # torch wants writable
        out[i].copy_(result.permute(2, 0, 1)).div_(255)

    thread_map(one, range(len(src)), None if parallel else 1)
    return out.to(images.device)


def jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG encode and decode at ``quality``, image by image on threads: torchvision's libjpeg-turbo,
    whose output is bitwise Pillow's (what both reference scripts call; tested), without Pillow's
    per-image conversions (those took three quarters of the time)."""
    from torchvision.io import decode_jpeg, encode_jpeg

    src = images.detach().cpu()
    out = torch.empty(src.shape, dtype=torch.float32)

    def one(i: int) -> None:
        out[i].copy_(decode_jpeg(encode_jpeg(to_uint8(src[i]), quality=int(quality)))).div_(255)

    thread_map(one, range(len(src)))
    return out.to(images.device)


def reference_corrupt(images: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """Corrupt (B, 3, H, W) images with ``imagecorruptions`` (ImageNet-C table), one by one."""
    from imagecorruptions import corrupt as ic_corrupt

    def one(img: np.ndarray, s: int) -> np.ndarray:
        state = np.random.get_state()
        try:
            np.random.seed(s)
            kwargs = {"seed": s} if name in ("impulse_noise", "glass_blur") else {}
            return ic_corrupt(img, severity=severity, corruption_name=name, **kwargs)
        finally:
            np.random.set_state(state)

    return per_image(images, one, seed)


def pixelate_pil(image: np.ndarray, c: float, upsample: str) -> np.ndarray:
    """Pillow BOX downscale to ``int(side * c)``, then back up with ``upsample`` ("nearest"/"box")."""
    h, w = image.shape[:2]
    up = Image.NEAREST if upsample == "nearest" else Image.BOX
    small = Image.fromarray(image).resize((int(w * c), int(h * c)), Image.BOX)
    return np.array(small.resize((w, h), up))


def spatter_numpy(image: np.ndarray, c: tuple, rng: np.random.RandomState) -> np.ndarray:
    """Spatter with parameters ``c`` (loc, scale, sigma, threshold, intensity, mode), uint8 in and out.

    The same steps as the reference (water: Canny edges, distance transform, histogram
    equalisation and an emboss kernel shape the drops; mud: thresholded blurred blobs), drawing
    from ``rng`` in the reference's order.
    """
    import cv2
    from skimage.filters import gaussian

    x = image.astype(np.float32) / 255.0
    liquid = rng.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    liquid = gaussian(liquid, sigma=c[2])
    liquid[liquid < c[3]] = 0
    if c[5] == 0:  # water drops, pale turquoise
        liquid8 = (liquid * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid8, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        dist = cv2.filter2D(dist, cv2.CV_8U, ker)
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = cv2.cvtColor(liquid8 * dist, cv2.COLOR_GRAY2BGRA)
        m /= np.max(m, axis=(0, 1))
        m *= c[4]
        ones = np.ones_like(m[..., :1])
        color = np.concatenate((175 / 255.0 * ones, 238 / 255.0 * ones, 238 / 255.0 * ones), axis=2)
        color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
        xa = cv2.cvtColor(x, cv2.COLOR_BGR2BGRA)
        out = cv2.cvtColor(np.clip(xa + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255
    else:  # mud, brown
        m = np.where(liquid > c[3], 1, 0)
        m = gaussian(m.astype(np.float32), sigma=c[4])
        m[m < 0.8] = 0
        ones = np.ones_like(x[..., :1])
        color = np.concatenate((63 / 255.0 * ones, 42 / 255.0 * ones, 20 / 255.0 * ones), axis=2)
        color *= m[..., np.newaxis]
        x *= 1 - m[..., np.newaxis]
        out = np.clip(x + color, 0, 1) * 255
    return np.uint8(out)


def cpu_corrupt(images: torch.Tensor, name: str, severity: int, table: str, seed: int) -> torch.Tensor:
    """The fast backend's per-image CPU paths (jpeg_compression, spatter, and pixelate on CPU)
    with ``table``'s parameters."""
    from evaluation.corruptions.tables import get_table

    c = params_for(table, name, severity)
    if name == "jpeg_compression":
        return jpeg(images, c)
    if name == "spatter":
        return per_image(images, lambda img, s: spatter_numpy(img, c, np.random.RandomState(s)), seed, parallel=True)
    if name == "pixelate":
        upsample = get_table(table).pixelate_upsample
        return per_image(images, lambda img, s: pixelate_pil(img, c, upsample), seed, parallel=True)
    raise ValueError(f"no CPU path for corruption {name!r}")
