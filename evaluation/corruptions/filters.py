"""Batched torch building blocks of the fast corruption backend.

Every function takes and returns tensors of shape (B, C, H, W) (float32 unless stated) on any device.
Boundary modes are named as in SciPy:

* ``"nearest"``: edge pixel repeated (``aaa|abcd|ddd``), skimage's ``gaussian`` default, and the
  edge clamping of imagecorruptions' ``shift``;
* ``"reflect"``: half-sample symmetric (``cba|abcd|dcb``), SciPy's ``reflect``;
* ``"mirror"``: whole-sample symmetric (``dcb|abcd|cba``), OpenCV's default ``BORDER_REFLECT_101``.
"""

from __future__ import annotations

import functools
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
    """Pad the last two axes of ``x`` under ``mode`` (any pad size).

    ``torch.nn.functional.pad`` where it does the same thing ("nearest" = replicate, "mirror" =
    reflect with pads shorter than the axis): about 10x faster on CPU than gathering columns with
    ``index_select`` along the last axis, which is the general fallback.
    """
    h, w = x.shape[-2:]
    if x.dim() == 4 and x.is_floating_point() and (
        mode == "nearest" or (mode == "mirror" and max(top, bottom) < h and max(left, right) < w)
    ):
        return torch.nn.functional.pad(x, (left, right, top, bottom), mode="replicate" if mode == "nearest" else "reflect")
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


# ------------------------------------------------------------------ banded matrix products
#
# Blurs and zooms are separable: ``My @ X @ Mx.T`` per channel, with banded My, Mx (the boundary
# folded in). Each matrix is cut into row blocks of ``ROW_BLOCK`` outputs, and a block multiplies
# just the input samples it touches (``ROW_BLOCK + 2r`` of them): GEMMs that skip the zeros of the
# band. The batch is kept *height-major*, (H, N, W) for N = B x C images, so that both products
# are plain 2-D GEMMs over the whole batch: along W the rows are (H x N, W); along H the columns
# are (H, N x W). Written into slices of one output, nothing is concatenated afterwards.

ROW_BLOCK = 16  # output samples per block (16 to 32 are fastest on the CPU at 32 to 224 px)

Blocks = tuple[tuple[int, int, int, int, torch.Tensor], ...]


def row_blocks(m: torch.Tensor, device, dtype: torch.dtype) -> Blocks:
    """``m`` (out, in) cut into row blocks: (out_lo, out_hi, in_lo, in_hi, block) with just the
    input columns that the block's rows touch (exact: only zero terms are left out)."""
    blocks = []
    for lo in range(0, m.shape[0], ROW_BLOCK):
        hi = min(m.shape[0], lo + ROW_BLOCK)
        used = torch.nonzero(m[lo:hi].abs().sum(0)).view(-1)
        a, b = (int(used.min()), int(used.max()) + 1) if used.numel() else (0, 1)
        blocks.append((lo, hi, a, b, m[lo:hi, a:b].contiguous().to(device=device, dtype=dtype)))
    return tuple(blocks)


