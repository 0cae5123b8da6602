"""Presets: registered with timm, published parameter counts within 2 %, and each runs at tiny size."""

from __future__ import annotations

import inspect

import pytest
import timm
import torch

from components import PRESET_KWARGS, PRESETS, PUBLISHED_PARAMS, STEMS, RobustViT, count_parameters
from tests.components._helpers import tiny_preset_kwargs
from tests.components.test_model import check_model


def test_all_presets_registered_with_timm() -> None:
    assert set(PRESETS) <= set(timm.list_models())
    assert set(PUBLISHED_PARAMS) == {n for n in PRESETS if n.startswith(("fan_", "tap_fan_"))}
    assert len(PUBLISHED_PARAMS) == 9


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameter_count_within_two_percent_of_published(name: str) -> None:
    count = count_parameters(name)  # built on the meta device: no memory, no forward
    published = PUBLISHED_PARAMS[name] * 1e6
    assert abs(count - published) / published < 0.02, f"{name}: {count / 1e6:.2f}M vs {published / 1e6}M"


def test_small_presets_sizes() -> None:
    assert 0.1e6 <= count_parameters("robust_vit_digits_p4_32") <= 0.3e6
    assert 5.0e6 <= count_parameters("robust_vit_tiny_p16_224") <= 6.0e6  # ViT-Ti is 5.7M


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_runs_at_tiny_size(name: str) -> None:
    """The preset's own structure (stem, mixer, position encoding, head, TAP), shrunk."""
    model = timm.create_model(name, **tiny_preset_kwargs(name))
    defaults = {k: v.default for k, v in inspect.signature(RobustViT).parameters.items()}
    preset = {**defaults, **PRESET_KWARGS[name]}
    assert model.mixers == (preset["mixer"],) * 2
    assert isinstance(model.patch_embed, STEMS[preset["stem"]])
    assert len(model.cls_attn_blocks) == preset["class_attn_layers"]
    assert model.tap_dilations == tuple(preset["tap_dilations"])
    assert timm.data.resolve_data_config({}, model=model)["input_size"] == (3, 16, 16)
    x = torch.randn(2, 3, 16, 16)
    check_model(model, x, 3, 2, 2)
