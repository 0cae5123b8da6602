"""The fast backend: each corruption as batched torch operations on a whole (B, 3, H, W) batch.

Every function here has the signature ``fn(x, params, table, generator) -> Tensor`` where ``x`` is
float32 (B, 3, H, W) in [0, 1] on the 8-bit grid, ``params`` the table entry for one severity and
``generator`` a ``torch.Generator`` on ``x``'s device. They return the corrupted batch in [0, 1];
the caller quantises to 8 bits the way the reference does (``np.uint8`` truncation).

Each follows the reference code (``imagecorruptions/corruptions.py``; ``make_cifar_c.py`` where the
CIFAR table differs in form) step by step; the random draws come from torch instead of NumPy, so
random corruptions agree with the reference in distribution, not pixel for pixel. Two corruptions
are not here and run per image on the CPU instead (see ``corruptions/__init__.py``): ``jpeg_compression``
(Pillow's own codec, the one the reference calls) and ``spatter`` (OpenCV edge and distance
transforms); ``pixelate`` is here for GPU batches, CPU batches go to Pillow (faster there, same
result). Differences from make_cifar_c: motion blur and snow use imagecorruptions' shifted-copy
motion blur with the CIFAR (radius, sigma) instead of ImageMagick's.
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
    return (x + torch.randn(x.shape, generator=g, device=x.device) * c).clamp(0, 1)


_GUIDE_BINS = 2048


@lru_cache(maxsize=32)
def _poisson_table(c: float, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse-CDF tables of Poisson(level / 255 * c) for the 256 input levels.

    Returns ``cdf`` (256, K + 1) float32 (a sentinel 2.0 ends each row) and the guide table
    ``guide`` (256, bins): the first k whose CDF exceeds ``j / bins``, where the search starts.
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
    grid = (torch.arange(_GUIDE_BINS, dtype=torch.float64) / _GUIDE_BINS)[None].expand(256, -1).contiguous()
    guide = torch.searchsorted(cdf, grid, right=True)
    return cdf.float().to(device), guide.to(torch.int32).to(device)


def shot_noise(x, c, table, g):
    # Exact Poisson(x * c) by inverse CDF with a guide table: x is on the 8-bit grid, so there
    # are only 256 rates (torch.poisson is several times slower on CPU). 32-bit throughout.
    cdf, guide = _poisson_table(float(c), str(x.device))
    width = cdf.shape[1]
    level = torch.round(x * 255).to(torch.int32)
    u = torch.rand(x.shape, generator=g, device=x.device)
    # index_select: much faster than advanced indexing for large index tensors on CPU
    k = guide.view(-1).index_select(0, (level * _GUIDE_BINS + (u * _GUIDE_BINS).to(torch.int32)).view(-1))
    # The guide gives the answer for most values; the rest (the CDF still <= u) need a few more
    # steps: an exact row search for those only.
    at_k = cdf.view(-1).index_select(0, level.view(-1) * width + k)
    rest = torch.nonzero(at_k <= u.view(-1)).view(-1)
    if rest.numel():
        rows = cdf.index_select(0, level.view(-1).index_select(0, rest))  # (R, K + 1)
        k[rest] = torch.searchsorted(rows, u.view(-1)[rest][:, None], right=True)[:, 0].to(k.dtype)
    k = k.view(x.shape)
    return (k.to(x.dtype) / float(c)).clamp(0, 1)


def impulse_noise(x, c, table, g):
    # skimage random_noise 's&p': each value (channels independently) flipped with probability
    # `amount`; a flipped value becomes 1 or 0 with equal probability. One uniform u decides
    # both: u < c/2 -> salt (1), c/2 <= u < c -> pepper (0); the same joint distribution.
    u = torch.rand(x.shape, generator=g, device=x.device)
    out = torch.where(u < c / 2, torch.ones_like(x), x)
    return torch.where((u >= c / 2) & (u < c), torch.zeros_like(x), out)


def speckle_noise(x, c, table, g):
    return (x + x * torch.randn(x.shape, generator=g, device=x.device) * c).clamp(0, 1)


# ------------------------------------------------------------------------------------------ blur


def gaussian_blur(x, c, table, g):
    return filters.gaussian_blur(x, c, mode="nearest").clamp(0, 1)


def defocus_blur(x, c, table, g):
    kernel = filters.disk_kernel(radius=c[0], alias_blur=c[1])
    return filters.fft_correlate(x, kernel, mode="mirror").clamp(0, 1)  # cv2.filter2D border


def _motion_blur(x: torch.Tensor, radius: int, sigma: float, angles: torch.Tensor) -> torch.Tensor:
    """imagecorruptions' ``_motion_blur`` for the batch, one angle (degrees) per image."""
    h, w = x.shape[-2:]
    kernels = filters.motion_kernels(radius, sigma, angles, h, w)
    return filters.fft_correlate(x, kernels, mode="nearest")


