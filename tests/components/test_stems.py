"""Every registered stem through the same checks; patch-size errors."""

from __future__ import annotations

import pytest
import torch

from components import STEMS, get_stem
from tests.components._helpers import assert_deterministic_in_eval, assert_grads_reach_all

TINY = {"convnext": dict(convnext_depths=(1, 1), convnext_dims=(8, 16))}


@pytest.mark.parametrize("name", sorted(STEMS))
@pytest.mark.parametrize(("img", "patch"), [(32, 8), ((16, 24), 4)])
def test_shape_backward_determinism(name: str, img, patch: int) -> None:
    stem = get_stem(name)(img, patch, 3, 16, **TINY.get(name, {}))
    h, w = (img, img) if isinstance(img, int) else img
    x = torch.randn(2, 3, h, w)
    tokens, hw = stem(x)
    assert hw == (h // patch, w // patch) == stem.grid_size
    assert tokens.shape == (2, hw[0] * hw[1], 16)
    tokens.square().mean().backward()
    assert_grads_reach_all(stem)
    stem.eval()
    assert_deterministic_in_eval(lambda t: stem(t)[0], x)


def test_fan_conv_stem_widths() -> None:
    convs = [m for m in get_stem("conv")(224, 16, 3, 192).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [24, 48, 96, 192]
    assert all(c.stride == (2, 2) and c.bias is None for c in convs)


def test_unknown_stem_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown stem 'resnet'; valid stems: conv, convnext, linear"):
        get_stem("resnet")


@pytest.mark.parametrize("name", sorted(STEMS))
def test_image_size_not_divisible_by_patch(name: str) -> None:
    with pytest.raises(ValueError, match="image size 30x30 is not divisible by patch_size=8"):
        get_stem(name)(30, 8, 3, 16)


def test_stem_specific_patch_rules() -> None:
    with pytest.raises(ValueError, match="power-of-two patch_size"):
        get_stem("conv")(36, 6, 3, 16)
    with pytest.raises(ValueError, match="patch_size divisible by 4"):
        get_stem("convnext")(36, 6, 3, 16)
