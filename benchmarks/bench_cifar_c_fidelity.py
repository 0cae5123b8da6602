"""CIFAR-10-C fidelity: our ``cifar10`` table against the authors' ``make_cifar_c.py``, measured.

The reference (``SCRIPT`` below) re-implements ``make_cifar_c.py`` (hendrycks/robustness,
``ImageNet-C/create_c/make_cifar_c.py``), written from reading it, as a reference for measuring:
step for step the same NumPy, SciPy, scikit-image, OpenCV, Pillow and Wand (ImageMagick) calls with
its parameters, its float64/float32 and uint8 conversions, its input conversion
(``ToTensor`` then ``ToPILImage``) and its final ``np.uint8`` truncation. Only what current library
versions no longer accept is spelled the new way (``channel_axis=-1`` for ``multichannel=True``,
``np.float64`` for ``np.float_``, ``np.frombuffer`` for ``np.fromstring``), and every random draw
goes through a ``draws`` object, so the same function runs either with NumPy's generator (the
script's own draws) or with our engine's draws replayed. The frost images are the six files that
ship in the ``imagecorruptions`` package (the script's ``./frost*.png/jpg``; the same git blobs,
``tests/evaluation/test_corruption_tables.py``), found the way our engine finds them. Offline.

Three comparisons per corruption and severity, on 256 real 32 px photos (crops of scikit-learn's
two sample photos and matplotlib's ``grace_hopper.jpg`` at several scales; not the images the tests
use), ours = ``evaluation.corruptions.corrupt(x, name, severity, table="cifar10")``, torch backend:

* ``same draws``: the script run with the random numbers our engine drew (replayed chunk by chunk,
  with the engine's own chunking and seeds), pixel for pixel against ours: mean and max absolute
  difference in 0..255 levels and the share of values within 1 level. Deterministic corruptions
  need no draws. Shot noise replays our uniforms through SciPy's Poisson inverse CDF
  (``np.random.poisson`` takes no uniforms), impulse noise maps our uniform per value onto
  skimage's two Bernoulli masks (flip with ``amount``, then salt or pepper with 1/2).
* ``in distribution``: the script with its own draws (NumPy, seed A) against ours: mean absolute
  change from the clean image, per-image mean and per-image standard deviation averaged over the
  set, as relative differences; the script against itself with seed B gives the noise floor.
* ``corruption error``: a tiny CNN trained in seconds on the project's digits (``load_digits_dataset``,
  32 px RGB), its error on the 360 test digits corrupted by ours, by the script with our draws and by
  the script with its own draws, per corruption (mean over the five severities); random corruptions
  over ``--ce-seeds`` seeds on each side (ours: seeds 0.., the script: its own seeds), whose spread
  is the noise floor of the comparison.

    python benchmarks/bench_cifar_c_fidelity.py [--images 256] [--ce-seeds 4] [--json out.json]

Needs Wand and ImageMagick's MagickWand library (``apt-get install libmagickwand-6.q16-6``,
``pip install wand``) for motion blur and snow, as the script does.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.resources
import json
import platform
import sys
import time
import warnings
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import skimage as sk
import torch
from PIL import Image as PILImage
from scipy.ndimage import map_coordinates
from scipy.ndimage import zoom as scizoom
from skimage.filters import gaussian

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.corruptions import (  # noqa: E402
    ALL_CORRUPTIONS,
    CPU_CHUNK_PIXELS,
    SEVERITIES,
    corrupt,
    fast_backend_coverage,
    params_for,
)
from evaluation.corruptions.parallel import sub_seed  # noqa: E402

warnings.simplefilter("ignore", UserWarning)
SIZE = 32
EPOCHS = 20  # the tiny CNN: about 5 % clean error on the 360 test digits
RANDOM = frozenset({
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur",
    "snow", "frost", "fog", "elastic_transform", "spatter",
})

# ---------------------------------------------------------------------------------------- draws


def script_seed(stream: int, seed: int, image: int) -> int:
    """The NumPy seed of one image's script run: distinct for every (stream, seed, image)."""
    return int(np.random.SeedSequence([stream, seed, image]).generate_state(1)[0])