def height_major(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> a contiguous (H, B x C, W) copy."""
    b, c, h, w = x.shape
    return x.reshape(b * c, h, w).transpose(0, 1).contiguous()


def from_height_major(t: torch.Tensor, b: int, c: int) -> torch.Tensor:
    """(H, B x C x W) or (H, B x C, W) -> a contiguous (B, C, H, W) copy."""
    h = t.shape[0]
    return t.reshape(h, b * c, -1).transpose(0, 1).contiguous().view(b, c, h, -1)


def product_right(t: torch.Tensor, blocks: Blocks, n_out: int) -> torch.Tensor:
    """``t @ M.T`` for 2-D ``t`` (R, n_in): a new (R, n_out)."""
    out = torch.empty(t.shape[0], n_out, dtype=t.dtype, device=t.device)
    for lo, hi, a, b, m in blocks:
        torch.mm(t[:, a:b], m.T, out=out[:, lo:hi])
    return out


def product_left(blocks: Blocks, t: torch.Tensor, n_out: int, accumulate: torch.Tensor | None = None) -> torch.Tensor:
    """``M @ t`` for 2-D ``t`` (n_in, K): a new (n_out, K), or added into ``accumulate`` in place."""
    if accumulate is not None:
        for lo, hi, a, b, m in blocks:
            accumulate[lo:hi].addmm_(m, t[a:b])
        return accumulate
    out = torch.empty(n_out, t.shape[1], dtype=t.dtype, device=t.device)
    for lo, hi, a, b, m in blocks:
        torch.mm(m, t[a:b], out=out[lo:hi])
    return out


@functools.lru_cache(maxsize=128)
def _filter_blocks(n: int, taps: tuple[float, ...], mode: str, device: str, dtype: torch.dtype) -> Blocks:
    return row_blocks(filter_matrix(n, torch.tensor(taps, dtype=torch.float64), mode), device, dtype)


def filter_blocks(n: int, kernel: torch.Tensor, mode: str, device, dtype: torch.dtype) -> Blocks:
    """The row blocks of :func:`filter_matrix` (cached per size, kernel, mode, device, dtype)."""
    return _filter_blocks(n, tuple(kernel.double().tolist()), mode, str(device), dtype)


def correlate_height_major(t: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, mode: str) -> torch.Tensor:
    """:func:`correlate_separable` of a height-major batch ``t`` (H, N, W): a new (H, N, W)."""
    h, n, w = t.shape
    y = product_right(t.view(h * n, w), filter_blocks(w, kx, mode, t.device, t.dtype), w)
    return product_left(filter_blocks(h, ky, mode, t.device, t.dtype), y.view(h, n * w), h).view(h, n, w)


def correlate_separable(x: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, mode: str) -> torch.Tensor:
    """Correlate every channel of ``x`` (B, C, H, W) with ``ky`` along H and ``kx`` along W."""
    return from_height_major(correlate_height_major(height_major(x), ky, kx, mode), *x.shape[:2])


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
    # Any transform size >= the padded size gives the same valid outputs; a smooth one is several
    # times faster (224 + 20 = 244 = 4 x 61 takes 3x as long as 252 = 4 x 9 x 7).
    fh, fw = fft_size(hp), fft_size(wp)
    xf = torch.fft.rfft2(xp.to(dtype), s=(fh, fw))
    kf = torch.fft.rfft2(kern, s=(fh, fw))
    y = torch.fft.irfft2(xf.mul_(kf), s=(fh, fw))
    # Circular convolution; rows/cols k-1 .. hp-1 are the valid (wrap-free) outputs.
    return y[..., k - 1:hp, k - 1:wp].to(x.dtype)


@functools.lru_cache(maxsize=256)
def fft_size(n: int) -> int:
    """The smallest m >= n with m / 4 a product of 2, 3, 5 and 7 (a fast size for pocketfft/cuFFT)."""
    m = max(4, -(-n // 4) * 4)
    while True:
        r = m // 4
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 4


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


def motion_taps(radius: int, sigma: float, angles_deg: torch.Tensor, height: int,
                width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The shifted copies of imagecorruptions' ``_motion_blur``, one angle (degrees) per image.

    Returns ``weights`` (taps,) float64 (``exp(-i^2 / 2 sigma^2)`` normalised over the 2r+1 taps)
    and, per image (B, taps), the shifts ``dy = -ceil(i sin(a) - 0.5)``, ``dx = -ceil(i cos(a) - 0.5)``
    and ``keep``: the reference stops at the first tap whose shift reaches the image size
    (``height``, ``width``), without renormalising.
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
    keep = keep.long().cumprod(dim=1).bool()
    return weights, dy, dx, keep


def motion_kernels(radius: int, sigma: float, angles_deg: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Per-image kernels (B, k, k) equal to imagecorruptions' ``_motion_blur`` (a sum of shifted copies).

    Tap i shifts the image by (dy, dx) (:func:`motion_taps`) with edge clamping, so the whole blur
    is a correlation with a sparse kernel on the edge-padded image.
    """
    taps = 2 * radius + 1
    weights, dy, dx, keep = motion_taps(radius, sigma, angles_deg, height, width)
    k = 2 * taps + 1  # |dx|, |dy| <= taps
    kern = torch.zeros(angles_deg.shape[0], k, k, dtype=torch.float64)
    # shifted[y, x] = img[y - dy, x - dx]: correlation weight at offset (-dy, -dx) from the centre.
    rows = (taps - dy).clamp(0, k - 1)
    cols = (taps - dx).clamp(0, k - 1)
    flat = kern.view(angles_deg.shape[0], -1)
    flat.scatter_add_(1, rows * k + cols, weights[None].expand_as(rows) * keep)
    return kern


def motion_blur_shifts(x: torch.Tensor, radius: int, sigma: float, angles_deg: torch.Tensor,
                       limit: tuple[int, int] | None = None) -> torch.Tensor:
    """imagecorruptions' ``_motion_blur`` of each image of ``x`` (B, C, H, W): the same sum of
    edge-clamped shifted copies, in the same order, as in-place multiply-adds on views of the
    edge-padded image (on the CPU several times faster than the FFT of the (B, k, k) kernels; one
    image at a time, so the working set stays in cache). ``limit``: the (height, width) of the
    reference's break rule, when ``x`` is a window of a larger image (default: ``x``'s size).
    """
    b, _, h, w = x.shape
    weights, dy, dx, keep = motion_taps(radius, sigma, angles_deg, *(limit or (h, w)))
    p = 2 * radius + 1  # |dy|, |dx| < taps
    xp = torch.nn.functional.pad(x, (p, p, p, p), mode="replicate")
    out = torch.zeros_like(x)
    wl = weights.tolist()
    for n, (sy, sx, kp) in enumerate(zip(dy.tolist(), dx.tolist(), keep.tolist(), strict=True)):
        acc = out[n]
        for t in range(len(wl)):
            if not kp[t]:
                break
            # shifted[y, x] = img[y - dy, x - dx] (edges clamped)
            acc.add_(xp[n, :, p - sy[t]:p - sy[t] + h, p - sx[t]:p - sx[t] + w], alpha=wl[t])
    return out


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


@functools.lru_cache(maxsize=64)
def _pil_blocks(in_size: int, out_size: int, filt: str, device: str, dtype: torch.dtype) -> Blocks:
    return row_blocks(pil_resample_matrix(in_size, out_size, filt), device, dtype)


def pil_resize(x255: torch.Tensor, height: int, width: int, filt: str) -> torch.Tensor:
    """Pillow ``Image.resize`` of 8-bit values (float tensor 0..255): horizontal pass, round, vertical,
    round; as banded products on the height-major batch."""
    b, c, h, w = x255.shape
    key = (str(x255.device), x255.dtype)
    t = height_major(x255).view(h * b * c, w)
    if width != w:
        t = product_right(t, _pil_blocks(w, width, filt, *key), width).add_(0.5).floor_()
    t = t.view(h, b * c * width)
    if height != h:
        t = product_left(_pil_blocks(h, height, filt, *key), t, height).add_(0.5).floor_()
    return from_height_major(t, b, c).clamp_(0, 255)


def plasma_fractal(batch: int, mapsize: int, wibbledecay: float, generator: torch.Generator,
                   device: torch.device) -> torch.Tensor:
    """Diamond-square height maps (B, mapsize, mapsize) in [0, 1], the algorithm of ImageNet-C's fog."""
    assert mapsize & (mapsize - 1) == 0, "mapsize must be a power of two"
    m = torch.zeros(batch, mapsize, mapsize, dtype=torch.float32, device=device)  # float32 as the reference
    step = mapsize
    wibble = 100.0

    def wibbled_mean(a: torch.Tensor) -> torch.Tensor:
        # a / 4 + wibble * (noise * 2 * wibble - wibble), noise uniform in [0, 1)
        noise = torch.rand(a.shape, generator=generator, device=device)
        return noise.mul_(2 * wibble * wibble).sub_(wibble * wibble).add_(a, alpha=0.25)

    while step >= 2:
        half = step // 2
        # squares: centre = mean of the four corners + noise
        corner = m[:, 0::step, 0::step]
        acc = corner + torch.roll(corner, -1, dims=1)
        acc += torch.roll(acc, -1, dims=2)
        m[:, half::step, half::step] = wibbled_mean(acc)
        # diamonds: edge midpoints
        dr = m[:, half::step, half::step]
        ul = m[:, 0::step, 0::step]
        lt = dr + torch.roll(dr, 1, dims=1)
        lt += ul
        lt += torch.roll(ul, -1, dims=2)
        m[:, 0::step, half::step] = wibbled_mean(lt)
        tt = dr + torch.roll(dr, 1, dims=2)
        tt += ul
        tt += torch.roll(ul, -1, dims=1)
        m[:, half::step, 0::step] = wibbled_mean(tt)
        step //= 2
        wibble /= wibbledecay
    flat = m.view(batch, -1)
    lo, hi = flat.amin(dim=1).view(-1, 1, 1), flat.amax(dim=1).view(-1, 1, 1)
    return m.sub_(lo).div_(hi - lo)


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
