"""Batched torch building blocks of the fast corruption backend.

Every function takes and returns tensors of shape (B, C, H, W) (float32 unless stated) on any device.
Boundary modes are named as in SciPy:

* ``"nearest"``: edge pixel repeated (``aaa|abcd|ddd``), skimage's ``gaussian`` default, and the
  edge clamping of imagecorruptions' ``shift``;
* ``"reflect"``: half-sample symmetric (``cba|abcd|dcb``), SciPy's ``reflect``;
* ``"mirror"``: whole-sample symmetric (``dcb|abcd|cba``), OpenCV's default ``BORDER_REFLECT_101``.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def boundary_index(n: int, lo: int, hi: int, mode: str, device: torch.device | None = None) -> torch.Tensor:
    """Source indices in ``[0, n)`` for the virtual positions ``lo .. hi - 1`` under ``mode``."""
    i = np.arange(lo, hi)
    if mode == "nearest":
        j = np.clip(i, 0, n - 1)
    elif mode == "reflect":
        j = np.mod(i, 2 * n)
        j = np.where(j >= n, 2 * n - 1 - j, j)
    elif mode == "mirror":
        if n == 1:
            j = np.zeros_like(i)
        else:
            j = np.mod(i, 2 * n - 2)
            j = np.where(j >= n, 2 * n - 2 - j, j)
    else:
        raise ValueError(f"unknown boundary mode {mode!r}; valid: nearest, reflect, mirror")
    return torch.as_tensor(j, dtype=torch.long, device=device)


def pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> torch.Tensor:
    """Pad the last two axes of ``x`` by index gathering (works for pads larger than the image)."""
    h, w = x.shape[-2:]
    rows = boundary_index(h, -top, h + bottom, mode, x.device)
    cols = boundary_index(w, -left, w + right, mode, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """SciPy's ``gaussian_filter1d`` weights: radius ``int(truncate * sigma + 0.5)``, float64."""
    radius = int(truncate * float(sigma) + 0.5)
    if sigma <= 0 or radius == 0:
        return torch.ones(1, dtype=torch.float64)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def filter_matrix(n: int, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """(n, n) matrix M with ``M @ v`` = 1-D correlation of ``v`` with ``kernel`` under ``mode``.

    The boundary extension is folded into the matrix, so a separable filter is two small matmuls
    (fast on CPU and GPU, unlike single-channel ``conv2d``).
    """
    r = (kernel.numel() - 1) // 2
    k = kernel.double()
    m = torch.zeros(n, n, dtype=torch.float64)
    rows = torch.arange(n)
    for t in range(-r, r + 1):
        cols = boundary_index(n, t, n + t, mode)  # source of position i + t
        m.index_put_((rows, cols), k[t + r].expand(n), accumulate=True)
    return m


_BLOCK = 32  # output samples per block of the banded (Toeplitz) products


def _correlate_last(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """1-D correlation of ``x`` along its last axis with the boundary ``mode``.

    Small axes use one (n, n) matrix with the boundary folded in. Long axes are padded once and
    cut into blocks of ``_BLOCK`` outputs; each block needs ``_BLOCK + 2r`` inputs, so one small
    banded (Toeplitz) matrix serves every block: a few times fewer flops than a dense (n, n) matrix.
    """
    n = x.shape[-1]
    r = (kernel.numel() - 1) // 2
    if n <= 2 * _BLOCK:
        return torch.matmul(x, filter_matrix(n, kernel, mode).to(device=x.device, dtype=x.dtype).T)
    nb = -(-n // _BLOCK)
    xp = x.index_select(-1, boundary_index(n, -r, nb * _BLOCK + r, mode, x.device))
    span = _BLOCK + 2 * r
    band = torch.zeros(span, _BLOCK, dtype=torch.float64)
    for t in range(2 * r + 1):  # output j reads inputs j .. j + 2r
        band[torch.arange(_BLOCK) + t, torch.arange(_BLOCK)] = kernel.double()[t]
    blocks = xp.unfold(-1, span, _BLOCK)  # (..., nb, span)
    out = torch.matmul(blocks, band.to(device=x.device, dtype=x.dtype))  # (..., nb, _BLOCK)
    return out.flatten(-2)[..., :n]


def correlate_separable(x: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, mode: str) -> torch.Tensor:
    """Correlate every channel of ``x`` (B, C, H, W) with ``ky`` along H and ``kx`` along W."""
    y = _correlate_last(x, kx, mode)
    return _correlate_last(y.transpose(-1, -2), ky, mode).transpose(-1, -2).contiguous()


def gaussian_blur(x: torch.Tensor, sigma: float | tuple[float, float], mode: str = "nearest",
                  truncate: float = 4.0) -> torch.Tensor:
    """skimage/SciPy ``gaussian`` over the two spatial axes (channels independent)."""
    sy, sx = (sigma, sigma) if not isinstance(sigma, (tuple, list)) else sigma
    return correlate_separable(x, gaussian_kernel1d(sy, truncate), gaussian_kernel1d(sx, truncate), mode)


def fft_correlate(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """Correlate ``x`` (B, C, H, W) with an odd square kernel, via the FFT (large kernels).

    ``kernel`` is (k, k), shared by the batch, or (B, k, k), one per image; OpenCV ``filter2D``
    (correlation, kernel anchored at its centre) with the boundary ``mode``.
    """
    b, c, h, w = x.shape
    k = kernel.shape[-1]
    r = k // 2
    xp = pad(x, r, r, r, r, mode)  # (B, C, H + k - 1, W + k - 1)
    hp, wp = xp.shape[-2:]
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    kern = kernel.to(device=x.device, dtype=dtype).flip(-1).flip(-2)  # convolution = flipped correlation
    if kern.dim() == 3:
        kern = kern[:, None]  # (B, 1, k, k): broadcast over channels
    xf = torch.fft.rfft2(xp.to(dtype), s=(hp, wp))
    kf = torch.fft.rfft2(kern, s=(hp, wp))
    y = torch.fft.irfft2(xf * kf, s=(hp, wp))
    # Circular convolution; rows/cols k-1 .. end are the valid (wrap-free) outputs.
    return y[..., k - 1:, k - 1:].to(x.dtype)


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The anti-aliased disk of ImageNet-C's defocus blur (same construction as the reference)."""
    import cv2  # installed with imagecorruptions; the same OpenCV blur makes the kernel identical

    if radius <= 8:
        grid = np.arange(-8, 8 + 1)
        ksize = (3, 3)
    else:
        grid = np.arange(-radius, radius + 1)
        ksize = (5, 5)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    disk /= np.sum(disk)
    return torch.from_numpy(cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur))


def motion_kernels(radius: int, sigma: float, angles_deg: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Per-image kernels (B, k, k) equal to imagecorruptions' ``_motion_blur`` (a sum of shifted copies).

    Tap i (weight ``exp(-i^2 / 2 sigma^2)``, normalised over the 2r+1 taps) shifts the image by
    ``dy = -ceil(i sin(a) - 0.5)``, ``dx = -ceil(i cos(a) - 0.5)`` with edge clamping, so the whole
    blur is a correlation with a sparse kernel on the edge-padded image. Taps whose shift reaches
    the image size are dropped (the reference breaks out of its loop there, without renormalising).
    """
    taps = 2 * radius + 1
    i = torch.arange(taps, dtype=torch.float64)
    weights = torch.exp(-(i**2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
    weights = weights / weights.sum()
    a = torch.deg2rad(angles_deg.double().cpu())[:, None]  # (B, 1)
    # point = taps * (sin, cos), hypot = taps: i * point / hypot = i * (sin, cos)
    dy = -torch.ceil(i[None] * torch.sin(a) - 0.5).long()  # (B, taps)
    dx = -torch.ceil(i[None] * torch.cos(a) - 0.5).long()
    keep = (dy.abs() < height) & (dx.abs() < width)
    keep = keep.long().cumprod(dim=1).bool()  # the reference stops at the first tap out of range
    k = 2 * taps + 1  # |dx|, |dy| <= taps
    kern = torch.zeros(angles_deg.shape[0], k, k, dtype=torch.float64)
    # shifted[y, x] = img[y - dy, x - dx]: correlation weight at offset (-dy, -dx) from the centre.
    rows = (taps - dy).clamp(0, k - 1)
    cols = (taps - dx).clamp(0, k - 1)
    flat = kern.view(angles_deg.shape[0], -1)
    flat.scatter_add_(1, rows * k + cols, weights[None].expand_as(rows) * keep)
    return kern


def pil_resample_matrix(in_size: int, out_size: int, filt: str) -> torch.Tensor:
    """(out, in) weights of Pillow's separable resampling (``precompute_coeffs``), float64.

    ``filt`` is ``"box"`` (support 0.5) or ``"nearest"`` (Pillow samples ``floor((i + 0.5) in/out)``).
    """
    m = np.zeros((out_size, in_size))
    scale = in_size / out_size
    if filt == "nearest":
        src = np.minimum(np.floor((np.arange(out_size) + 0.5) * scale).astype(int), in_size - 1)
        m[np.arange(out_size), src] = 1.0
        return torch.from_numpy(m)
    if filt != "box":
        raise ValueError(f"unsupported filter {filt!r}")
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        for x in range(xmin, xmax):
            t = (x - center + 0.5) / filterscale
            m[xx, x] = 1.0 if -0.5 < t <= 0.5 else 0.0
        total = m[xx].sum()
        if total:
            m[xx] /= total
    return torch.from_numpy(m)


def pil_resize(x255: torch.Tensor, height: int, width: int, filt: str) -> torch.Tensor:
    """Pillow ``Image.resize`` of 8-bit values (float tensor 0..255): horizontal pass, round, vertical, round."""
    h, w = x255.shape[-2:]
    y = x255
    if width != w:
        mx = pil_resample_matrix(w, width, filt).to(y)
        y = torch.floor(torch.matmul(y, mx.T) + 0.5)
    if height != h:
        my = pil_resample_matrix(h, height, filt).to(y)
        y = torch.floor(torch.matmul(my, y) + 0.5)
    return y.clamp(0, 255)


def plasma_fractal(batch: int, mapsize: int, wibbledecay: float, generator: torch.Generator,
                   device: torch.device) -> torch.Tensor:
    """Diamond-square height maps (B, mapsize, mapsize) in [0, 1], the algorithm of ImageNet-C's fog."""
    assert mapsize & (mapsize - 1) == 0, "mapsize must be a power of two"
    m = torch.zeros(batch, mapsize, mapsize, dtype=torch.float32, device=device)  # float32 as the reference
    step = mapsize
    wibble = 100.0

    def wibbled_mean(a: torch.Tensor) -> torch.Tensor:
        noise = torch.rand(a.shape, generator=generator, device=device)
        return a / 4 + wibble * (noise * 2 * wibble - wibble)

    while step >= 2:
        half = step // 2
        # squares: centre = mean of the four corners + noise
        corner = m[:, 0::step, 0::step]
        acc = corner + torch.roll(corner, -1, dims=1)
        acc = acc + torch.roll(acc, -1, dims=2)
        m[:, half::step, half::step] = wibbled_mean(acc)
        # diamonds: edge midpoints
        dr = m[:, half::step, half::step]
        ul = m[:, 0::step, 0::step]
        lt = dr + torch.roll(dr, 1, dims=1) + ul + torch.roll(ul, -1, dims=2)
        m[:, 0::step, half::step] = wibbled_mean(lt)
        tt = dr + torch.roll(dr, 1, dims=2) + ul + torch.roll(ul, -1, dims=1)
        m[:, half::step, 0::step] = wibbled_mean(tt)
        step //= 2
        wibble /= wibbledecay
    flat = m.view(batch, -1)
    m = m - flat.min(dim=1).values.view(-1, 1, 1)
    return m / m.view(batch, -1).max(dim=1).values.view(-1, 1, 1)


def bilinear_sample(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample ``x`` (B, C, H, W) at float pixel coordinates ``ys``, ``xs`` (B, H', W') bilinearly.

    ``mode="reflect"`` is SciPy ``map_coordinates(order=1, mode="reflect")`` (half-sample
    symmetric): ``grid_sample`` with ``align_corners=False`` reflects about the outer pixel edges.
    ``mode="mirror"`` is OpenCV's ``BORDER_REFLECT_101``: ``align_corners=True`` reflects about the
    outer pixel centres.
    """
    h, w = x.shape[-2:]
    if mode == "reflect":
        gx, gy = (2 * xs + 1) / w - 1, (2 * ys + 1) / h - 1
        align = False
    elif mode == "mirror":
        gx, gy = 2 * xs / max(w - 1, 1) - 1, 2 * ys / max(h - 1, 1) - 1
        align = True
    else:
        raise ValueError(f"unsupported mode {mode!r}")
    grid = torch.stack([gx, gy], dim=-1).to(x.dtype)  # (B, H', W', 2) as (x, y)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                                           align_corners=align)
