"""The fast backend: each corruption as batched torch operations on a whole (B, 3, H, W) batch.

Every function here has the signature ``fn(x, params, table, generator) -> Tensor`` where ``x`` is
float32 (B, 3, H, W) in [0, 1] on the 8-bit grid, ``params`` the table entry for one severity and
``generator`` a ``torch.Generator`` on ``x``'s device. They return the corrupted batch in [0, 1];
the caller quantises to 8 bits the way the reference does (``np.uint8`` truncation).

Each follows the reference code (``imagecorruptions/corruptions.py``; ``make_cifar_c.py`` where the
CIFAR table differs in form) step by step; the random draws come from torch instead of NumPy, so
random corruptions agree with the reference in distribution, not pixel for pixel. Two corruptions
are not here and run per image on the CPU instead (see ``corruptions/__init__.py``): ``jpeg_compression``
(libjpeg-turbo, bitwise the Pillow codec that the reference calls) and ``spatter`` (OpenCV edge and distance
transforms); ``pixelate`` is here for GPU batches, CPU batches go to Pillow (faster there, same
result). Motion blur and snow take every shifted copy (``motion_stop=False``), which is
ImageMagick's ``MotionBlurImage`` that both scripts call (within 1 level, measured against Wand);
how close the ``cifar10`` table is to make_cifar_c.py end to end: docs/evaluation.md.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from evaluation.corruptions import filters
from evaluation.corruptions.tables import CorruptionTable

FastFn = Callable[[torch.Tensor, object, CorruptionTable, torch.Generator], torch.Tensor]


def _uniform(shape, low: float, high: float, g: torch.Generator, device, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(shape, generator=g, device=device, dtype=dtype) * (high - low) + low


def _randint(low: int, high: int, shape, g: torch.Generator, device) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=g, device=device)


# ----------------------------------------------------------------------------------------- noise


def gaussian_noise(x, c, table, g):
    return torch.randn(x.shape, generator=g, device=x.device).mul_(c).add_(x).clamp_(0, 1)


_GUIDE_BITS = 10  # 1,024 bins per input level: the int16 table (512 kB) stays in cache (4,096 bins: 1.4x slower)


@lru_cache(maxsize=32)
def _poisson_table(c: float, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse-CDF tables of Poisson(level / 255 * c) for the 256 input levels.

    Returns ``cdf`` (256 x (K + 1),) float64, flat, each row ending in a sentinel 2.0, and the
    guide ``guide`` (256 x bins,) int16: for the uniforms u of bin j of a level, the answer
    k (the smallest k with CDF(k) > u) when the whole bin has the same one, else -1 - (the answer
    at the bin's start), where a short search continues.
    """
    lam = torch.arange(256, dtype=torch.float64) / 255 * c
    kmax = int(np.ceil(c + 12 * np.sqrt(c) + 20))
    k = torch.arange(kmax, dtype=torch.float64)
    logp = k[None] * torch.log(lam[:, None].clamp_min(1e-300)) - lam[:, None] - torch.lgamma(k[None] + 1)
    p = torch.exp(logp)
    p[0] = 0
    p[0, 0] = 1  # lambda = 0: always 0
    cdf = torch.cumsum(p, dim=1).clamp(max=1.0)
    cdf = torch.cat([cdf, torch.full((256, 1), 2.0, dtype=torch.float64)], dim=1)  # sentinel
    bins = 1 << _GUIDE_BITS
    edges = (torch.arange(bins + 1, dtype=torch.float64) / bins)[None].expand(256, -1).contiguous()
    start = torch.searchsorted(cdf, edges[:, :-1].contiguous(), right=True)  # the answer at each bin's start
    whole = cdf.gather(1, start) >= edges[:, 1:]  # ... is the answer up to the bin's end
    guide = torch.where(whole, start, -1 - start).to(torch.int16)
    return cdf.reshape(-1).to(device), guide.reshape(-1).to(device)


