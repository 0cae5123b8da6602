"""The fast paths added for speed give bitwise the same results as the plain ones."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from evaluation.corruptions import _quantise
from evaluation.corruptions.parallel import sub_seed
from evaluation.corruptions.reference import cpu_corrupt, per_image


def _jpeg_pil(image: np.ndarray, quality: int) -> np.ndarray:
    """What both reference scripts do: encode and decode with Pillow's JPEG at ``quality``."""
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=int(quality))
    buf.seek(0)
    return np.array(Image.open(buf).convert("RGB"))


def _old_quantise(y: torch.Tensor) -> torch.Tensor:
    return y.clamp(0, 1).mul_(255).add_(1e-3).floor_().div_(255)


def test_quantise_is_bitwise_the_old_formula():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 300, 301, generator=g) * 1.6 - 0.3  # out of range both ways, > one chunk
    flat = x.view(-1)
    flat[:256] = torch.arange(256) / 255  # exact levels
    flat[256:512] = (torch.arange(256) + 0.5) / 255  # exact .5 cases
    flat[512:768] = torch.arange(256) / 255 - 1e-7
    flat[768:776] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1.0, -1e-6, 1 + 1e-6])
    want = _old_quantise(x.clone())
    got = _quantise(x.clone())
    assert torch.equal(want.view(torch.int32), got.view(torch.int32))
    # non-contiguous input: a copy, same values, input untouched
    t = x.clone().transpose(-1, -2)
    before = t.clone()
    got_t = _quantise(t)
    assert torch.equal(got_t.view(torch.int32), _old_quantise(before.clone()).contiguous().view(torch.int32))
    assert torch.equal(t.contiguous().view(torch.int32), before.contiguous().view(torch.int32))  # NaN too


@pytest.mark.parametrize("name", ["jpeg_compression", "pixelate", "spatter"])
@pytest.mark.parametrize("table", ["imagenet", "cifar10"])
def test_threaded_per_image_equals_sequential(photos64, name, table):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        sequential = cpu_corrupt(photos64, name, 3, table, seed=7)
        torch.set_num_threads(4)  # more workers than cores is fine: order and seeds are kept
        threaded = cpu_corrupt(photos64, name, 3, table, seed=7)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(sequential, threaded)


