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


@pytest.mark.parametrize("name", ["robust_vit_tiny_p16_224", "robust_vit_digits_p4_32"])
def test_small_preset_docstrings_state_their_size(name: str) -> None:
    """The documented parameter count is the model's (the tiny one was once documented as 5.5M)."""
    doc = inspect.getdoc(getattr(__import__("components.presets", fromlist=[name]), name))
    assert f"({count_parameters(name) / 1e6:.{2 if 'tiny' in name else 1}f}M)" in doc


def test_tiny_preset_is_not_deit_tiny() -> None:
    model = timm.create_model("robust_vit_tiny_p16_224", num_classes=3, img_size=32)
    assert model.cls_token is None and model.global_pool == "avg"
    assert model.blocks[0].ls1.gamma.eq(1.0).all()  # LayerScale 1.0


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        (dict(num_scales=4), dict(tap_dilations=(1, 2, 3))),
        (dict(num_scales=1), dict(tap_dilations=())),
        (dict(drop_connect_rate=0.1), dict(drop_path_rate=0.1)),
        (dict(eta=0.5), dict(layer_scale_init=0.5)),
        (dict(cls_attn_layers=1), dict(class_attn_layers=1)),
        (dict(se_mlp=True), dict(mixer="fan_se")),
        (dict(use_pos_embed=False), dict(pos_embed="none")),
    ],
)
def test_authors_keyword_names_are_accepted(theirs: dict, ours: dict) -> None:
    """Users of the published code type these names (FAN's create_model calls, TAP's --num-scales)."""
    tiny = tiny_preset_kwargs("fan_tiny_12_p16_224")
    torch.manual_seed(0)
    a = timm.create_model("fan_tiny_12_p16_224", **tiny, **theirs)
    torch.manual_seed(0)
    b = timm.create_model("fan_tiny_12_p16_224", **tiny, **ours)
    assert str(a) == str(b)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(a.eval()(x), b.eval()(x))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(num_scales=0), r"num_scales \(TAP's K.*must be an integer >= 1, got 0"),
        (dict(num_scales=4, tap_dilations=(1, 2)), "num_scales and tap_dilations disagree"),
        (dict(drop_connect_rate=0.1, drop_path_rate=0.2), "drop_connect_rate and drop_path_rate disagree"),
        (dict(backbone=None, channel_dims=[16]), "channel_dims .* is not supported here: every block has width"),
        (dict(sr_ratio=[1, 1]), "sr_ratio .* not supported here"),
        (dict(embed_dims=16), r"unknown keyword argument 'embed_dims'; valid: .*embed_dim.*num_scales"),
    ],
)
def test_unknown_or_unsupported_keywords_say_what_to_use(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        timm.create_model("fan_tiny_12_p16_224", **kwargs)