class NumpyDraws:
    """The script's own randomness: NumPy's legacy generator (the script uses the global one)."""

    def __init__(self, seed: int):
        self.rs = np.random.RandomState(seed)

    def normal(self, size, loc=0.0, scale=1.0):
        return self.rs.normal(size=size, loc=loc, scale=scale)

    def uniform(self, low, high, size=None):
        return self.rs.uniform(low, high, size)

    def randint(self, low, high=None, size=None):
        return self.rs.randint(low, high, size)

    def poisson(self, lam):
        return self.rs.poisson(lam)

    def salt_and_pepper(self, image, amount):
        # the script: sk.util.random_noise(image, mode='s&p', amount=c), skimage's own generator
        return sk.util.random_noise(image, mode="s&p", amount=amount, rng=int(self.rs.randint(2**31)))


class ReplayDraws:
    """Our engine's draws for one image, handed to the script's calls in the order it makes them."""

    def __init__(self, values: list):
        self.values = list(values)[::-1]

    def _next(self, size=None):
        v = self.values.pop()
        if size is not None:
            assert np.shape(v) == tuple(np.atleast_1d(size)), (np.shape(v), size)
        return v

    def normal(self, size, loc=0.0, scale=1.0):
        return np.asarray(self._next(size), dtype=np.float64) * scale + loc  # stored as N(0, 1)

    def uniform(self, low, high, size=None):
        return low + (high - low) * np.asarray(self._next(size), dtype=np.float64)  # stored as U[0, 1)

    def randint(self, low, high=None, size=None):
        return self._next(size)  # stored as the integers themselves

    def poisson(self, lam):
        from scipy.stats import poisson

        u = np.asarray(self._next(np.shape(lam)), dtype=np.float64)
        k = poisson.ppf(u, np.maximum(lam, 1e-300))  # the smallest k with CDF(k) >= u
        return np.where((u == 0) | (lam == 0), 0.0, k)

    def salt_and_pepper(self, image, amount):
        # skimage's rule (flipped = Bernoulli(amount); salted = Bernoulli(1/2); flipped & salted -> 1,
        # flipped & ~salted -> 0) with one uniform u per value: flipped = u < amount, salted = u < amount / 2
        u = np.asarray(self._next(image.shape), dtype=np.float64)
        out = image.copy()
        out[u < amount / 2] = 1
        out[(u >= amount / 2) & (u < amount)] = 0
        return np.clip(out, 0, 1)


# ---------------------------------------------------------------- make_cifar_c.py, re-implemented

wandlibrary = None


