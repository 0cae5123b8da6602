"""The three corruption tables: the released ImageNet-C recipe (``imagenet_c``), the package's variant
(``imagecorruptions``) and CIFAR-10-C (``cifar10``), checked against the steps of the authors'
``make_imagenet_c.py`` / ``make_cifar_c.py`` (written here in NumPy, SciPy, OpenCV and Pillow as the
scripts call them) and, where the scripts call ImageMagick, against ImageMagick itself (Wand; skipped
where the library is not installed)."""

from __future__ import annotations

import hashlib
import importlib.resources
import io

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.corruptions import (
    SEVERITIES,
    auto_table,
    corrupt,
    get_table,
    params_for,
    table_name,
)
from tests.evaluation.conftest import real_images


@pytest.fixture(scope="module")
def photos224() -> torch.Tensor:
    return real_images(4, 224)


def _pillow_jpeg85(u8: np.ndarray) -> np.ndarray:
    """make_imagenet_c's last step: ``Image.fromarray(np.uint8(img)).save(path, quality=85, optimize=True)``."""
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=85, optimize=True)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _u8(x: torch.Tensor) -> np.ndarray:
    return (x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_table_names_and_defaults():
    assert table_name("imagenet") == "imagecorruptions"  # the former name keeps old spaces working
    assert auto_table(32) == "cifar10" and auto_table(224) == "imagenet_c"
    with pytest.raises(ValueError, match="valid tables: \\['imagenet_c', 'imagecorruptions', 'cifar10'\\]"):
        get_table("imagenet-c")


def test_release_elastic_parameters_are_the_scripts():
    # make_imagenet_c.py, in pixels of a 224 px image: (alpha, sigma, affine) = 244 * (...)
    script = [(2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02)]
    for s, row in zip(SEVERITIES, script, strict=True):
        ours = [v * 224 for v in params_for("imagenet_c", "elastic_transform", s)]
        assert ours == pytest.approx([244 * v for v in row])
        assert params_for("imagecorruptions", "elastic_transform", s) != params_for("imagenet_c", "elastic_transform", s)


# git blob hashes of ImageNet-C/create_c/frost1.png .. frost6.jpg in hendrycks/robustness
RELEASE_FROST = {
    "frost1.png": "c7b78a17938df51894497b4782decbd82532dd5f", "frost2.png": "48f7a861ffa41b6d7496b701fef96d5edf739282",
    "frost3.png": "d47f9d25f41251ee9a66b294c0bbfad6053017c9", "frost4.jpg": "f8b0c413176d70150b593e029d84b4a88c21dd4b",
    "frost5.jpg": "95dc9056926d8201df760535f9bb9112f012e862", "frost6.jpg": "14e5d58e762a5d0808df9fa6494fd6d78ee4409b",
}


def test_release_frost_is_the_scripts():
    import cv2

    from evaluation.corruptions.fast import _frost_layers

    layers = _frost_layers(224, 224, get_table("imagenet_c").frost_scale)
    for (name, blob), layer in zip(RELEASE_FROST.items(), layers, strict=True):
        data = (importlib.resources.files("imagecorruptions") / "frost" / name).read_bytes()
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == blob, name  # the same files
        with importlib.resources.as_file(importlib.resources.files("imagecorruptions") / "frost" / name) as p:
            native = cv2.imread(str(p))[..., [2, 1, 0]]
        assert torch.equal(layer, torch.from_numpy(np.ascontiguousarray(native)).permute(2, 0, 1).float())
    assert get_table("imagenet_c").frost_choices == 5  # np.random.randint(5): frost6 is never drawn


@pytest.mark.parametrize("severity", (1, 5))
def test_release_ends_with_jpeg85(photos224, severity):
    # contrast is the same in both ImageNet tables; the release adds the JPEG-85 save
    c = params_for("imagenet_c", "contrast", severity)
    variant = corrupt(photos224, "contrast", severity, table="imagecorruptions")
    release = corrupt(photos224, "contrast", severity, table="imagenet_c")
    assert not torch.equal(variant, release)
    for i in range(len(photos224)):
        x = np.asarray(_u8(photos224[i]), dtype=np.float64) / 255  # the script's contrast, then its save
        means = x.mean(axis=(0, 1), keepdims=True)
        script = _pillow_jpeg85(np.uint8(np.clip((x - means) * c + means, 0, 1) * 255))
        diff = np.abs(_u8(release[i]).astype(int) - script)
        assert diff.max() <= 1 and diff.mean() <= 0.05, (severity, diff.max(), diff.mean())


@pytest.mark.parametrize("severity", SEVERITIES)
def test_release_pixelate_is_the_scripts(photos224, severity):
    c = params_for("imagenet_c", "pixelate", severity)
    release = corrupt(photos224, "pixelate", severity, table="imagenet_c")
    for i in range(len(photos224)):
        img = Image.fromarray(_u8(photos224[i]))  # BOX down, BOX up (imagecorruptions: NEAREST up)
        img = img.resize((int(224 * c), int(224 * c)), Image.BOX).resize((224, 224), Image.BOX)
        assert np.array_equal(_u8(release[i]), _pillow_jpeg85(np.asarray(img)))


def test_large_reflect_gaussian_is_scipys():
    # severity 1 of the release blurs the displacement noise with sigma = 170.8 px at 224 px
    # (kernel radius 512 > the image: several reflections), as skimage's gaussian(mode="reflect")
    from scipy.ndimage import gaussian_filter

    from evaluation.corruptions import filters

    noise = torch.rand(1, 1, 224, 224, dtype=torch.float64) * 2 - 1
    for sigma in (244 * 0.7, 244 * 0.08, 244 * 0.01):
        ours = filters.gaussian_blur(noise, (sigma, sigma), mode="reflect", truncate=3)[0, 0].numpy()
        ref = gaussian_filter(noise[0, 0].numpy(), sigma, mode="reflect", truncate=3)
        assert np.abs(ours - ref).max() < 1e-9 + 1e-6 * np.abs(ref).max()


@pytest.mark.parametrize("severity", SEVERITIES)
def test_release_elastic_is_the_scripts_for_the_same_draws(photos224, severity):
    """make_imagenet_c's elastic (random affine, blurred uniform noise, map_coordinates) with our
    engine's own draws (the affine jitter, then the noise) replayed into the script's steps."""
    import cv2
    from scipy.ndimage import gaussian_filter, map_coordinates

    from evaluation.corruptions.fast import elastic_transform

    tab = get_table("imagenet_c")
    amp, sig, jit = (v * 224 for v in params_for(tab, "elastic_transform", severity))
    x = photos224[:2]
    ours = elastic_transform(x.clone(), params_for(tab, "elastic_transform", severity), tab,
                             torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)  # replay: jitter (B, 3, 2) float64, then noise (B, 2, H, W)
    jitter = (torch.rand((2, 3, 2), generator=g, dtype=torch.float64) * 2 * jit - jit).numpy()
    noise = (torch.rand((2, 2, 224, 224), generator=g) * 2 - 1).numpy()
    for i in range(2):
        image = x[i].permute(1, 2, 0).numpy().astype(np.float32)
        center, size = np.float32((224, 224)) // 2, 224 // 3
        pts1 = np.float32([center + size, [center[0] + size, center[1] - size], center - size])
        m = cv2.getAffineTransform(pts1, (pts1 + jitter[i]).astype(np.float32))
        image = cv2.warpAffine(image, m, (224, 224), borderMode=cv2.BORDER_REFLECT_101)
        dx = (gaussian_filter(noise[i, 0].astype(np.float64), sig, mode="reflect", truncate=3) * amp).astype(np.float32)
        dy = (gaussian_filter(noise[i, 1].astype(np.float64), sig, mode="reflect", truncate=3) * amp).astype(np.float32)
        xx, yy, zz = np.meshgrid(np.arange(224), np.arange(224), np.arange(3))
        idx = (yy + dy[..., None]).reshape(-1, 1), (xx + dx[..., None]).reshape(-1, 1), zz.reshape(-1, 1)
        script = np.clip(map_coordinates(image, idx, order=1, mode="reflect").reshape(224, 224, 3), 0, 1)
        diff = np.abs(ours[i].permute(1, 2, 0).numpy() - script) * 255
        assert diff.mean() < 0.05 and np.quantile(diff, 0.999) < 1.0, (severity, diff.mean(), diff.max())


def _wand_motion_blur():
    try:
        import ctypes

        from wand.api import library
        from wand.image import Image as WandImage
    except ImportError:  # Wand not installed or no ImageMagick library
        pytest.skip("Wand / ImageMagick's MagickWand library is not installed")
    library.MagickMotionBlurImage.argtypes = (ctypes.c_void_p, ctypes.c_double, ctypes.c_double, ctypes.c_double)

    def blur(u8: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
        import cv2

        buf = io.BytesIO()
        Image.fromarray(u8).save(buf, format="PNG")  # the scripts' PNG round trip
        with WandImage(blob=buf.getvalue()) as im:
            library.MagickMotionBlurImage(im.wand, radius, sigma, angle)
            out = cv2.imdecode(np.frombuffer(im.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)
        return out[..., [2, 1, 0]] if out.ndim == 3 else out

    return blur


@pytest.mark.parametrize("table,size", [("imagenet_c", 224), ("cifar10", 32)])
def test_motion_blur_is_imagemagicks(table, size):
    from evaluation.corruptions.fast import _motion_blur

    blur = _wand_motion_blur()
    x = real_images(1, size)
    for severity in SEVERITIES:
        radius, sigma = params_for(table, "motion_blur", severity)
        for angle in (-44.3, 12.9):
            ref = blur(_u8(x[0]), radius, sigma, angle).astype(int)
            ours = _motion_blur(x, radius, sigma, torch.tensor([angle], dtype=torch.float64), stop=False)
            ours = np.floor(ours[0].permute(1, 2, 0).numpy() * 255 + 1e-3).clip(0, 255).astype(int)
            diff = np.abs(ours - ref)
            assert diff.max() <= 1 and diff.mean() < 0.01, (table, severity, angle, diff.max(), diff.mean())


def _quantised_u8(y: torch.Tensor) -> np.ndarray:
    """The engine's final 8-bit truncation of a fast function's output, (B, H, W, 3) ints."""
    return np.floor(y.permute(0, 2, 3, 1).numpy() * 255 + 1e-3).clip(0, 255).astype(int)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_cifar_frost_is_the_scripts_for_the_same_draws(severity):
    """make_cifar_c's frost (cv2.resize by 0.2, a random 32 px crop of one of the first five images,
    c0 x + c1 frost, np.uint8) with our engine's draws (image index per item, then top and left)."""
    import cv2

    from evaluation.corruptions.fast import frost

    tab = get_table("cifar10")
    c = params_for(tab, "frost", severity)
    x = real_images(8, 32)
    ours = _quantised_u8(frost(x.clone(), c, tab, torch.Generator().manual_seed(5)))
    g = torch.Generator().manual_seed(5)
    names = list(RELEASE_FROST)
    for i, k in enumerate(torch.randint(0, 5, (len(x),), generator=g).tolist()):
        with importlib.resources.as_file(importlib.resources.files("imagecorruptions") / "frost" / names[k]) as p:
            layer = cv2.resize(cv2.imread(str(p)), (0, 0), fx=0.2, fy=0.2)
        top = int(torch.randint(0, layer.shape[0] - 32, (1,), generator=g))
        left = int(torch.randint(0, layer.shape[1] - 32, (1,), generator=g))
        layer = layer[top:top + 32, left:left + 32][..., [2, 1, 0]]
        script = np.uint8(np.clip(c[0] * _u8(x[i]) + c[1] * layer, 0, 255))
        diff = np.abs(ours[i] - script)
        assert diff.max() <= 1 and diff.mean() < 0.01, (severity, i, diff.max(), diff.mean())


@pytest.mark.parametrize("severity", SEVERITIES)
def test_cifar_snow_is_the_scripts_for_the_same_draws(severity):
    """make_cifar_c's snow with ImageMagick's motion blur itself (Wand; skipped without it): the
    layer N(c0, c1), centre-clipped zoom (SciPy), threshold, 8-bit PNG, MotionBlurImage at the
    angle, / 255; then the grey lift and the layer plus its 180-degree rotation. Our engine's draws
    (the layer's normals, then the angles) are replayed into those steps."""
    import cv2
    from scipy.ndimage import zoom as scizoom

    from evaluation.corruptions.fast import snow

    blur = _wand_motion_blur()
    tab = get_table("cifar10")
    c = params_for(tab, "snow", severity)
    x = real_images(4, 32)
    ours = _quantised_u8(snow(x.clone(), c, tab, torch.Generator().manual_seed(3)))
    g = torch.Generator().manual_seed(3)
    layers = torch.randn((len(x), 1, 32, 32), generator=g)[:, 0].double().numpy() * c[1] + c[0]
    angles = torch.rand((len(x),), generator=g, dtype=torch.float64).numpy() * 90 - 135
    for i in range(len(x)):
        img = x[i].permute(1, 2, 0).numpy()  # float32, as the script's np.array(x, np.float32) / 255
        side = int(np.ceil(32 / c[2]))
        top = (32 - side) // 2
        layer = scizoom(layers[i][top:top + side, top:top + side, None], (c[2], c[2], 1), order=1)
        trim = (layer.shape[0] - 32) // 2
        layer = layer[trim:trim + 32, trim:trim + 32]
        layer[layer < c[3]] = 0
        layer = blur((np.clip(layer[..., 0], 0, 1) * 255).astype(np.uint8), c[4], c[5], angles[i])[..., None] / 255
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).reshape(32, 32, 1)
        lifted = c[6] * img + (1 - c[6]) * np.maximum(img, grey * 1.5 + 0.5)
        script = np.uint8(np.clip(lifted + layer + np.rot90(layer, k=2), 0, 1) * 255)
        diff = np.abs(ours[i] - script)
        assert diff.max() <= 1 and diff.mean() < 0.02, (severity, i, diff.max(), diff.mean())