def shot_noise(x, c, table, g):
    # Exact Poisson(x * c) by inverse CDF: x is on the 8-bit grid, so there are only 256 rates
    # (torch.poisson is several times slower on CPU). One 31-bit uniform per value; its top bits
    # pick a bin of the level's guide row, which holds the answer for most bins; the rest step
    # up the CDF from the bin's first answer (a few steps at most).
    cdf, guide = _poisson_table(float(c), str(x.device))
    width = cdf.numel() // 256
    bits = torch.empty(x.shape, dtype=torch.int32, device=x.device).random_(generator=g).view(-1)  # [0, 2^31)
    level = x.mul(255).round_().to(torch.int32).view(-1)
    # index_select: much faster than advanced indexing for large index tensors on CPU
    k = guide.index_select(0, level.bitwise_left_shift(_GUIDE_BITS).bitwise_or_(bits >> (31 - _GUIDE_BITS)))
    todo = torch.nonzero(k < 0).view(-1)
    if todo.numel():
        u = bits.index_select(0, todo).double().mul_(2.0 ** -31)
        row = level.index_select(0, todo).mul_(width)
        kt = k.index_select(0, todo).to(torch.int32).neg_().sub_(1)
        while True:  # CDF(kt) <= u: the answer is further up (the sentinel 2.0 ends every row)
            step = cdf.index_select(0, row + kt) <= u
            if not bool(step.any()):
                break
            kt += step
        k[todo] = kt.to(k.dtype)
    return k.view(x.shape).to(x.dtype).div_(float(c)).clamp_(0, 1)


def impulse_noise(x, c, table, g):
    # skimage random_noise 's&p': each value (channels independently) flipped with probability
    # `amount`; a flipped value becomes 1 or 0 with equal probability. One 31-bit uniform u
    # decides both: u < c/2 -> salt (1), c/2 <= u < c -> pepper (0); the same joint distribution.
    bits = torch.empty(x.shape, dtype=torch.int32, device=x.device).random_(generator=g)  # [0, 2^31)
    flip, salt = (int(np.ceil(p * 2.0**31)) for p in (c, c / 2))  # u < p  <=>  bits < ceil(p 2^31)
    return (x * (bits >= flip)).add_(bits < salt)  # flipped -> 0, then salt (a subset) -> 1


def speckle_noise(x, c, table, g):
    return torch.randn(x.shape, generator=g, device=x.device).mul_(x).mul_(c).add_(x).clamp_(0, 1)


# ------------------------------------------------------------------------------------------ blur


def gaussian_blur(x, c, table, g):
    return filters.gaussian_blur(x, c, mode="nearest").clamp_(0, 1)


def defocus_blur(x, c, table, g):
    kernel = filters.disk_kernel(radius=c[0], alias_blur=c[1])
    return filters.fft_correlate(x, kernel, mode="mirror").clamp_(0, 1)  # cv2.filter2D border


def _motion_blur(x: torch.Tensor, radius: int, sigma: float, angles: torch.Tensor,
                 limit: tuple[int, int] | None = None, stop: bool = True) -> torch.Tensor:
    """imagecorruptions' ``_motion_blur`` for the batch, one angle (degrees) per image.

    CPU, images of 64 x 64 px or more: the reference's shifted copies as in-place adds (fastest
    there); small images (B x taps tiny adds would be Python overhead) and other devices: one FFT
    correlation of the batch with per-image kernels. ``limit``: the image size of the reference's
    break rule when ``x`` is a window; ``stop=False``: no break rule (ImageMagick's
    ``MotionBlurImage``, which the authors' scripts call, takes every copy; the same sum otherwise,
    measured within 1 level of Wand's output, see docs/evaluation.md).
    """
    if not stop:
        limit = (1 << 30, 1 << 30)
    if x.device.type == "cpu" and x.shape[-2] * x.shape[-1] >= 64 * 64:
        return filters.motion_blur_shifts(x, radius, sigma, angles, limit)
    h, w = limit or x.shape[-2:]
    kernels = filters.motion_kernels(radius, sigma, angles, h, w)
    return filters.fft_correlate(x, kernels, mode="nearest")


def motion_blur(x, c, table, g):
    angles = _uniform((x.shape[0],), -45, 45, g, x.device, torch.float64)
    # The reference blurs 0..255 values and clips; same thing in [0, 1].
    return _motion_blur(x, c[0], c[1], angles, stop=table.motion_stop).clamp_(0, 1)