def _motion_image_blur(png: bytes, radius: float, sigma: float, angle: float) -> np.ndarray:
    """The script's ``MotionImage(blob=png).motion_blur(...)``, then ``cv2.imdecode(make_blob())``."""
    global wandlibrary
    from wand.image import Image as WandImage

    if wandlibrary is None:
        from wand.api import library

        library.MagickMotionBlurImage.argtypes = (ctypes.c_void_p, ctypes.c_double, ctypes.c_double,
                                                  ctypes.c_double)
        wandlibrary = library
    with WandImage(blob=png) as im:
        wandlibrary.MagickMotionBlurImage(im.wand, radius, sigma, angle)
        return cv2.imdecode(np.frombuffer(im.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)


def disk(radius, alias_blur=0.1, dtype=np.float32):
    if radius <= 8:
        L = np.arange(-8, 8 + 1)
        ksize = (3, 3)
    else:
        L = np.arange(-radius, radius + 1)
        ksize = (5, 5)
    X, Y = np.meshgrid(L, L)
    aliased_disk = np.array((X ** 2 + Y ** 2) <= radius ** 2, dtype=dtype)
    aliased_disk /= np.sum(aliased_disk)
    return cv2.GaussianBlur(aliased_disk, ksize=ksize, sigmaX=alias_blur)


def plasma_fractal(draws, mapsize=32, wibbledecay=3):
    assert mapsize & (mapsize - 1) == 0
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize = mapsize
    wibble = 100

    def wibbledmean(array):
        return array / 4 + wibble * draws.uniform(-wibble, wibble, array.shape)

    def fillsquares():
        cornerref = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=0)
        squareaccum += np.roll(squareaccum, shift=-1, axis=1)
        maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(squareaccum)

    def filldiamonds():
        mapsize_ = maparray.shape[0]
        drgrid = maparray[stepsize // 2:mapsize_:stepsize, stepsize // 2:mapsize_:stepsize]
        ulgrid = maparray[0:mapsize_:stepsize, 0:mapsize_:stepsize]
        ldrsum = drgrid + np.roll(drgrid, 1, axis=0)
        lulsum = ulgrid + np.roll(ulgrid, -1, axis=1)
        ltsum = ldrsum + lulsum
        maparray[0:mapsize_:stepsize, stepsize // 2:mapsize_:stepsize] = wibbledmean(ltsum)
        tdrsum = drgrid + np.roll(drgrid, 1, axis=1)
        tulsum = ulgrid + np.roll(ulgrid, -1, axis=0)
        ttsum = tdrsum + tulsum
        maparray[stepsize // 2:mapsize_:stepsize, 0:mapsize_:stepsize] = wibbledmean(ttsum)

    while stepsize >= 2:
        fillsquares()
        filldiamonds()
        stepsize //= 2
        wibble /= wibbledecay

    maparray -= maparray.min()
    return maparray / maparray.max()


def clipped_zoom(img, zoom_factor):
    h = img.shape[0]
    ch = int(np.ceil(h / zoom_factor))
    top = (h - ch) // 2
    img = scizoom(img[top:top + ch, top:top + ch], (zoom_factor, zoom_factor, 1), order=1)
    trim_top = (img.shape[0] - h) // 2
    return img[trim_top:trim_top + h, trim_top:trim_top + h]


def gaussian_noise(x, severity, draws):
    c = [0.04, 0.06, .08, .09, .10][severity - 1]
    x = np.array(x) / 255.
    return np.clip(x + draws.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x, severity, draws):
    c = [500, 250, 100, 75, 50][severity - 1]
    x = np.array(x) / 255.
    return np.clip(draws.poisson(x * c) / c, 0, 1) * 255


def impulse_noise(x, severity, draws):
    c = [.01, .02, .03, .05, .07][severity - 1]
    x = draws.salt_and_pepper(np.array(x) / 255., amount=c)
    return np.clip(x, 0, 1) * 255


def speckle_noise(x, severity, draws):
    c = [.06, .1, .12, .16, .2][severity - 1]
    x = np.array(x) / 255.
    return np.clip(x + x * draws.normal(size=x.shape, scale=c), 0, 1) * 255


def gaussian_blur(x, severity, draws):
    c = [.4, .6, 0.7, .8, 1][severity - 1]
    x = gaussian(np.array(x) / 255., sigma=c, channel_axis=-1)
    return np.clip(x, 0, 1) * 255


def glass_blur(x, severity, draws):
    c = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][severity - 1]
    x = np.uint8(gaussian(np.array(x) / 255., sigma=c[0], channel_axis=-1) * 255)
    for _i in range(c[2]):
        for h in range(32 - c[1], c[1], -1):
            for w in range(32 - c[1], c[1], -1):
                dx, dy = draws.randint(-c[1], c[1], size=(2,))
                h_prime, w_prime = h + dy, w + dx
                x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]  # views: a copy, not a swap
    return np.clip(gaussian(x / 255., sigma=c[0], channel_axis=-1), 0, 1) * 255


def defocus_blur(x, severity, draws):
    c = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    x = np.array(x) / 255.
    kernel = disk(radius=c[0], alias_blur=c[1])
    channels = [cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)]
    channels = np.array(channels).transpose((1, 2, 0))
    return np.clip(channels, 0, 1) * 255


def motion_blur(x, severity, draws):
    c = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][severity - 1]
    output = BytesIO()
    x.save(output, format="PNG")
    x = _motion_image_blur(output.getvalue(), c[0], c[1], draws.uniform(-45, 45))
    if x.shape != (32, 32):
        return np.clip(x[..., [2, 1, 0]], 0, 255)  # BGR to RGB
    return np.clip(np.array([x, x, x]).transpose((1, 2, 0)), 0, 255)  # greyscale to RGB


def zoom_blur(x, severity, draws):
    c = [np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
         np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)][severity - 1]
    x = (np.array(x) / 255.).astype(np.float32)
    out = np.zeros_like(x)
    for zoom_factor in c:
        out += clipped_zoom(x, zoom_factor)
    x = (x + out) / (len(c) + 1)
    return np.clip(x, 0, 1) * 255