def motion_blur(x, c, table, g):
    angles = _uniform((x.shape[0],), -45, 45, g, x.device, torch.float64)
    # The reference blurs 0..255 values and clips; same thing in [0, 1].
    return _motion_blur(x, c[0], c[1], angles).clamp(0, 1)


def _clipped_zoom(x: torch.Tensor, zoom: float, trim: str, full: bool = False) -> torch.Tensor:
    """``clipped_zoom`` of the batch: centre crop, linear zoom, trim (or keep all when ``full``).

    SciPy's ``zoom(order=1)`` samples output i at ``i * (crop - 1) / (out - 1)``: exactly
    ``interpolate(..., align_corners=True)``.
    """
    h, w = x.shape[-2:]
    ch, cw = int(np.ceil(h / zoom)), int(np.ceil(w / zoom))
    top, left = (h - ch) // 2, (w - cw) // 2
    oh, ow = int(round(ch * zoom)), int(round(cw * zoom))
    y = F.interpolate(x[..., top:top + ch, left:left + cw], size=(oh, ow), mode="bilinear",
                      align_corners=True)
    if full:
        return y
    t0 = 0 if trim == "topleft" else (oh - h) // 2
    l0 = 0 if trim == "topleft" else (ow - w) // 2
    return y[..., t0:t0 + h, l0:l0 + w]


def zoom_blur(x, c, table, g):
    out = torch.zeros_like(x)
    for z in c:
        out += _clipped_zoom(x, float(z), table.zoom_trim)
    return ((x + out) / (len(c) + 1)).clamp(0, 1)


def _glass_shuffle_index(b: int, h: int, w: int, delta: int, iterations: int, g, device) -> torch.Tensor:
    """Flat source index (B, H*W) of ImageNet-C's local pixel "swap" loop, vectorised along rows.

    The reference visits rows h = H-delta .. delta+1 (bottom up) and, in each, columns right to
    left, and does ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` with views, which copies
    ``x[h', w']`` into ``x[h, w]`` (the second assignment is a no-op). So every visited pixel takes
    the *current* value of (h + dy, w + dx), dx, dy in [-delta, delta). Rows below are final,
    rows above untouched; inside a row, sources to the right were already visited: those chains
    are resolved by pointer jumping.
    """
    src = torch.arange(h * w, device=device).repeat(b, 1)
    cols = torch.arange(w - delta, delta, -1, device=device)  # visiting order within a row
    rows = torch.arange(h - delta, delta, -1, device=device)
    n = cols.numel()
    if n <= 0 or rows.numel() <= 0:
        return src
    pos = torch.arange(n, device=device)
    for _ in range(iterations):
        # All draws of this pass at once, row by row in visiting order: (rows, B, n, 2) = (dx, dy).
        d = _randint(-delta, delta, (rows.numel(), b, n, 2), g, device)
        dx, dy = d[..., 0], d[..., 1]
        sw = cols.view(1, 1, n) + dx
        source = (rows.view(-1, 1, 1) + dy) * w + sw  # flat source position of every visit
        pointing = (dy == 0) & (dx > 0) & (sw <= w - delta)  # source in the same row, already visited
        targets = torch.where(pointing, (w - delta) - sw, pos.view(1, 1, n))
        any_pointing = pointing.flatten(1).any(dim=1).tolist() if delta > 1 else [False] * rows.numel()
        for r, row in enumerate(rows.tolist()):
            value = src.gather(1, source[r])  # state before this row
            if any_pointing[r]:  # with delta = 1, dx < 1: nothing points right
                ptr = targets[r]
                while True:  # pointer jumping until every chain reaches its end (a few rounds)
                    nxt = ptr.gather(1, ptr)
                    if torch.equal(nxt, ptr):
                        break
                    ptr = nxt
                value = value.gather(1, ptr)
            src[:, row * w + cols] = value
    return src


def glass_blur(x, c, table, g):
    sigma, delta, iterations = c
    b, ch, h, w = x.shape
    # np.uint8(gaussian(x) * 255): truncation to the 8-bit grid between the two blurs
    y = torch.floor(filters.gaussian_blur(x, sigma, mode="nearest") * 255 + 1e-4) / 255
    src = _glass_shuffle_index(b, h, w, delta, iterations, g, x.device)
    # Apply the per-image permutations as one row gather over (B * H * W, C) (index_select is
    # much faster than gather on CPU).
    flat = (src + torch.arange(b, device=x.device)[:, None] * (h * w)).view(-1)
    pixels = y.permute(0, 2, 3, 1).reshape(b * h * w, ch).index_select(0, flat)
    y = pixels.view(b, h, w, ch).permute(0, 3, 1, 2).contiguous()
    return filters.gaussian_blur(y, sigma, mode="nearest").clamp(0, 1)


