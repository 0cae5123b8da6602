"""The corruption engine's interface: names, tables, seeding, shapes, errors, both tables, devices."""

from __future__ import annotations

import pytest
import torch

from evaluation.corruptions import (
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    FAST_CORRUPTIONS,
    TABLES,
    corrupt,
    fast_backend_coverage,
    params_for,
    parse_corruptions,
)
from tests.evaluation.conftest import real_images

RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur",
          "snow", "frost", "fog", "elastic_transform", "spatter")


@pytest.fixture(scope="module")
def photos32() -> torch.Tensor:
    return real_images(4, 32)


def test_names_and_groups():
    assert len(BENCHMARK_CORRUPTIONS) == 15 and len(EXTRA_CORRUPTIONS) == 4 and len(ALL_CORRUPTIONS) == 19
    assert set(EXTRA_CORRUPTIONS) == {"speckle_noise", "gaussian_blur", "spatter", "saturate"}
    for table in TABLES.values():
        assert set(table.params) == set(ALL_CORRUPTIONS)
        assert all(len(v) == 5 for v in table.params.values())
    assert parse_corruptions("benchmark") == BENCHMARK_CORRUPTIONS
    assert parse_corruptions("fog, snow") == ("fog", "snow")
    with pytest.raises(ValueError, match="valid corruptions"):
        parse_corruptions("fog,rain")


def test_tables_carry_the_published_parameters():
    # The published parameters: make_imagenet_c.py and make_cifar_c.py (docs/evaluation.md, Corruption tables).
    expected = {
        "gaussian_noise": ((.08, .12, .18, .26, .38), (.04, .06, .08, .09, .10)),
        "shot_noise": ((60, 25, 12, 5, 3), (500, 250, 100, 75, 50)),
        "impulse_noise": ((.03, .06, .09, .17, .27), (.01, .02, .03, .05, .07)),
        "contrast": ((.4, .3, .2, .1, .05), (.75, .5, .4, .3, .15)),
        "brightness": ((.1, .2, .3, .4, .5), (.05, .1, .15, .2, .3)),
        "jpeg_compression": ((25, 18, 15, 10, 7), (80, 65, 58, 50, 40)),
        "pixelate": ((.6, .5, .4, .3, .25), (.95, .9, .85, .75, .65)),
    }
    for name, (imagenet, cifar) in expected.items():
        assert [params_for("imagenet", name, s) for s in range(1, 6)] == pytest.approx(list(imagenet))
        assert [params_for("cifar10", name, s) for s in range(1, 6)] == pytest.approx(list(cifar))


def test_coverage_names_the_fallbacks():
    cov = fast_backend_coverage()
    assert set(cov) == set(ALL_CORRUPTIONS)
    assert {n for n, how in cov.items() if how != "torch"} == {"jpeg_compression", "spatter", "pixelate"}
    cuda = fast_backend_coverage("cuda")  # pixelate stays batched on a GPU
    assert {n for n, how in cuda.items() if how != "torch"} == {"jpeg_compression", "spatter"}
    assert FAST_CORRUPTIONS == {n for n, how in cuda.items() if how == "torch"}


@pytest.mark.parametrize("table", ["imagenet", "cifar10"])
@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_every_corruption_runs_on_both_tables(photos32, name, table):
    out = corrupt(photos32, name, 5, table=table, seed=1)
    assert out.shape == photos32.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(torch.round(out * 255) / 255, out)  # on the 8-bit grid
    assert (out - photos32).abs().mean() > 0.5 / 255  # it did something


@pytest.mark.parametrize("name", RANDOM)
def test_seeded(photos32, name):
    a = corrupt(photos32, name, 3, seed=11)
    assert torch.equal(a, corrupt(photos32, name, 3, seed=11))
    assert not torch.equal(a, corrupt(photos32, name, 3, seed=12))


def test_severity_increases_damage_on_the_cifar_table(photos32):
    for name in ("gaussian_noise", "defocus_blur", "contrast", "pixelate", "jpeg_compression"):
        dmg = [(corrupt(photos32, name, s, table="cifar10") - photos32).abs().mean().item() for s in (1, 5)]
        assert dmg[0] < dmg[1], name


def test_single_image_and_input_rounding(photos32):
    one = corrupt(photos32[0], "contrast", 2)
    assert one.shape == photos32[0].shape
    assert torch.equal(one, corrupt(photos32[:1], "contrast", 2)[0])


def test_errors(photos32):
    with pytest.raises(ValueError, match="valid corruptions"):
        corrupt(photos32, "rain", 1)
    with pytest.raises(ValueError, match="severity"):
        corrupt(photos32, "fog", 6)
    with pytest.raises(ValueError, match="valid tables"):
        corrupt(photos32, "fog", 1, table="svhn")
    with pytest.raises(ValueError, match="valid backends"):
        corrupt(photos32, "fog", 1, backend="wand")
    with pytest.raises(ValueError, match="'imagecorruptions' table only"):
        corrupt(photos32, "fog", 1, table="cifar10", backend="reference")
    with pytest.raises(ValueError, match="shape"):
        corrupt(photos32[:, :1], "fog", 1)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu_for_deterministic(photos32):
    for name in ("defocus_blur", "zoom_blur", "contrast", "brightness", "pixelate"):
        cpu = corrupt(photos32, name, 3)
        gpu = corrupt(photos32.cuda(), name, 3).cpu()
        assert (cpu - gpu).abs().max() <= 1 / 255 + 1e-6