def fog(x, severity, draws):
    c = [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    x = np.array(x) / 255.
    max_val = x.max()
    x += c[0] * plasma_fractal(draws, wibbledecay=c[1])[:32, :32][..., np.newaxis]
    return np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255


FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")


def _frost_path(name: str) -> str:
    return str(importlib.resources.files("imagecorruptions") / "frost" / name)  # as our engine finds them


def frost(x, severity, draws):
    c = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][severity - 1]
    idx = draws.randint(5)
    frost = cv2.imread(_frost_path(FROST_FILES[idx]))
    frost = cv2.resize(frost, (0, 0), fx=0.2, fy=0.2)
    x_start, y_start = draws.randint(0, frost.shape[0] - 32), draws.randint(0, frost.shape[1] - 32)
    frost = frost[x_start:x_start + 32, y_start:y_start + 32][..., [2, 1, 0]]
    return np.clip(c[0] * np.array(x) + c[1] * frost, 0, 255)


def snow(x, severity, draws):
    c = [(0.1, 0.2, 1, 0.6, 8, 3, 0.95),
         (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
         (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
         (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][severity - 1]
    x = np.array(x, dtype=np.float32) / 255.
    snow_layer = draws.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    snow_layer = clipped_zoom(snow_layer[..., np.newaxis], c[2])
    snow_layer[snow_layer < c[3]] = 0
    snow_layer = PILImage.fromarray((np.clip(snow_layer.squeeze(), 0, 1) * 255).astype(np.uint8), mode="L")
    output = BytesIO()
    snow_layer.save(output, format="PNG")
    snow_layer = _motion_image_blur(output.getvalue(), c[4], c[5], draws.uniform(-135, -45)) / 255.
    snow_layer = snow_layer[..., np.newaxis]
    x = c[6] * x + (1 - c[6]) * np.maximum(x, cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(32, 32, 1) * 1.5 + 0.5)
    return np.clip(x + snow_layer + np.rot90(snow_layer, k=2), 0, 1) * 255


def spatter(x, severity, draws):
    c = [(0.62, 0.1, 0.7, 0.7, 0.5, 0),
         (0.65, 0.1, 0.8, 0.7, 0.5, 0),
         (0.65, 0.3, 1, 0.69, 0.5, 0),
         (0.65, 0.1, 0.7, 0.69, 0.6, 1),
         (0.65, 0.1, 0.5, 0.68, 0.6, 1)][severity - 1]
    x = np.array(x, dtype=np.float32) / 255.
    liquid_layer = draws.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    liquid_layer = gaussian(liquid_layer, sigma=c[2])
    liquid_layer[liquid_layer < c[3]] = 0
    if c[5] == 0:
        liquid_layer = (liquid_layer * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid_layer, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        dist = cv2.filter2D(dist, cv2.CV_8U, ker)
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = cv2.cvtColor(liquid_layer * dist, cv2.COLOR_GRAY2BGRA)
        m /= np.max(m, axis=(0, 1))
        m *= c[4]
        color = np.concatenate((175 / 255. * np.ones_like(m[..., :1]),
                                238 / 255. * np.ones_like(m[..., :1]),
                                238 / 255. * np.ones_like(m[..., :1])), axis=2)
        color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
        x = cv2.cvtColor(x, cv2.COLOR_BGR2BGRA)
        return cv2.cvtColor(np.clip(x + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255
    m = np.where(liquid_layer > c[3], 1, 0)
    m = gaussian(m.astype(np.float32), sigma=c[4])
    m[m < 0.8] = 0
    color = np.concatenate((63 / 255. * np.ones_like(x[..., :1]),
                            42 / 255. * np.ones_like(x[..., :1]),
                            20 / 255. * np.ones_like(x[..., :1])), axis=2)
    color *= m[..., np.newaxis]
    x *= (1 - m[..., np.newaxis])
    return np.clip(x + color, 0, 1) * 255


def contrast(x, severity, draws):
    c = [.75, .5, .4, .3, 0.15][severity - 1]
    x = np.array(x) / 255.
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def brightness(x, severity, draws):
    c = [.05, .1, .15, .2, .3][severity - 1]
    x = np.array(x) / 255.
    x = sk.color.rgb2hsv(x)
    x[:, :, 2] = np.clip(x[:, :, 2] + c, 0, 1)
    x = sk.color.hsv2rgb(x)
    return np.clip(x, 0, 1) * 255


def saturate(x, severity, draws):
    c = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)][severity - 1]
    x = np.array(x) / 255.
    x = sk.color.rgb2hsv(x)
    x[:, :, 1] = np.clip(x[:, :, 1] * c[0] + c[1], 0, 1)
    x = sk.color.hsv2rgb(x)
    return np.clip(x, 0, 1) * 255


def jpeg_compression(x, severity, draws):
    c = [80, 65, 58, 50, 40][severity - 1]
    output = BytesIO()
    x.save(output, "JPEG", quality=c)
    return PILImage.open(output)


def pixelate(x, severity, draws):
    c = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    x = x.resize((int(32 * c), int(32 * c)), PILImage.BOX)
    return x.resize((32, 32), PILImage.BOX)


def elastic_transform(image, severity, draws):
    IMSIZE = 32
    c = [(IMSIZE * 0, IMSIZE * 0, IMSIZE * 0.08),
         (IMSIZE * 0.05, IMSIZE * 0.2, IMSIZE * 0.07),
         (IMSIZE * 0.08, IMSIZE * 0.06, IMSIZE * 0.06),
         (IMSIZE * 0.1, IMSIZE * 0.04, IMSIZE * 0.05),
         (IMSIZE * 0.1, IMSIZE * 0.03, IMSIZE * 0.03)][severity - 1]
    image = np.array(image, dtype=np.float32) / 255.
    shape = image.shape
    shape_size = shape[:2]
    center_square = np.float32(shape_size) // 2
    square_size = min(shape_size) // 3
    pts1 = np.float32([center_square + square_size,
                       [center_square[0] + square_size, center_square[1] - square_size],
                       center_square - square_size])
    pts2 = pts1 + draws.uniform(-c[2], c[2], size=pts1.shape).astype(np.float32)
    M = cv2.getAffineTransform(pts1, pts2)
    image = cv2.warpAffine(image, M, shape_size[::-1], borderMode=cv2.BORDER_REFLECT_101)
    dx = (gaussian(draws.uniform(-1, 1, size=shape[:2]), c[1], mode="reflect", truncate=3) * c[0]).astype(np.float32)
    dy = (gaussian(draws.uniform(-1, 1, size=shape[:2]), c[1], mode="reflect", truncate=3) * c[0]).astype(np.float32)
    dx, dy = dx[..., np.newaxis], dy[..., np.newaxis]
    x, y, z = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    indices = np.reshape(y + dy, (-1, 1)), np.reshape(x + dx, (-1, 1)), np.reshape(z, (-1, 1))
    return np.clip(map_coordinates(image, indices, order=1, mode="reflect").reshape(shape), 0, 1) * 255


SCRIPT = {fn.__name__: fn for fn in (
    gaussian_noise, shot_noise, impulse_noise, defocus_blur, glass_blur, motion_blur, zoom_blur, snow,
    frost, fog, brightness, contrast, elastic_transform, pixelate, jpeg_compression,
    speckle_noise, gaussian_blur, spatter, saturate)}
assert set(SCRIPT) == set(ALL_CORRUPTIONS)


def run_script(clean: np.ndarray, name: str, severity: int, draws: list) -> np.ndarray:
    """The script's loop: ``np.uint8(corruption(convert_img(img)))`` for each uint8 HWC image."""
    import torchvision.transforms as trn

    convert_img = trn.Compose([trn.ToTensor(), trn.ToPILImage()])
    return np.stack([np.uint8(SCRIPT[name](convert_img(img), severity, d)) for img, d in zip(clean, draws, strict=True)])


# --------------------------------------------------------------------- our draws, replayed


def _frost_shapes() -> list[tuple[int, int]]:
    return [cv2.resize(cv2.imread(_frost_path(f)), (0, 0), fx=0.2, fy=0.2).shape[:2] for f in FROST_FILES]


def _chunk_draws(name: str, c, b: int, g: torch.Generator) -> list[list]:
    """The generator calls of ``evaluation/corruptions/fast.py``'s ``name`` for a chunk of ``b``
    32 px images, in its order, as per-image values in the order the script asks for them."""
    h = w = SIZE
    per = [[] for _ in range(b)]
    if name in ("gaussian_noise", "speckle_noise"):
        n = torch.randn((b, 3, h, w), generator=g).permute(0, 2, 3, 1).numpy()
        for i in range(b):
            per[i].append(n[i])
    elif name in ("shot_noise", "impulse_noise"):
        bits = torch.empty((b, 3, h, w), dtype=torch.int32).random_(generator=g)  # [0, 2^31)
        u = (bits.double() * 2.0**-31).permute(0, 2, 3, 1).numpy()
        for i in range(b):
            per[i].append(u[i])
    elif name == "glass_blur":
        delta, iterations = c[1], c[2]
        span, m = 2 * delta, h - 2 * delta
        for _ in range(iterations):
            r = torch.empty((m, b, m), dtype=torch.int32).random_(0, span * span, generator=g).numpy()
            dx, dy = r % span - delta, r // span - delta  # (rows bottom up, batch, columns right to left)
            for i in range(b):
                per[i].extend(np.stack([dx[:, i], dy[:, i]], axis=-1).reshape(-1, 2))
    elif name == "motion_blur":
        angles = torch.rand((b,), generator=g, dtype=torch.float64).numpy()  # U(-45, 45) = -45 + 90 u
        for i in range(b):
            per[i].append(angles[i])
    elif name == "snow":
        layer = torch.randn((b, 1, h, w), generator=g).numpy()  # ours: this * c1 + c0 in float32
        angles = torch.rand((b,), generator=g, dtype=torch.float64).numpy()
        for i in range(b):
            per[i] += [layer[i, 0], angles[i]]
    elif name == "frost":
        shapes = _frost_shapes()
        idx = torch.randint(0, 5, (b,), generator=g).tolist()
        for i, k in enumerate(idx):
            top = int(torch.randint(0, shapes[k][0] - h, (1,), generator=g))
            left = int(torch.randint(0, shapes[k][1] - w, (1,), generator=g))
            per[i] += [k, top, left]
    elif name == "fog":
        step = SIZE
        while step >= 2:
            k = SIZE // step
            for _ in range(3):  # squares, then the two diamond fills
                u = torch.rand((b, k, k), generator=g).numpy()
                for i in range(b):
                    per[i].append(u[i])
            step //= 2
    elif name == "elastic_transform":
        jitter = torch.rand((b, 3, 2), generator=g, dtype=torch.float64).numpy()
        noise = torch.rand((b, 2, h, w), generator=g).numpy()  # dx, then dy
        for i in range(b):
            per[i] += [jitter[i], noise[i, 0], noise[i, 1]]
    else:
        raise ValueError(name)
    return per


def our_draws(n: int, name: str, severity: int, seed: int) -> list[ReplayDraws]:
    """Per image, the draws ``corrupt(..., seed=seed)`` made for a CPU batch of ``n`` 32 px images."""
    c = params_for("cifar10", name, severity)
    if name == "spatter":  # per image on the CPU: RandomState(sub_seed(seed, i)).normal(loc, scale), i.e.
        # loc + scale * standard_normal() of the same stream
        return [ReplayDraws([np.random.RandomState(sub_seed(seed, i)).standard_normal((SIZE, SIZE))])
                for i in range(n)]
    step = max(1, CPU_CHUNK_PIXELS // (SIZE * SIZE))  # the engine's chunks, each with its own generator
    out = []
    for k in range(-(-n // step)):
        g = torch.Generator().manual_seed(sub_seed(seed, k))
        out += [ReplayDraws(v) for v in _chunk_draws(name, c, min(n, (k + 1) * step) - k * step, g)]
    return out


def ours(clean: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    x = torch.from_numpy(clean).permute(0, 3, 1, 2).float() / 255
    y = corrupt(x, name, severity, table="cifar10", backend="torch", seed=seed)
    return (y * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


# ------------------------------------------------------------------------------------- images


def photos(n: int) -> np.ndarray:
    """``n`` real 32 px photos (N, 32, 32, 3) uint8: crops of scikit-learn's two sample photos and
    matplotlib's ``grace_hopper.jpg``, each resized so its shorter side is 48, 64, 96 or 128 px,
    on a 32 px grid, then a seeded choice of ``n``."""
    import matplotlib.cbook
    from sklearn.datasets import load_sample_images

    sources = list(load_sample_images().images)
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        sources.append(np.asarray(PILImage.open(f).convert("RGB")))
    crops = []
    for arr in sources:
        img = PILImage.fromarray(arr)
        for side in (48, 64, 96, 128):
            s = side / min(img.size)
            small = np.asarray(img.resize((round(img.size[0] * s), round(img.size[1] * s)), PILImage.BICUBIC))
            for top in range(0, small.shape[0] - SIZE + 1, 16):
                for left in range(0, small.shape[1] - SIZE + 1, 16):
                    crops.append(small[top:top + SIZE, left:left + SIZE])
    if len(crops) < n:
        raise SystemExit(f"--images: at most {len(crops)} crops available, got {n}")
    pick = np.sort(np.random.RandomState(0).choice(len(crops), n, replace=False))
    return np.stack([crops[i] for i in pick])


# ------------------------------------------------------------------------------------ metrics


def pixel_diff(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {"mean": float(d.mean()), "max": int(d.max()), "within1": float((d <= 1).mean())}


def set_stats(y: np.ndarray, clean: np.ndarray) -> dict:
    """Mean absolute change from the clean image, per-image mean and std averaged over the set (levels)."""
    yf, xf = y.astype(np.float64), clean.astype(np.float64)
    return {"change": float(np.abs(yf - xf).mean()), "mean": float(yf.mean(axis=(1, 2, 3)).mean()),
            "std": float(yf.std(axis=(1, 2, 3)).mean())}


def rel(a: dict, b: dict) -> dict:
    return {k: (a[k] - b[k]) / b[k] if b[k] else 0.0 for k in a}


# -------------------------------------------------------------------------- corruption error


def train_digits_cnn(seed: int = 0) -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """A tiny CNN on the project's digits (32 px RGB), trained on the 1,437 training images; returns
    the model and the 360 test images (uint8 NHWC) and labels."""
    from torch import nn

    from evaluation.data.digits import load_digits_dataset

    torch.manual_seed(seed)
    train, test = load_digits_dataset("train"), load_digits_dataset("test")
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    x, y = train.images.float() / 255, train.labels
    for _ in range(EPOCHS):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    return model, test.images.permute(0, 2, 3, 1).numpy().copy(), test.labels.numpy()


@torch.no_grad()
def error(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    logits = model(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255)
    return float((logits.argmax(1).numpy() != labels).mean() * 100)


def corruption_errors(model, images: np.ndarray, labels: np.ndarray, name: str, severity: int, seed: int,
                      seeds: int) -> dict:
    """Error (%) on ours (``seeds`` seeds from ``seed``), the script with our draws (``seed``) and the
    script with its own draws (``seeds`` seeds); one of each for a deterministic corruption."""
    n = len(images)
    k = seeds if name in RANDOM else 1
    draws = our_draws(n, name, severity, seed) if name in RANDOM else [None] * n
    out = {"same": error(model, run_script(images, name, severity, draws), labels),
           "ours": [error(model, ours(images, name, severity, seed + j), labels) for j in range(k)]}
    if name in RANDOM:
        out["script"] = [error(model, run_script(images, name, severity, [NumpyDraws(script_seed(100 + j, seed, i))
                                                                           for i in range(n)]), labels)
                         for j in range(1, k + 1)]
    return out


# ------------------------------------------------------------------------------------- main


def measure(clean: np.ndarray, name: str, severity: int, seed: int, seeds: tuple[int, int]) -> dict:
    """Ours, the script with our draws and (random corruptions) the script with its own draws twice."""
    n = len(clean)
    sets = {"ours": ours(clean, name, severity, seed)}
    draws = our_draws(n, name, severity, seed) if name in RANDOM else [None] * n
    sets["same"] = run_script(clean, name, severity, draws)
    if name in RANDOM:
        for tag, s in zip(("script", "script_b"), seeds, strict=True):
            sets[tag] = run_script(clean, name, severity, [NumpyDraws(script_seed(s, seed, i)) for i in range(n)])
    return sets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=256, help="real 32 px photos (default 256)")
    p.add_argument("--corruptions", default="all", help="comma-separated names or 'all' (default)")
    p.add_argument("--skip-ce", action="store_true", help="no corruption-error part")
    p.add_argument("--ce-seeds", type=int, default=4, help="seeds per side for the random corruptions' CE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write every figure here")
    args = p.parse_args()
    names = ALL_CORRUPTIONS if args.corruptions == "all" else tuple(args.corruptions.split(","))
    for name in names:
        if name not in ALL_CORRUPTIONS:
            raise SystemExit(f"--corruptions: unknown {name!r}; valid: {list(ALL_CORRUPTIONS)}")
    try:
        import wand.image  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"Wand / ImageMagick is needed for motion blur and snow (as in the script): {e}") from None
    clean = photos(args.images)
    torch.set_num_threads(2)
    t0 = time.time()
    model = test_x = test_y = None
    if not args.skip_ce:
        model, test_x, test_y = train_digits_cnn(args.seed)
    result = {"images": args.images, "seed": args.seed, "torch": torch.__version__, "numpy": np.__version__,
              "scikit-image": sk.__version__, "opencv": cv2.__version__, "python": platform.python_version(),
              "paths": fast_backend_coverage("cpu"), "corruptions": {}}
    if model is not None:
        result["clean_error"] = error(model, test_x, test_y)
    try:
        from wand.version import MAGICK_VERSION
        result["imagemagick"] = MAGICK_VERSION
    except Exception:  # noqa: BLE001 - only a label
        pass
    for name in names:
        rows = []
        for sev in SEVERITIES:
            seed = 1000 * args.seed + 10 * sev  # a stream per severity, as evaluation's corrupted sets have
            sets = measure(clean, name, sev, seed, (1, 2))
            row = {"severity": sev, "same_draws": pixel_diff(sets["ours"], sets["same"])}
            stats = {k: set_stats(v, clean) for k, v in sets.items()}
            row["stats"] = stats
            if name in RANDOM:
                row["rel_ours"] = rel(stats["ours"], stats["script"])
                row["rel_floor"] = rel(stats["script_b"], stats["script"])
            if model is not None:
                row["error"] = corruption_errors(model, test_x, test_y, name, sev, seed, args.ce_seeds)
            rows.append(row)
            print(f"{name} {sev}: same draws {row['same_draws']}"
                  + (f" rel {row['rel_ours']} floor {row['rel_floor']}" if name in RANDOM else "")
                  + (f" err {row['error']}" if model is not None else "") + f" [{time.time() - t0:.0f} s]",
                  flush=True)
        result["corruptions"][name] = rows
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
    print_table(result)


def print_table(result: dict) -> None:
    """The markdown table of docs/evaluation.md: per corruption, over its five severities.

    Same draws: the largest mean and max difference and the smallest share within 1 level over the
    severities. In distribution: ours vs the script's own draws, relative, the range over severities
    of the change from clean and the largest |difference| of the per-image mean and std; the noise
    floor is the largest |difference| of the three between the script's seeds A and B. CE: per seed
    the mean error over the severities, then the mean over seeds (and their range).
    """
    ce = "clean_error" in result
    print("\n| corruption | same draws: mean / max diff (levels), within 1 | change from clean: ours vs script "
          "| per-image mean, std: ours vs script | noise floor | CE (%) ours (seeds) | script, our draws "
          "| script, own draws (seeds) | ours - script |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rows in result["corruptions"].items():
        d = [r["same_draws"] for r in rows]
        cells = [f"{max(x['mean'] for x in d):.3f} / {max(x['max'] for x in d)}, "
                 f"{100 * min(x['within1'] for x in d):.2f} %"]
        if "rel_ours" in rows[0]:
            r_o = [100 * r["rel_ours"]["change"] for r in rows]
            m_s = [100 * abs(r["rel_ours"][k]) for r in rows for k in ("mean", "std")]
            floor = [100 * abs(v) for r in rows for v in r["rel_floor"].values()]
            cells += [f"{min(r_o):+.1f} to {max(r_o):+.1f} %", f"<= {max(m_s):.1f} %", f"{max(floor):.1f} %"]
        else:
            cells += ["deterministic", "", ""]
        if ce:
            e = {k: np.mean([r["error"][k] for r in rows], axis=0) for k in rows[0]["error"]}
            ours_e = np.atleast_1d(e["ours"])
            spread = f" ({ours_e.min():.1f} to {ours_e.max():.1f})" if len(ours_e) > 1 else ""
            cells += [f"{ours_e.mean():.1f}{spread}", f"{e['same']:.1f}"]
            if "script" in e:
                cells += [f"{e['script'].mean():.1f} ({e['script'].min():.1f} to {e['script'].max():.1f})",
                          f"{ours_e.mean() - e['script'].mean():+.1f}"]
            else:
                cells += ["", f"{ours_e.mean() - e['same']:+.1f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if ce:
        print(f"\nclean error {result['clean_error']:.1f} %")


if __name__ == "__main__":
    main()
