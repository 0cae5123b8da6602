"""Parameter tables of the 19 corruptions, severities 1..5.

Three tables exist (docs/evaluation.md, "Corruption tables"):

* ``"imagenet_c"``: the released ImageNet-C, i.e. the recipe of the authors' ``make_imagenet_c.py``
  (hendrycks/robustness, ``ImageNet-C/create_c/``) for 224 px images: its elastic parameters (with
  the random affine warp), frost drawn from the first five images at their own size, pixelate
  upsampled with BOX, zooms trimmed at the centre, ImageMagick's motion blur (no early stop), and
  every corrupted image saved as JPEG quality 85 at the end. The default for ImageNet-sized data,
  and the table that the published AlexNet errors (mCE's denominators) belong to.
* ``"imagecorruptions"``: the variant of the package ``imagecorruptions`` (pip
  ``imagecorruptions-imaug``, ``imagecorruptions/corruptions.py``), which works at any size; the
  reference backend runs it. ``"imagenet"`` is its former name and still accepted.
* ``"cifar10"``: the CIFAR-10-C parameters (32 px images) of ``make_cifar_c.py`` by the same
  authors, written out here by hand (no final JPEG there: the images were stored as ``.npy``).

Besides the numbers, the scripts differ in details of form, recorded in :class:`CorruptionTable`.
Elastic parameters are stored as fractions of the image side so one formula serves every table
(see ``elastic_transform`` below).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

BENCHMARK_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS: tuple[str, ...] = BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class CorruptionTable:
    """One parameter table: ``params[name][severity - 1]`` plus the few differences of form.

    Attributes:
        name: ``"imagenet_c"``, ``"imagecorruptions"`` or ``"cifar10"``.
        params: per corruption, a 5-tuple of parameters (one per severity).
        pixelate_upsample: PIL filter of pixelate's second resize, ``"nearest"`` or ``"box"``.
        zoom_trim: after zooming, keep the ``"topleft"`` (imagecorruptions) or ``"center"``
            (make_cifar_c) H x W window.
        frost_scale: ``None`` = scale each frost image to cover the input x 1.1 (imagecorruptions);
            a float = fixed scale (make_cifar_c uses 0.2, make_imagenet_c their own size, 1.0).
        frost_choices: how many of the six bundled frost images are drawn from (the scripts: 5).
        motion_stop: stop the shifted copies at the first one that leaves the image
            (imagecorruptions' rule); ``False`` = every copy, edge pixels repeated (ImageMagick's
            ``MotionBlurImage``, which both scripts call).
        snow_png: the snow layer goes through the scripts' 8-bit PNG round trip to ImageMagick:
            truncated to 8 bits before the motion blur and after it (imagecorruptions rounds after).
        final_jpeg: JPEG quality every corrupted image is saved with at the end (make_imagenet_c:
            85), or ``None``.
        image_size: the image side the recipe was written for (``None``: any).
    """

    name: str
    params: dict[str, tuple] = field(repr=False)
    pixelate_upsample: str = "nearest"
    zoom_trim: str = "topleft"
    frost_scale: float | None = None
    frost_choices: int = 6
    motion_stop: bool = True
    snow_png: bool = False
    final_jpeg: int | None = None
    image_size: int | None = None


def _elastic_imagenet(alpha: float) -> tuple[float, float, float]:
    # imagecorruptions: dx = gaussian(U(-0.005 S, 0.005 S), sigma=0.01 S) * alpha, no affine.
    # gaussian() is linear, so this is gaussian(U(-1, 1), 0.01 S) * (alpha * 0.005) * S.
    return (alpha * 0.005, 0.01, 0.0)


IMAGECORRUPTIONS_TABLE = CorruptionTable(
    name="imagecorruptions",
    params={
        "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
        "shot_noise": (60, 25, 12, 5, 3),
        "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
        "speckle_noise": (0.15, 0.2, 0.35, 0.45, 0.6),
        "gaussian_blur": (1, 2, 3, 4, 6),
        # (sigma, max_delta, iterations)
        "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
        # (disk radius, alias blur)
        "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
        # (radius, sigma)
        "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
        # zoom factors
        "zoom_blur": (
            tuple(np.arange(1, 1.11, 0.01)), tuple(np.arange(1, 1.16, 0.01)),
            tuple(np.arange(1, 1.21, 0.02)), tuple(np.arange(1, 1.26, 0.02)),
            tuple(np.arange(1, 1.31, 0.03)),
        ),
        # (loc, scale, zoom, threshold, blur radius, blur sigma, blend)
        "snow": (
            (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
            (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
            (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
        ),
        # (image weight, frost weight)
        "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
        # (strength, wibble decay)
        "fog": ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),
        "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
        "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
        # (saturation scale, saturation shift)
        "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
        "jpeg_compression": (25, 18, 15, 10, 7),
        "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
        # (displacement amplitude / S, smoothing sigma / S, affine jitter / S), S = image side
        "elastic_transform": tuple(
            _elastic_imagenet(250 * f) for f in (0.05, 0.065, 0.085, 0.1, 0.12)
        ),
        # (loc, scale, sigma, threshold, intensity or mud sigma, mode: 0 water / 1 mud)
        "spatter": (
            (0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
            (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1),
            (0.67, 0.4, 1, 0.65, 1.5, 1),
        ),
    },
)

CIFAR10_TABLE = CorruptionTable(
    name="cifar10",
    params={
        "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
        "shot_noise": (500, 250, 100, 75, 50),
        "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
        "speckle_noise": (0.06, 0.1, 0.12, 0.16, 0.2),
        "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1),
        "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
        "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
        # make_cifar_c uses ImageMagick's motion blur with these (radius, sigma); see fast.py.
        "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
        "zoom_blur": (
            tuple(np.arange(1, 1.06, 0.01)), tuple(np.arange(1, 1.11, 0.01)),
            tuple(np.arange(1, 1.16, 0.01)), tuple(np.arange(1, 1.21, 0.01)),
            tuple(np.arange(1, 1.26, 0.01)),
        ),
        "snow": (
            (0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
            (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
            (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
        ),
        "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
        "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
        "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
        "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
        "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
        "jpeg_compression": (80, 65, 58, 50, 40),
        "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
        # make_cifar_c: alpha = 32 a, sigma = 32 b, affine jitter = 32 d, with U(-1, 1) noise.
        "elastic_transform": (
            (0.0, 0.0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03),
        ),
        "spatter": (
            (0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0),
            (0.65, 0.3, 1, 0.69, 0.5, 0), (0.65, 0.1, 0.7, 0.69, 0.6, 1),
            (0.65, 0.1, 0.5, 0.68, 0.6, 1),
        ),
    },
    pixelate_upsample="box",
    zoom_trim="center",
    frost_scale=0.2,
    frost_choices=5,
    motion_stop=False,
    snow_png=True,
    image_size=32,
)


def _elastic_release(alpha: float, sigma: float, affine: float) -> tuple[float, float, float]:
    # make_imagenet_c writes its elastic parameters in pixels of a 224 px image as 244 * f (its
    # comment: "244 should have been 224, but ultimately nothing is incorrect"); as fractions of the side.
    return (244 * alpha / 224, 244 * sigma / 224, 244 * affine / 224)


IMAGENET_C_TABLE = dataclasses.replace(
    IMAGECORRUPTIONS_TABLE,
    name="imagenet_c",
    params={**IMAGECORRUPTIONS_TABLE.params, "elastic_transform": tuple(_elastic_release(*p) for p in (
        (2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02)))},
    pixelate_upsample="box",
    zoom_trim="center",
    frost_scale=1.0,
    frost_choices=5,
    motion_stop=False,
    snow_png=True,
    final_jpeg=85,
    image_size=224,
)

TABLES: dict[str, CorruptionTable] = {
    "imagenet_c": IMAGENET_C_TABLE, "imagecorruptions": IMAGECORRUPTIONS_TABLE, "cifar10": CIFAR10_TABLE,
}
TABLE_ALIASES: dict[str, str] = {"imagenet": "imagecorruptions"}  # former name, kept for old spaces and checkpoints


def table_name(name: str) -> str:
    """The table's own name (an alias resolved); ``ValueError`` naming the valid tables otherwise."""
    name = TABLE_ALIASES.get(name, name)
    if name not in TABLES:
        raise ValueError(f"unknown corruption table {name!r}; valid tables: {list(TABLES)} "
                         f"({', '.join(f'{a!r} = {b!r}' for a, b in TABLE_ALIASES.items())})")
    return name


def get_table(name: str) -> CorruptionTable:
    """The table called ``name`` (or an alias of it); ``ValueError`` naming the valid tables otherwise."""
    return TABLES[table_name(name)]


def auto_table(image_size: int) -> str:
    """The table for images of this side: ``cifar10`` below 128 px, else ``imagenet_c``."""
    return "cifar10" if image_size < 128 else "imagenet_c"


def check_corruption(name: str, severity: int) -> None:
    """Raise ``ValueError`` unless ``name`` is one of the 19 corruptions and severity is 1..5."""
    if name not in ALL_CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid corruptions: {list(ALL_CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")


def params_for(table: str | CorruptionTable, name: str, severity: int):
    """The parameters of corruption ``name`` at ``severity`` in ``table``."""
    check_corruption(name, severity)
    tab = get_table(table) if isinstance(table, str) else table
    return tab.params[name][severity - 1]
