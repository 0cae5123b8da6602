"""The corruption engine: 19 corruptions x 5 severities, two parameter tables, two backends.

>>> from evaluation.corruptions import corrupt
>>> y = corrupt(x, "fog", 3, table="imagenet_c", backend="torch", seed=0)  # x: (B, 3, H, W) in [0, 1]

Backends:

* ``"torch"`` (default, the fast one): batched torch operations on the whole batch, on the batch's
  device (CPU or CUDA), for the corruptions in :data:`FAST_CORRUPTIONS`; ``jpeg_compression`` and
  ``spatter`` run per image on the CPU (libjpeg-turbo through torchvision, bitwise Pillow's JPEG;
  OpenCV edge/distance transforms), and
  so does ``pixelate`` for CPU batches (Pillow's resize is faster there than batched matmuls).
  :func:`fast_backend_coverage` says which. Both tables.
* ``"reference"``: ``imagecorruptions`` per image, the ``imagecorruptions`` table only.

Tables (:mod:`.tables`): ``"imagenet_c"`` (the released ImageNet-C recipe, final JPEG-85 save
included), ``"imagecorruptions"`` (the package's variant; former name ``"imagenet"``), ``"cifar10"``.

Outputs are float32 in [0, 1] on the 8-bit grid, quantised like the reference (``np.uint8``
truncation). Same inputs, seed and device give the same images, whatever the number of threads:
on the CPU the torch backend cuts the batch into fixed chunks (:data:`CPU_CHUNK_PIXELS`), each
with its own seed, and runs them on threads (``parallel.py``).
"""

from __future__ import annotations

import torch

from evaluation.corruptions.fast import FAST_FUNCTIONS
from evaluation.corruptions.parallel import sub_seed, thread_map
from evaluation.corruptions.reference import cpu_corrupt, jpeg, reference_corrupt
from evaluation.corruptions.tables import (
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    CIFAR10_TABLE,
    EXTRA_CORRUPTIONS,
    IMAGECORRUPTIONS_TABLE,
    IMAGENET_C_TABLE,
    SEVERITIES,
    TABLE_ALIASES,
    TABLES,
    CorruptionTable,
    auto_table,
    check_corruption,
    get_table,
    params_for,
    table_name,
)

BACKENDS = ("torch", "reference")
FAST_CORRUPTIONS: frozenset[str] = frozenset(FAST_FUNCTIONS)

__all__ = [
    "ALL_CORRUPTIONS", "BACKENDS", "BENCHMARK_CORRUPTIONS", "CIFAR10_TABLE", "CPU_CHUNK_PIXELS", "EXTRA_CORRUPTIONS",
    "CPU_PER_IMAGE_ON_CPU", "FAST_CORRUPTIONS", "IMAGECORRUPTIONS_TABLE", "IMAGENET_C_TABLE", "SEVERITIES", "TABLES", "TABLE_ALIASES",
    "CorruptionTable", "auto_table", "corrupt", "table_name",
    "fast_backend_coverage", "get_table", "params_for", "parse_corruptions",
]


# Corruptions the torch backend hands to Pillow per image when the batch is on the CPU, where
# Pillow's C resampling is faster than batched matmuls (identical output, see the tests).
CPU_PER_IMAGE_ON_CPU: frozenset[str] = frozenset({"pixelate"})


def fast_backend_coverage(device: str | torch.device = "cpu") -> dict[str, str]:
    """For each of the 19 corruptions, how the ``"torch"`` backend runs it on ``device``:
    ``"torch"`` (batched torch ops) or ``"cpu-per-image"`` (a per-image CPU implementation:
    the JPEG codec, Pillow's resize, the NumPy/OpenCV spatter)."""
    on_cpu = torch.device(device).type == "cpu"
    out = {}
    for name in ALL_CORRUPTIONS:
        batched = name in FAST_FUNCTIONS and not (on_cpu and name in CPU_PER_IMAGE_ON_CPU)
        out[name] = "torch" if batched else "cpu-per-image"
    return out