def _zoom_geometry(h: int, w: int, zoom: float) -> tuple[int, int, int, int, int, int]:
    """``clipped_zoom``'s centre crop (top, left, height, width) and zoomed size (oh, ow)."""
    ch, cw = int(np.ceil(h / zoom)), int(np.ceil(w / zoom))
    return (h - ch) // 2, (w - cw) // 2, ch, cw, int(round(ch * zoom)), int(round(cw * zoom))


def _zoom_matrix(start: int, count: int, crop: int, out: int) -> torch.Tensor:
    """(count, crop) float64 rows of SciPy's linear ``zoom`` from ``crop`` to ``out`` samples:
    output ``start + i`` samples the crop at ``(start + i) (crop - 1) / (out - 1)``
    (``interpolate(..., align_corners=True)``)."""
    m = torch.zeros(count, crop, dtype=torch.float64)
    if crop == 1 or out == 1:
        m[:, 0] = 1
        return m
    pos = torch.arange(start, start + count, dtype=torch.float64) * ((crop - 1) / (out - 1))
    i0 = pos.floor().long().clamp(0, crop - 2)
    f = pos - i0
    rows = torch.arange(count)
    m[rows, i0] = 1 - f
    m[rows, i0 + 1] += f
    return m


@lru_cache(maxsize=512)
def _zoom_blocks(start: int, count: int, crop: int, out: int, device: str, dtype: torch.dtype) -> filters.Blocks:
    return filters.row_blocks(_zoom_matrix(start, count, crop, out), device, dtype)


def _zoom_height_major(t: torch.Tensor, zoom: float, rows: tuple[int, int], cols: tuple[int, int],
                       accumulate: torch.Tensor | None = None) -> torch.Tensor:
    """Rows ``rows[0] : rows[0] + rows[1]`` and likewise columns of every image's clipped zoom
    (centre crop, linear zoom, not trimmed), for a height-major batch ``t`` (H, N, W)
    (:func:`filters.height_major`): (rows, N x cols), or added into ``accumulate`` in place.

    Two banded products (:mod:`filters`), so only the outputs asked for are computed."""
    h, n, w = t.shape
    top, left, ch, cw, oh, ow = _zoom_geometry(h, w, zoom)
    nr, nc = min(rows[1], oh - rows[0]), min(cols[1], ow - cols[0])
    key = (str(t.device), t.dtype)
    crop = t.view(h * n, w)[top * n:(top + ch) * n, left:left + cw]  # (ch x N, cw): a view, rows W apart
    y = filters.product_right(crop, _zoom_blocks(cols[0], nc, cw, ow, *key), nc)  # (ch x N, nc)
    return filters.product_left(_zoom_blocks(rows[0], nr, ch, oh, *key), y.view(ch, n * nc), nr, accumulate)