@pytest.mark.parametrize("table", ["imagenet", "cifar10"])
def test_jpeg_is_bitwise_pillows(photos64, table):
    # The engine's JPEG goes through torchvision's libjpeg-turbo; the references use Pillow's.
    from evaluation.corruptions import params_for

    for severity in range(1, 6):
        quality = params_for(table, "jpeg_compression", severity)
        got = cpu_corrupt(photos64, "jpeg_compression", severity, table, seed=0)
        levels = (photos64 * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        want = np.stack([_jpeg_pil(np.ascontiguousarray(img), quality) for img in levels])
        assert torch.equal((got * 255).round().to(torch.uint8), torch.from_numpy(want).permute(0, 3, 1, 2))


def test_per_image_parallel_keeps_order_and_seeds(photos64):
    threads = torch.get_num_threads()
    seen = []

    def fn(img: np.ndarray, s: int) -> np.ndarray:
        seen.append(s)
        return _jpeg_pil(img, 10 + s % 50)

    try:
        torch.set_num_threads(3)
        got = per_image(photos64, fn, seed=5, parallel=True)
    finally:
        torch.set_num_threads(threads)
    want = per_image(photos64, fn, seed=5)
    assert torch.equal(got, want)
    assert sorted(seen[:len(photos64)]) == sorted(sub_seed(5, i) for i in range(len(photos64)))


def _old_contrast(x, c, table, g):
    means = x.mean(dim=(2, 3), keepdim=True)
    return ((x - means) * c + means).clamp(0, 1)


def _old_frost(x, c, table, g):
    from evaluation.corruptions.fast import _frost_crops

    frost_batch = _frost_crops(x, table, g)  # the same draws; only the arithmetic changed
    return ((c[0] * x * 255 + c[1] * frost_batch).clamp(0, 255)) / 255


def _old_brightness(x, c, table, g):
    v = x.max(dim=1, keepdim=True).values
    v_new = (v + c).clamp(0, 1)
    scaled = x * (v_new / v.clamp_min(1e-12))
    return torch.where(v > 0, scaled, v_new.expand_as(x)).clamp(0, 1)


OLD = {"contrast": _old_contrast, "frost": _old_frost, "brightness": _old_brightness}


@pytest.mark.parametrize("name", sorted(OLD))
@pytest.mark.parametrize("table", ["imagenet", "cifar10"])
def test_in_place_rewrites_are_bitwise_the_old_ones(photos64, name, table):
    from evaluation.corruptions import get_table, params_for
    from evaluation.corruptions.fast import FAST_FUNCTIONS

    old = OLD[name]
    tab = get_table(table)
    for severity in range(1, 6):
        c = params_for(tab, name, severity)
        x = photos64.clone()
        x[:, :, :3, :5] = 0  # black pixels: a case of their own in brightness
        x0 = x.clone()
        want = old(x, c, tab, torch.Generator().manual_seed(severity))
        got = FAST_FUNCTIONS[name](x, c, tab, torch.Generator().manual_seed(severity))
        assert torch.equal(x, x0)  # the input is left alone
        assert torch.equal(want, got)


def test_to_grid_is_the_old_formula():
    from evaluation.corruptions import _to_grid

    g = torch.Generator().manual_seed(1)
    base = torch.rand(3, 301, 302, 3, generator=g) * 1.6 - 0.3
    base.view(-1)[:256] = (torch.arange(256) + 0.5) / 255  # exact .5 cases
    for x in (base.permute(0, 3, 1, 2), base.permute(0, 3, 1, 2).contiguous(), base.double().permute(0, 3, 1, 2),
              (base * 255).clamp(0, 255).to(torch.uint8).permute(0, 3, 1, 2)):
        before = x.clone()
        want = (torch.round(x.float().clamp(0, 1) * 255) / 255).contiguous()
        got = _to_grid(x)
        assert got.is_contiguous() and got.dtype == torch.float32
        assert torch.equal(want.view(torch.int32), got.view(torch.int32))
        assert torch.equal(x, before)


@pytest.mark.parametrize("name", ["gaussian_noise", "glass_blur", "frost", "zoom_blur"])
def test_cpu_chunks_do_not_depend_on_the_thread_count(name):
    """The batch is cut into fixed chunks, each with its own seed, so 1 or 2 threads give the
    same images; 70 images of 64 px are three chunks (CPU_CHUNK_PIXELS), the last one short."""
    from evaluation.corruptions import CPU_CHUNK_PIXELS, corrupt
    from tests.evaluation.conftest import real_images

    x = real_images(70, 64)
    assert CPU_CHUNK_PIXELS // (64 * 64) < 70 <= 3 * (CPU_CHUNK_PIXELS // (64 * 64))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = corrupt(x, name, 3, seed=11)
        torch.set_num_threads(2)
        two = corrupt(x, name, 3, seed=11)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


def test_each_cpu_chunk_has_its_own_seed(photos64):
    """Chunk k runs the batched function with a generator seeded ``sub_seed(seed, k)``: the
    documented contract, and what makes the result independent of the other chunks."""
    from evaluation.corruptions import CPU_CHUNK_PIXELS, _quantise, corrupt, get_table, params_for
    from evaluation.corruptions.fast import FAST_FUNCTIONS

    step = CPU_CHUNK_PIXELS // (64 * 64)
    x = photos64.repeat(-(-(step + 3) // len(photos64)), 1, 1, 1)[:step + 3]  # two chunks
    tab = get_table("imagenet")
    out = corrupt(x, "shot_noise", 2, table="imagenet", seed=4)
    for k, (lo, hi) in enumerate([(0, step), (step, step + 3)]):
        g = torch.Generator().manual_seed(sub_seed(4, k))
        want = _quantise(FAST_FUNCTIONS["shot_noise"](x[lo:hi].clone(), params_for(tab, "shot_noise", 2), tab, g))
        assert torch.equal(out[lo:hi], want)


@pytest.mark.parametrize("c", [60.0, 12.0, 3.0])
def test_shot_noise_guide_table_gives_the_exact_inverse_cdf(c):
    """Every value is the smallest k with CDF(k) > u for its uniform u = bits / 2^31: the guide
    table's answers and the short searches agree with a full search of the level's CDF row."""
    from evaluation.corruptions.fast import _poisson_table, shot_noise

    g = torch.Generator().manual_seed(3)
    x = (torch.arange(256).float() / 255).repeat(3, 40).view(1, 3, 40, 256)  # every level, 120 times
    got = shot_noise(x, c, None, g)
    g = torch.Generator().manual_seed(3)
    bits = torch.empty(x.shape, dtype=torch.int32).random_(generator=g).view(-1)
    u = bits.double() * 2.0 ** -31
    cdf, _ = _poisson_table(c, "cpu")
    rows = cdf.view(256, -1)[(x * 255).round().long().view(-1)]
    k = torch.searchsorted(rows, u[:, None], right=True)[:, 0]
    assert torch.equal(got.view(-1), (k.float() / c).clamp(0, 1))


def test_pool_threads_run_single_threaded_and_leave_the_caller_alone():
    from evaluation.corruptions.parallel import thread_map

    def threads_after_an_op(_=None) -> int:
        torch.rand(100_000).mul(2)  # an op: torch settles the thread's intra-op setting lazily
        return torch.get_num_threads()

    def fresh_thread() -> int:
        seen = []
        t = threading.Thread(target=lambda: seen.append(threads_after_an_op()))
        t.start()
        t.join()
        return seen[0]

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert thread_map(threads_after_an_op, range(4), workers=2) == [1, 1, 1, 1]  # no teams in workers
        assert torch.get_num_threads() == 2 and fresh_thread() == 2  # the process-wide setting is back
        torch.set_num_threads(1)  # one thread: everything inline, in the caller's thread
        assert thread_map(lambda _: threading.current_thread().name, range(3)) == [threading.current_thread().name] * 3
    finally:
        torch.set_num_threads(threads)