def parse_corruptions(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"benchmark"`` (the 15), ``"extra"`` (4), ``"all"`` (19), or names (list or comma string)."""
    if isinstance(spec, str):
        groups = {"benchmark": BENCHMARK_CORRUPTIONS, "extra": EXTRA_CORRUPTIONS, "all": ALL_CORRUPTIONS}
        if spec in groups:
            return groups[spec]
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    names = tuple(spec)
    for name in names:
        check_corruption(name, 1)
    if not names:
        raise ValueError("no corruption named; give 'benchmark', 'extra', 'all' or corruption names")
    return names


_QUANTISE_CHUNK = 2 * 3 * 224 * 224  # elements per chunk: stays in a core's L2 cache between passes


def _quantise(y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``floor(clamp(y, 0, 1) * 255 + 1e-3) / 255``, in place on ``y`` (the engine's own temporary),
    or with its last pass writing into ``out`` (same shape, contiguous float32).

    np.uint8(float in [0, 255]) truncates; a small epsilon keeps float32 round-off from pulling
    exact integers one level down. Clamping after the floor to [0, 255] gives bitwise the same
    result as clamping to [0, 1] first (tested), and the passes run chunk by chunk so each chunk
    is still in cache for the next pass.
    """
    if not y.is_contiguous() or y.dtype != torch.float32:
        y = y.float().contiguous()  # a new tensor: float() or contiguous() copies here
    out = y if out is None else out
    flat, dest = y.view(-1), out.view(-1)
    for i in range(0, flat.numel(), _QUANTISE_CHUNK):
        part = flat[i:i + _QUANTISE_CHUNK].mul_(255).add_(1e-3).floor_().clamp_(0, 255)
        torch.div(part, 255, out=dest[i:i + _QUANTISE_CHUNK])
    return out


def _to_grid(x: torch.Tensor) -> torch.Tensor:
    """``round(clamp(x, 0, 1) * 255) / 255`` as a new contiguous float32 tensor.

    The clamp writes straight into a contiguous tensor (one pass, also for channels-last or
    permuted input, which ``clamp`` then ``contiguous`` copied twice); the rest in place, chunk by
    chunk while in cache. The same operations as before, so the same values.
    """
    xf = x.float()
    out = torch.empty(xf.shape, dtype=torch.float32, device=xf.device)
    torch.clamp(xf, 0, 1, out=out)
    flat = out.view(-1)
    for i in range(0, flat.numel(), _QUANTISE_CHUNK):
        flat[i:i + _QUANTISE_CHUNK].mul_(255).round_().div_(255)
    return out


CPU_CHUNK_PIXELS = 4 * 224 * 224
"""Pixels per image chunk of the fast backend on the CPU (4 images at 224 px, 196 at 32 px).

Each chunk runs the whole corruption with its own generator (seed: :func:`parallel.sub_seed` of
the call's seed and the chunk's index), so a chunk's temporaries stay in a core's cache, chunks run
in parallel on threads, and the output depends on this constant but not on the thread count.
Changing it changes the random corruptions' output: bump ``corrupted_set.ENGINE_VERSION``."""


def _run_fast(x: torch.Tensor, name: str, params, tab: CorruptionTable, seed: int) -> torch.Tensor:
    """The batched torch implementation of ``name`` on ``x`` (B, 3, H, W), quantised.

    CUDA and other devices: the whole batch in one go (one generator seeded with ``seed``). CPU:
    chunks of :data:`CPU_CHUNK_PIXELS` on threads, each chunk rounded, corrupted and quantised by
    one thread straight into its rows of the output.
    """
    fn = FAST_FUNCTIONS[name]
    if x.device.type != "cpu":
        g = torch.Generator(device=x.device)
        g.manual_seed(int(seed))
        return _quantise(fn(_to_grid(x), params, tab, g))
    b, _, h, w = x.shape
    step = max(1, CPU_CHUNK_PIXELS // (h * w))
    out = torch.empty(x.shape, dtype=torch.float32)

    def one(k: int) -> None:
        lo, hi = k * step, min(b, (k + 1) * step)
        g = torch.Generator()
        g.manual_seed(sub_seed(seed, k))
        _quantise(fn(_to_grid(x[lo:hi]), params, tab, g), out=out[lo:hi])

    thread_map(one, range(-(-b // step)))
    return out


def corrupt(images: torch.Tensor, name: str, severity: int, *, table: str = "imagenet_c",
            backend: str = "torch", seed: int = 0) -> torch.Tensor:
    """Corrupt ``images`` ((3, H, W) or (B, 3, H, W), float in [0, 1]) with ``name`` at ``severity``.

    Args:
        images: the clean images; values are rounded to the 8-bit grid first.
        name: one of :data:`ALL_CORRUPTIONS`.
        severity: 1..5.
        table: ``"imagenet_c"``, ``"imagecorruptions"`` or ``"cifar10"`` (:mod:`evaluation.corruptions.tables`).
        backend: ``"torch"`` (fast, every table) or ``"reference"`` (imagecorruptions, its own table).
        seed: the random seed; the same seed gives the same images.

    Returns:
        Float32 tensor of the input's shape and device, in [0, 1], on the 8-bit grid.
    """
    check_corruption(name, severity)
    tab = get_table(table)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {list(BACKENDS)}")
    if images.dim() not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(f"images must be (3, H, W) or (B, 3, H, W), got shape {tuple(images.shape)}")
    single = images.dim() == 3
    x = images[None] if single else images
    if backend == "reference":
        if tab.name != "imagecorruptions":
            raise ValueError(
                "the reference backend (imagecorruptions) implements the 'imagecorruptions' table only; "
                f"use backend='torch' for table {table!r}"
            )
        out = reference_corrupt(x, name, severity, seed)  # rounds to 8 bits itself
    elif name in FAST_FUNCTIONS and not (x.device.type == "cpu" and name in CPU_PER_IMAGE_ON_CPU):
        out = _run_fast(x, name, params_for(tab, name, severity), tab, seed)
    else:
        out = cpu_corrupt(x, name, severity, tab.name, seed)  # rounds to 8 bits itself
    if tab.final_jpeg is not None:  # make_imagenet_c saves every corrupted image as JPEG (quality 85)
        out = jpeg(out, tab.final_jpeg)
    return out[0] if single else out