def _zoom_window(x: torch.Tensor, zoom: float, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
    """:func:`_zoom_height_major` for a (B, C, H, W) batch: (B, C, rows, cols)."""
    return filters.from_height_major(_zoom_height_major(filters.height_major(x), zoom, rows, cols), *x.shape[:2])


def _clipped_zoom(x: torch.Tensor, zoom: float, trim: str, full: bool = False) -> torch.Tensor:
    """``clipped_zoom`` of the batch: centre crop, linear zoom (SciPy ``zoom(order=1)``), then the
    H x W part kept by ``trim`` (``"topleft"`` or ``"center"``), or all of it when ``full``."""
    h, w = x.shape[-2:]
    *_, oh, ow = _zoom_geometry(h, w, zoom)
    if full:
        return _zoom_window(x, zoom, (0, oh), (0, ow))
    t0, l0 = (0, 0) if trim == "topleft" else ((oh - h) // 2, (ow - w) // 2)
    return _zoom_window(x, zoom, (t0, h), (l0, w))


def zoom_blur(x, c, table, g):
    b, ch, h, w = x.shape
    t = filters.height_major(x)
    acc = t.clone().view(h, -1)  # the unzoomed image is one term of the mean
    for z in c:
        geometry = _zoom_geometry(h, w, float(z))
        if geometry == (0, 0, h, w, h, w):  # zoom 1 (every severity starts with it): the image
            acc += t.view(h, -1)
            continue
        oh, ow = geometry[-2:]
        t0, l0 = (0, 0) if table.zoom_trim == "topleft" else ((oh - h) // 2, (ow - w) // 2)
        _zoom_height_major(t, float(z), (t0, h), (l0, w), accumulate=acc)
    return filters.from_height_major(acc.div_(len(c) + 1).clamp_(0, 1), b, ch)


@lru_cache(maxsize=64)
def _glass_offset_tables(delta: int, w: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per draw r: the flat offset dy * W + dx of the source, split into ``jump`` (the source is
    visited earlier in the pass: dy > 0, or dy = 0 and dx > 0, for a pixel away from the edges of
    the visited rectangle) and ``rest`` (all other sources); int32 tables of (2 delta)^2 entries."""
    span = 2 * delta
    r = torch.arange(span * span)
    dx, dy = r % span - delta, r // span - delta
    off = (dy * w + dx).to(torch.int32)
    earlier = (dy > 0) | ((dy == 0) & (dx > 0))
    return (off * earlier).to(device), (off * ~earlier).to(device)


def _glass_source(b: int, h: int, w: int, delta: int, iterations: int, g, device) -> torch.Tensor:
    """Flat source index (B * H * W,) int32, over the whole batch, of ImageNet-C's pixel "swap" loop.

    The reference visits rows h = H-delta .. delta+1 (bottom up) and, in each, columns right to
    left, and does ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` with views, which copies
    ``x[h', w']`` into ``x[h, w]`` (the second assignment is a no-op). So every visited pixel p
    takes the value that its source q = (h + dy, w + dx), dx, dy in [-delta, delta), holds at the
    moment of the visit: q's final value of this pass if q was visited before p (a row below
    inside the visited rectangle, or the same row to the right), else q's value from before the
    pass. Following "visited before" links gives chains that go strictly back in visiting order;
    they are resolved for all pixels at once by pointer jumping (``ptr = ptr[ptr]`` until nothing
    changes; chains are short, about five rounds), which is exact: no row-by-row loop.

    Draws, per pass: one ``r`` uniform in [0, (2 delta)^2) per visited pixel, in visiting order
    (rows bottom up, the batch, columns right to left): dx = r mod 2 delta - delta, dy = r div
    2 delta - delta, two independent uniforms like the reference's ``randint(-delta, delta,
    size=(2,))``, for half the generator calls.
    """
    hw = h * w
    total = torch.arange(b * hw, dtype=torch.int32, device=device)
    m, n = h - 2 * delta, w - 2 * delta  # visited rows delta+1 .. h-delta, columns likewise
    if m <= 0 or n <= 0:
        return total
    inner = (slice(None), slice(delta + 1, h - delta + 1), slice(delta + 1, w - delta + 1))
    region = total.view(b, h, w)[inner].contiguous()  # (B, m, n) flat positions, spatial order
    jump_table, rest_table = _glass_offset_tables(delta, w, str(device))
    span = 2 * delta
    src = total
    for _ in range(iterations):
        r = torch.empty((m, b, n), dtype=torch.int32, device=device).random_(0, span * span, generator=g)
        r = r.permute(1, 0, 2).flip(1, 2).contiguous()  # visiting order -> spatial order (B, m, n)
        jump = jump_table.index_select(0, r.view(-1)).view(b, m, n)  # links back to an earlier visit
        rest = rest_table.index_select(0, r.view(-1)).view(b, m, n)
        if delta > 1:  # (with delta = 1, dy, dx in {-1, 0}: no source is ever visited earlier)
            _glass_edge_links(r, jump, rest, delta)
        term = total.clone()
        term.view(b, h, w)[inner] = region + rest  # chain ends: the value from before the pass
        if delta > 1:
            ptr = total.clone()
            ptr.view(b, h, w)[inner] = region + jump
            while True:
                nxt = ptr.index_select(0, ptr)
                if torch.equal(nxt, ptr):
                    break
                ptr = nxt
            term = term.index_select(0, ptr)
        src = src.index_select(0, term)
    return src


def _glass_edge_links(r: torch.Tensor, jump: torch.Tensor, rest: torch.Tensor, delta: int) -> None:
    """Near the bottom, left and right edges of the visited rectangle, a source that the offset
    tables call "visited earlier" can lie outside the rectangle, so it never was: move those
    offsets from ``jump`` to ``rest`` (in place). ``r``, ``jump``, ``rest``: (B, m, n), spatial.

    Only these bands can hold such sources (dy <= delta - 1, |dx| <= delta): the last delta - 1
    rows, the first delta columns and the last delta - 1 columns."""
    _, m, n = r.shape
    span = 2 * delta
    bands = ((slice(max(0, m - delta + 1), m), slice(0, n)), (slice(0, m), slice(0, min(n, delta))),
             (slice(0, m), slice(max(0, n - delta + 1), n)))
    for rows, cols in bands:
        code = r[:, rows, cols]
        dx, dy = code.remainder(span) - delta, code.div(span, rounding_mode="floor") - delta
        i = torch.arange(m, device=r.device)[rows].view(1, -1, 1)
        j = torch.arange(n, device=r.device)[cols].view(1, 1, -1)
        outside = (i + dy > m - 1) | (j + dx < 0) | (j + dx > n - 1)
        moved = jump[:, rows, cols] * outside
        rest[:, rows, cols] += moved
        jump[:, rows, cols] -= moved


def _glass_shuffle_index(b: int, h: int, w: int, delta: int, iterations: int, g, device) -> torch.Tensor:
    """:func:`_glass_source` as per-image flat indices (B, H*W) int64."""
    src = _glass_source(b, h, w, delta, iterations, g, device).view(b, h * w).long()
    return src - torch.arange(b, device=src.device)[:, None] * (h * w)


def glass_blur(x, c, table, g):
    sigma, delta, iterations = c
    b, ch, h, w = x.shape
    k = filters.gaussian_kernel1d(sigma)
    # Both blurs on the height-major batch (H, B x 3, W); np.uint8(gaussian(x) * 255) between them.
    t = filters.correlate_height_major(filters.height_major(x), k, k, "nearest")
    t.mul_(255).add_(1e-4).floor_().div_(255)
    src = _glass_source(b, h, w, delta, iterations, g, x.device)
    # The per-image permutations as one row gather over (B x H x W, 3) (index_select is much faster
    # than gather on CPU), from and back to the height-major layout in one copy each.
    pixels = t.view(h, b, ch, w).permute(1, 0, 3, 2).reshape(b * h * w, ch).index_select(0, src)
    t = pixels.view(b, h, w, ch).permute(1, 0, 3, 2).contiguous().view(h, b * ch, w)
    return filters.from_height_major(filters.correlate_height_major(t, k, k, "nearest"), b, ch).clamp_(0, 1)


# --------------------------------------------------------------------------------------- weather


def snow(x, c, table, g):
    b, _, h, w = x.shape
    layer = torch.randn((b, 1, h, w), generator=g, device=x.device) * c[1] + c[0]
    zoom = float(c[2])
    if table.zoom_trim == "topleft":
        # imagecorruptions blurs the whole zoomed layer (up to 4.5 H x 4.5 W), then keeps the
        # top-left H x W. Those outputs read the layer only up to 2r+1 rows/columns further
        # (edges clamped at the top and left, where the window starts too), so only that window
        # is zoomed and blurred: the same values; the break rule still sees the full size.
        ch, cw = int(np.ceil(h / zoom)), int(np.ceil(w / zoom))
        limit = (int(round(ch * zoom)), int(round(cw * zoom)))
        margin = 2 * int(c[4]) + 1
        layer = _zoom_window(layer, zoom, (0, h + margin), (0, w + margin))
    else:  # make_cifar_c trims the centre first, then blurs
        limit = None
        layer = _clipped_zoom(layer, zoom, table.zoom_trim)
    layer = layer.masked_fill_(layer < c[3], 0.0).clamp_(0, 1)
    if table.snow_png:  # the scripts: np.uint8 into an 8-bit PNG for ImageMagick
        layer = layer.mul_(255).add_(1e-4).floor_().div_(255)
    angles = _uniform((b,), -135, -45, g, x.device, torch.float64)
    layer = _motion_blur(layer, c[4], c[5], angles, limit, stop=table.motion_stop)[..., :h, :w]
    # imagecorruptions rounds the blurred layer to 8 bits; ImageMagick's 8-bit output truncates
    layer = layer.mul(255).add_(1e-4).floor_() if table.snow_png else layer.mul(255).round_()
    layer = layer.div_(255)  # (B, 1, H, W)
    # cv2 RGB2GRAY, then c6 x + (1 - c6) max(x, 1.5 gray + 0.5) + layer + flipped layer: in place
    light = (x[:, :1] * 0.299).add_(x[:, 1:2], alpha=0.587).add_(x[:, 2:], alpha=0.114).mul_(1.5).add_(0.5)
    out = torch.maximum(x, light).mul_(1 - c[6]).add_(x, alpha=c[6])
    return out.add_(layer + layer.flip(-1, -2)).clamp_(0, 1)


@lru_cache(maxsize=16)
def _frost_layers(h: int, w: int, scale: float | None) -> tuple[torch.Tensor, ...]:
    """The six bundled frost images (RGB, 0..255 float) rescaled like the reference, per size."""
    import importlib.resources

    import cv2

    names = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg"]
    out = []
    for name in names:
        ref = importlib.resources.files("imagecorruptions") / "frost" / name
        with importlib.resources.as_file(ref) as path:
            frost = cv2.imread(str(path))
        fh, fw = frost.shape[:2]
        if scale is None:  # imagecorruptions: scale so the frost image covers the input, x 1.1
            factor = 1.0
            if fh < h and fw < w:
                factor = max(h / fh, w / fw)
            elif fh < h:
                factor = h / fh
            elif fw < w:
                factor = w / fw
            factor *= 1.1
            frost = cv2.resize(frost, dsize=(int(np.ceil(fw * factor)), int(np.ceil(fh * factor))),
                               interpolation=cv2.INTER_CUBIC)
        else:  # make_cifar_c: a fixed 0.2 (falls back to covering the image when too small)
            frost = cv2.resize(frost, (0, 0), fx=scale, fy=scale)
            if frost.shape[0] <= h or frost.shape[1] <= w:
                factor = 1.1 * max(h / frost.shape[0], w / frost.shape[1])
                frost = cv2.resize(frost, (0, 0), fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        out.append(torch.from_numpy(np.ascontiguousarray(frost[..., [2, 1, 0]])).permute(2, 0, 1).float())
    return tuple(out)


def _frost_crops(x, table, g):
    """One random crop of a random frost image per item of ``x``: (B, 3, H, W) in 0..255, a new tensor."""
    b, _, h, w = x.shape
    layers = _frost_layers(h, w, table.frost_scale)
    idx = _randint(0, table.frost_choices, (b,), g, x.device).tolist()
    crops = []
    for i in idx:
        layer = layers[i]
        top = int(_randint(0, layer.shape[1] - h, (1,), g, x.device))
        left = int(_randint(0, layer.shape[2] - w, (1,), g, x.device))
        crops.append(layer[:, top:top + h, left:left + w])
    return torch.stack(crops).to(x.device)


def frost(x, c, table, g):
    frost_batch = _frost_crops(x, table, g)
    # (c0 x 255 + c1 frost).clamp(0, 255) / 255, the same operations in place
    return (x * c[0]).mul_(255).add_(frost_batch.mul_(c[1])).clamp_(0, 255).div_(255)


def fog(x, c, table, g):
    b, _, h, w = x.shape
    mapsize = 1 << (max(h, w) - 1).bit_length()
    plasma = filters.plasma_fractal(b, mapsize, c[1], g, x.device)[:, None, :h, :w].to(x.dtype)
    max_val = x.reshape(b, -1).amax(dim=1).view(b, 1, 1, 1)
    scale = max_val / (max_val + c[0])  # (x + c0 plasma) * max / (max + c0), in two passes
    return torch.addcmul(x * scale, plasma, scale * c[0]).clamp_(0, 1)


def brightness(x, c, table, g):
    # rgb -> hsv, V += c (clipped), hsv -> rgb. With hue and saturation fixed every channel is
    # proportional to V, so this is a per-pixel rescale; black pixels (V = 0, S = 0) become grey V'.
    v = x.amax(dim=1, keepdim=True)  # amax: several times faster than max(dim).values on CPU
    v_new = (v + c).clamp_(0, 1)
    out = x * (v_new / v.clamp_min(1e-12))  # black pixels: 0 here ...
    return out.add_(v_new.mul_(v == 0)).clamp_(0, 1)  # ... + V' (+ 0 elsewhere: exact)


# --------------------------------------------------------------------------------------- digital


def contrast(x, c, table, g):
    means = x.mean(dim=(2, 3), keepdim=True)  # per image and channel, like the reference
    return (x - means).mul_(c).add_(means).clamp_(0, 1)  # one new tensor, then in place


def saturate(x, c, table, g):
    # rgb -> hsv, S = clip(S * c0 + c1), hsv -> rgb. With H and V fixed each channel is
    # v - s * v * a_c with a_c = (v - x_c) / (v - min): a linear map of S. Grey pixels have
    # H = 0 (skimage's convention), so a positive new S tints them red: (v, v(1-s), v(1-s)).
    v = x.amax(dim=1, keepdim=True)
    mn = x.amin(dim=1, keepdim=True)
    delta = v - mn
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    s_new = (s * c[0] + c[1]).clamp(0, 1)
    coloured = v - s_new * v * (v - x) / delta.clamp_min(1e-12)
    grey = torch.cat([v, v * (1 - s_new), v * (1 - s_new)], dim=1)
    return torch.where(delta > 0, coloured, grey).clamp_(0, 1)


def pixelate(x, c, table, g):
    h, w = x.shape[-2:]
    x255 = torch.round(x * 255)
    small = filters.pil_resize(x255, int(h * c), int(w * c), "box")
    return filters.pil_resize(small, h, w, table.pixelate_upsample) / 255


def _affine_sources(b: int, h: int, w: int, jitter: float, g, device) -> tuple[torch.Tensor, torch.Tensor]:
    """make_cifar_c's random affine: cv2.getAffineTransform of three jittered points, inverted."""
    center = torch.tensor([float(h // 2), float(w // 2)], dtype=torch.float64)
    size = min(h, w) // 3
    pts1 = torch.stack([center + size, torch.stack([center[0] + size, center[1] - size]), center - size])
    pts2 = pts1[None] + _uniform((b, 3, 2), -jitter, jitter, g, device, torch.float64).cpu()
    p = torch.cat([pts1, torch.ones(3, 1, dtype=torch.float64)], dim=1)  # (3, 3): rows (x, y, 1)
    m = torch.linalg.solve(p[None].expand(b, 3, 3), pts2).transpose(1, 2)  # (B, 2, 3): q = A p + t
    a, t = m[:, :, :2], m[:, :, 2:]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    dst = torch.stack([xx.reshape(-1), yy.reshape(-1)])  # (2, H*W), OpenCV points are (x, y)
    src = torch.linalg.solve(a, dst[None] - t)  # warpAffine samples src = A^-1 (dst - t)
    return src[:, 1].reshape(b, h, w).to(device), src[:, 0].reshape(b, h, w).to(device)


def elastic_transform(x, c, table, g):
    amp, sigma_frac, jitter = c
    b, _, h, w = x.shape
    if jitter > 0:
        ys, xs = _affine_sources(b, h, w, jitter * h, g, x.device)
        x = filters.bilinear_sample(x, ys.to(x.dtype), xs.to(x.dtype), "mirror")  # BORDER_REFLECT_101
    noise = _uniform((b, 2, h, w), -1, 1, g, x.device)
    if sigma_frac > 0:
        noise = filters.gaussian_blur(noise, (sigma_frac * h, sigma_frac * w), mode="reflect", truncate=3)
    # Displacement noise * (amp * h) pixels (channel 0: dx, 1: dy), sampled like SciPy's
    # map_coordinates(order=1, mode="reflect") (see filters.bilinear_sample): grid_sample's
    # normalised coordinates (2 p + 1) / size - 1 of p = pixel + displacement, written as one
    # multiply-add into the (B, H, W, 2) grid.
    base = _reflect_base_grid(h, w, str(x.device))
    scale = torch.tensor([2 * amp * h / w, 2 * amp], device=x.device, dtype=x.dtype)
    grid = torch.addcmul(base, noise.permute(0, 2, 3, 1), scale)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.clamp_(0, 1)


@lru_cache(maxsize=16)
def _reflect_base_grid(h: int, w: int, device: str) -> torch.Tensor:
    """(H, W, 2) grid_sample coordinates (x, y) of the pixel centres, align_corners=False."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.stack([(2 * xx + 1) / w - 1, (2 * yy + 1) / h - 1], dim=-1).to(device)


FAST_FUNCTIONS: dict[str, FastFn] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "saturate": saturate,
    "pixelate": pixelate,
    "elastic_transform": elastic_transform,
}
