"""Fast (torch) backend against the reference (imagecorruptions) on real photos, its own table.

Images: 16 crops of 64 x 64 px from scikit-image's sample photos (small, so the reference, glass
blur's numba loop included, stays quick).

Tolerances (in 8-bit levels, 1 level = 1/255):
* deterministic corruptions: every pixel within 1 level, mean |difference| <= 0.15 level (the
  reference truncates float64 values to uint8; float32 round-off moves a few across a boundary);
* random corruptions (torch and NumPy draw different numbers), on the difference image
  ``corrupted - clean``: mean within 1 level and standard deviation within 4 % for the noises,
  glass, motion blur and elastic; mean within 5 levels and std within 6 % for snow, frost and
  fog, whose per-image randomness (one frost photo or one fractal per image) is large, so they are
  compared on 512 crops of 32 px (on 16 images the mean of frost moved by up to 25 levels from
  seed to seed, on 128 by up to 7; on 512, seeds 0, 1, 2 and 5 gave at most 3.2 levels and 1.8 %);
* the deterministic cores of random corruptions match exactly for the same draws (motion blur
  given its angle; glass blur's vectorised pixel shuffle against a sequential loop).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation.corruptions import SEVERITIES, corrupt, fast_backend_coverage
from evaluation.corruptions.fast import _glass_shuffle_index, _motion_blur

DETERMINISTIC = ("defocus_blur", "gaussian_blur", "zoom_blur", "brightness", "contrast", "saturate",
                 "pixelate", "jpeg_compression", "spatter")
RANDOM_TIGHT = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur",
                "motion_blur", "elastic_transform")
RANDOM_LOOSE = ("snow", "frost", "fog")


def test_every_corruption_is_checked():
    assert set(DETERMINISTIC + RANDOM_TIGHT + RANDOM_LOOSE) == set(fast_backend_coverage())


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_match_reference(photos64, name, severity):
    fast = corrupt(photos64, name, severity, table="imagecorruptions", backend="torch", seed=3)
    ref = corrupt(photos64, name, severity, table="imagecorruptions", backend="reference", seed=3)
    diff = (fast - ref).abs() * 255
    assert diff.max().item() <= 1.0 + 1e-4, f"{name} s{severity}: max diff {diff.max().item():.2f} levels"
    assert diff.mean().item() <= 0.15, f"{name} s{severity}: mean diff {diff.mean().item():.3f} levels"


def _stats(out: torch.Tensor, clean: torch.Tensor) -> tuple[float, float]:
    d = (out - clean) * 255
    return d.mean().item(), d.std().item()


@pytest.mark.parametrize("severity", (1, 3, 5))
@pytest.mark.parametrize("name", RANDOM_TIGHT + RANDOM_LOOSE)
def test_random_match_reference_in_statistics(photos64, photos32_many, name, severity):
    x = photos64 if name in RANDOM_TIGHT else photos32_many
    fast_mean, fast_std = _stats(corrupt(x, name, severity, table="imagecorruptions", backend="torch", seed=5), x)
    ref_mean, ref_std = _stats(corrupt(x, name, severity, table="imagecorruptions", backend="reference", seed=5), x)
    mean_tol, std_tol = (1.0, 0.04) if name in RANDOM_TIGHT else (5.0, 0.06)
    assert abs(fast_mean - ref_mean) <= mean_tol, (name, severity, fast_mean, ref_mean)
    assert abs(fast_std / ref_std - 1) <= std_tol, (name, severity, fast_std, ref_std)


@pytest.mark.parametrize("angle", (-44.0, -10.3, 0.0, 30.7, -100.0))
def test_motion_blur_core_is_exact(photos64, angle):
    from imagecorruptions.corruptions import _motion_blur as reference_motion_blur

    img = photos64[0] * 255
    ref = reference_motion_blur(img.permute(1, 2, 0).numpy().astype(np.float64), radius=10, sigma=3, angle=angle)
    ours = _motion_blur(img[None], 10, 3, torch.tensor([angle]))[0].permute(1, 2, 0).numpy()
    assert np.abs(ref - ours).max() < 1e-3


def _glass_replay_draws(m, b, n, delta, g):
    """The fast engine's draws for one pass, (m, b, n, 2) (dx, dy) in visiting order: one
    r in [0, (2 delta)^2) per pixel, dx = r mod 2 delta - delta, dy = r div 2 delta - delta."""
    r = torch.empty((m, b, n), dtype=torch.int32).random_(0, (2 * delta) ** 2, generator=g).numpy()
    return np.stack([r % (2 * delta) - delta, r // (2 * delta) - delta], axis=-1)


@pytest.mark.parametrize("b,h,w,delta,iterations", [
    (2, 12, 11, 1, 2), (2, 12, 11, 2, 1), (2, 12, 11, 4, 2),  # small: every pixel near an edge
    (1, 224, 224, 3, 1), (2, 64, 57, 4, 2), (3, 9, 30, 2, 3), (2, 8, 9, 3, 2),
])
def test_glass_shuffle_matches_sequential_loop(b, h, w, delta, iterations):
    # The pointer-jumping formulation (no loop over rows) against the reference's loop (copy
    # semantics), replayed with the same draws, on square, rectangular and tiny images.
    g = torch.Generator().manual_seed(11)
    fast = _glass_shuffle_index(b, h, w, delta, iterations, g, torch.device("cpu"))
    g = torch.Generator().manual_seed(11)
    rows, cols = list(range(h - delta, delta, -1)), list(range(w - delta, delta, -1))
    src = np.tile(np.arange(h * w), (b, 1))
    for _ in range(iterations):
        draws = _glass_replay_draws(len(rows), b, len(cols), delta, g)
        for r, row in enumerate(rows):
            for i in range(b):
                s = src[i]
                for j, col in enumerate(cols):
                    dx, dy = draws[r, i, j]
                    s[row * w + col] = s[(row + dy) * w + col + dx]
    assert np.array_equal(fast.numpy(), src)


def test_reference_glass_loop_copies_rather_than_swaps():
    # Our shuffle relies on this reading of the reference: ``x[h, w], x[h', w'] = x[h', w'], x[h, w]``
    # on array views copies x[h', w'] into x[h, w], so values get duplicated (a swap never would).
    from imagecorruptions.corruptions import _shuffle_pixels_njit_glass_blur

    x = np.arange(32 * 32 * 3, dtype=np.float64).reshape(32, 32, 3)
    y = _shuffle_pixels_njit_glass_blur(32, 32, x.copy(), (0.7, 1, 1), 3)
    assert len(np.unique(y[..., 0])) < 32 * 32
    assert set(np.unique(y[..., 0])) <= set(np.unique(x[..., 0]))


@pytest.mark.parametrize("mode", ["reflect", "mirror"])
def test_warp_core_matches_scipy_and_opencv(mode):
    # elastic_transform's sampler: SciPy map_coordinates(order=1, mode="reflect") for the
    # displacement field; OpenCV BORDER_REFLECT_101 for make_cifar_c's affine warp.
    import cv2
    from scipy.ndimage import map_coordinates

    from evaluation.corruptions.filters import bilinear_sample

    rng = np.random.default_rng(0)
    img = rng.random((9, 7))
    ys, xs = rng.uniform(-4, 12, (9, 7)), rng.uniform(-4, 10, (9, 7))
    ours = bilinear_sample(torch.tensor(img)[None, None], torch.tensor(ys)[None], torch.tensor(xs)[None], mode)
    if mode == "reflect":
        ref = map_coordinates(img, [ys, xs], order=1, mode="reflect")
    else:
        ref = cv2.remap(img.astype(np.float32), xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT_101)
    assert np.abs(ours[0, 0].numpy() - ref).max() < 1e-5


@pytest.mark.parametrize("shape", [(150, 97), (337, 97), (60, 401)])
@pytest.mark.parametrize("sigma,mode,truncate", [(1.0, "nearest", 4.0), (6.0, "nearest", 4.0), (2.24, "reflect", 3.0)])
def test_separable_blur_matches_scipy_on_long_axes(sigma, mode, truncate, shape):
    # The banded row-block products (filters.ROW_BLOCK) on short and long axes, each boundary mode,
    # against SciPy; axes that are not a multiple of the block size leave a short last block.
    from scipy.ndimage import gaussian_filter

    from evaluation.corruptions.filters import gaussian_blur

    x = torch.rand(2, 3, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = gaussian_blur(x, sigma, mode=mode, truncate=truncate)
    ref = gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode=mode, truncate=truncate)
    assert np.abs(ours.numpy() - ref).max() < 1e-10


@pytest.mark.parametrize("table", ["imagenet", "cifar10"])
@pytest.mark.parametrize("severity", SEVERITIES)
def test_torch_pixelate_matches_pillow(photos64, table, severity):
    # On CPU the torch backend hands pixelate to Pillow; the batched torch version (used on GPUs)
    # must give Pillow's result too (BOX down, NEAREST or BOX up, 8-bit rounding between passes).
    from evaluation.corruptions import get_table, params_for
    from evaluation.corruptions.fast import pixelate
    from evaluation.corruptions.reference import cpu_corrupt

    c = params_for(table, "pixelate", severity)
    ours = pixelate(photos64, c, get_table(table), torch.Generator())
    pil = cpu_corrupt(photos64, "pixelate", severity, table, seed=0)
    assert ((ours - pil).abs() * 255).max().item() <= 1.0 + 1e-4
    assert ((ours - pil).abs() * 255).mean().item() <= 0.05


@pytest.mark.parametrize("mode", ["nearest", "reflect", "mirror"])
@pytest.mark.parametrize("pads", [(1, 2, 3, 0), (10, 10, 10, 10), (5, 12, 9, 20)])
def test_pad_fast_path_matches_index_gathering(mode, pads):
    # filters.pad uses torch's pad where it agrees with the boundary mode; the index gathering
    # (boundary_index) is the definition. Pads longer than the axis exercise the fallback.
    from evaluation.corruptions.filters import boundary_index, pad

    x = torch.rand(2, 3, 11, 9, generator=torch.Generator().manual_seed(1))
    top, bottom, left, right = pads
    rows = boundary_index(11, -top, 11 + bottom, mode)
    cols = boundary_index(9, -left, 9 + right, mode)
    assert torch.equal(pad(x, *pads, mode), x.index_select(-2, rows).index_select(-1, cols))


@pytest.mark.parametrize("zoom,radius", [(2.5, 10), (4.5, 12), (1.05, 3)])
def test_snow_window_equals_full_layer(zoom, radius):
    # ImageNet-C snow zooms and blurs the whole layer, then keeps the top-left H x W; ours zooms
    # and blurs only the window those pixels read. Same values (float64 here).
    from evaluation.corruptions.fast import _clipped_zoom, _zoom_window

    h, w = 40, 36
    layer = torch.rand(3, 1, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    angles = torch.tensor([-135.0, -90.0, -47.5])
    full = _clipped_zoom(layer, zoom, "topleft", full=True)
    margin = 2 * radius + 1
    window = _zoom_window(layer, zoom, (0, h + margin), (0, w + margin))
    n_r, n_c = window.shape[-2:]
    assert torch.allclose(window, full[..., :n_r, :n_c], atol=1e-9, rtol=0)
    ref = _motion_blur(full, radius, 3.0, angles)[..., :h, :w]
    ours = _motion_blur(window, radius, 3.0, angles, limit=tuple(full.shape[-2:]))[..., :h, :w]
    assert torch.allclose(ours, ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize("radius,sigma", [(10, 3), (15, 8)])
def test_motion_blur_fft_path_equals_shifts(radius, sigma):
    # CPU batches use the shifted adds, other devices the FFT of the per-image kernels: same blur.
    from evaluation.corruptions import filters

    x = torch.rand(3, 3, 50, 47, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    angles = torch.tensor([-44.0, 3.3, 40.0])
    shifts = filters.motion_blur_shifts(x, radius, sigma, angles)
    fft = filters.fft_correlate(x, filters.motion_kernels(radius, sigma, angles, 50, 47), mode="nearest")
    assert torch.allclose(shifts, fft, atol=1e-9, rtol=0)


@pytest.mark.parametrize("zoom", [1.0, 1.005, 1.13, 1.3, 2.0, 4.5])
@pytest.mark.parametrize("shape", [(37, 50), (224, 224), (33, 17)])
def test_clipped_zoom_equals_the_reference(zoom, shape):
    # Our zoom (two banded products on a height-major batch) against imagecorruptions'
    # clipped_zoom (SciPy zoom, order 1) image by image; the trims are slices of the full result.
    from imagecorruptions.corruptions import clipped_zoom

    from evaluation.corruptions.fast import _clipped_zoom

    h, w = shape
    x = torch.rand(2, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    full = _clipped_zoom(x, zoom, "topleft", full=True)
    for i in range(2):
        ref = clipped_zoom(x[i].permute(1, 2, 0).numpy(), zoom)
        assert full.shape[-2:] == ref.shape[:2]
        assert np.abs(full[i].permute(1, 2, 0).numpy() - ref).max() < 1e-9
    oh, ow = full.shape[-2:]
    assert torch.allclose(_clipped_zoom(x, zoom, "topleft"), full[..., :h, :w], atol=1e-12, rtol=0)
    t0, l0 = (oh - h) // 2, (ow - w) // 2
    assert torch.allclose(_clipped_zoom(x, zoom, "center"), full[..., t0:t0 + h, l0:l0 + w], atol=1e-12, rtol=0)