# --------------------------------------------------------------------------------------- weather


def snow(x, c, table, g):
    b, _, h, w = x.shape
    layer = torch.randn((b, 1, h, w), generator=g, device=x.device) * c[1] + c[0]
    full = table.zoom_trim == "topleft"  # imagecorruptions blurs the whole zoomed layer, then crops
    layer = _clipped_zoom(layer, float(c[2]), table.zoom_trim, full=full)
    layer = torch.where(layer < c[3], torch.zeros_like(layer), layer).clamp(0, 1)
    angles = _uniform((b,), -135, -45, g, x.device, torch.float64)
    layer = _motion_blur(layer, c[4], c[5], angles)
    layer = (torch.round(layer * 255) / 255)[..., :h, :w]  # (B, 1, H, W)
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]  # cv2 RGB2GRAY
    x = c[6] * x + (1 - c[6]) * torch.maximum(x, gray * 1.5 + 0.5)
    return (x + layer + layer.flip(-1, -2)).clamp(0, 1)


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


def frost(x, c, table, g):
    b, _, h, w = x.shape
    layers = _frost_layers(h, w, table.frost_scale)
    idx = _randint(0, table.frost_choices, (b,), g, x.device).tolist()
    crops = []
    for i in idx:
        layer = layers[i]
        top = int(_randint(0, layer.shape[1] - h, (1,), g, x.device))
        left = int(_randint(0, layer.shape[2] - w, (1,), g, x.device))
        crops.append(layer[:, top:top + h, left:left + w])
    frost_batch = torch.stack(crops).to(x.device)  # (B, 3, H, W) in 0..255
    return ((c[0] * x * 255 + c[1] * frost_batch).clamp(0, 255)) / 255


def fog(x, c, table, g):
    b, _, h, w = x.shape
    mapsize = 1 << (max(h, w) - 1).bit_length()
    plasma = filters.plasma_fractal(b, mapsize, c[1], g, x.device)[:, None, :h, :w].to(x.dtype)
    max_val = x.reshape(b, -1).max(dim=1).values.view(b, 1, 1, 1)
    return ((x + c[0] * plasma) * max_val / (max_val + c[0])).clamp(0, 1)


def brightness(x, c, table, g):
    # rgb -> hsv, V += c (clipped), hsv -> rgb. With hue and saturation fixed every channel is
    # proportional to V, so this is a per-pixel rescale; black pixels (V = 0, S = 0) become grey V'.
    v = x.max(dim=1, keepdim=True).values
    v_new = (v + c).clamp(0, 1)
    scaled = x * (v_new / v.clamp_min(1e-12))
    return torch.where(v > 0, scaled, v_new.expand_as(x)).clamp(0, 1)


# --------------------------------------------------------------------------------------- digital


def contrast(x, c, table, g):
    means = x.mean(dim=(2, 3), keepdim=True)  # per image and channel, like the reference
    return ((x - means) * c + means).clamp(0, 1)


def saturate(x, c, table, g):
    # rgb -> hsv, S = clip(S * c0 + c1), hsv -> rgb. With H and V fixed each channel is
    # v - s * v * a_c with a_c = (v - x_c) / (v - min): a linear map of S. Grey pixels have
    # H = 0 (skimage's convention), so a positive new S tints them red: (v, v(1-s), v(1-s)).
    v = x.max(dim=1, keepdim=True).values
    mn = x.min(dim=1, keepdim=True).values
    delta = v - mn
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    s_new = (s * c[0] + c[1]).clamp(0, 1)
    coloured = v - s_new * v * (v - x) / delta.clamp_min(1e-12)
    grey = torch.cat([v, v * (1 - s_new), v * (1 - s_new)], dim=1)
    return torch.where(delta > 0, coloured, grey).clamp(0, 1)


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
    disp = noise * (amp * h)  # (B, 2, H, W): dx, dy in pixels
    yy, xx = torch.meshgrid(torch.arange(h, device=x.device, dtype=torch.float32),
                            torch.arange(w, device=x.device, dtype=torch.float32), indexing="ij")
    out = filters.bilinear_sample(x, yy[None] + disp[:, 1], xx[None] + disp[:, 0], "reflect")
    return out.clamp(0, 1)


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
