"""Named RobustViT configurations, registered with timm (``timm.create_model(name, **overrides)``).

- ``robust_vit``: the generic model with the documented defaults; every keyword of
  :class:`components.model.RobustViT` can be passed.
- The published FAN models (Zhou et al., ICML 2022) and TAP-FAN (Guo et al., ICCV 2023): conv or
  ConvNeXt-hybrid stem, XCiT Fourier position encoding, FAN channel mixer, two CaiT
  class-attention blocks. Parameter counts match the published ones within 2 % (``PUBLISHED_PARAMS``).
- Two small presets for CPU work: a ViT-Tiny-like model and a 32 px digits model.

No preset has weights: ``pretrained=True`` raises, since nothing is ever downloaded.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import create_model, register_model

from components.model import RobustViT

_FAN = dict(stem="conv", patch_size=16, mixer="fan", pos_embed="fourier", class_attn_layers=2, tokens_norm=True)
_FAN_HYBRID = dict(_FAN, stem="convnext")

#: Keyword arguments of every preset (``robust_vit`` is the class defaults).
PRESET_KWARGS: dict[str, dict[str, Any]] = {
    "robust_vit": {},
    "robust_vit_tiny_p16_224": dict(embed_dim=192, depth=12, num_heads=3, drop_path_schedule="linear"),
    "robust_vit_digits_p4_32": dict(img_size=32, patch_size=4, num_classes=10, embed_dim=64, depth=4,
                                    num_heads=4, mlp_ratio=4.0),
    "fan_tiny_12_p16_224": dict(_FAN, embed_dim=192, depth=12, num_heads=4),
    "fan_small_12_p16_224": dict(_FAN, embed_dim=384, depth=12, num_heads=8),
    "fan_base_18_p16_224": dict(_FAN, embed_dim=448, depth=18, num_heads=8),
    "fan_large_24_p16_224": dict(_FAN, embed_dim=480, depth=24, num_heads=10),
    "fan_tiny_8_p4_hybrid": dict(_FAN_HYBRID, embed_dim=192, depth=8, num_heads=8),
    "fan_small_12_p4_hybrid": dict(_FAN_HYBRID, embed_dim=384, depth=10, num_heads=8),
    "fan_base_16_p4_hybrid": dict(_FAN_HYBRID, embed_dim=448, depth=16, num_heads=8),
    "fan_large_16_p4_hybrid": dict(_FAN_HYBRID, embed_dim=480, depth=22, num_heads=10, convnext_depths=(3, 5)),
    "tap_fan_base_16_p4_hybrid": dict(_FAN_HYBRID, embed_dim=448, depth=16, num_heads=8,
                                      tap_dilations=(1, 2, 3)),
}

#: Every registered model name of the zoo.
PRESETS: tuple[str, ...] = tuple(PRESET_KWARGS)

#: Published parameter counts in millions (REFERENCE.md; FAN README, TAP paper), 1000 classes.
PUBLISHED_PARAMS: dict[str, float] = {
    "fan_tiny_12_p16_224": 7.3,
    "fan_small_12_p16_224": 28.0,
    "fan_base_18_p16_224": 54.0,
    "fan_large_24_p16_224": 80.5,
    "fan_tiny_8_p4_hybrid": 7.4,
    "fan_small_12_p4_hybrid": 26.3,
    "fan_base_16_p4_hybrid": 50.4,
    "fan_large_16_p4_hybrid": 76.8,
    "tap_fan_base_16_p4_hybrid": 50.7,
}

# Keyword arguments that timm.create_model always passes to an entrypoint; they mean nothing here.
_TIMM_FACTORY_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def _create(name: str, pretrained: bool, **kwargs: Any) -> RobustViT:
    """Build preset ``name`` with ``kwargs`` overriding its defaults."""
    if pretrained:
        raise ValueError(f"{name} has no pretrained weights (nothing is downloaded); use pretrained=False")
    for key in _TIMM_FACTORY_KWARGS:
        kwargs.pop(key, None)
    model = RobustViT(**{**PRESET_KWARGS[name], **kwargs})
    grid, patch = model.patch_embed.grid_size, model.patch_embed.patch_size
    # The pretrained_cfg timm's data helpers (resolve_data_config) read.
    model.pretrained_cfg = model.default_cfg = dict(
        architecture=name, num_classes=model.num_classes, input_size=(3, grid[0] * patch, grid[1] * patch),
        interpolation="bicubic", crop_pct=0.9, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
        first_conv="patch_embed", classifier="head",
    )
    return model


@register_model
def robust_vit(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """The generic RobustViT; every keyword of :class:`RobustViT` can be passed."""
    return _create("robust_vit", pretrained, **kwargs)


@register_model
def robust_vit_tiny_p16_224(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """ViT-Tiny-like: 192 wide, 12 blocks, 3 heads, linear stem, MLP mixer, mean pool (5.5M)."""
    return _create("robust_vit_tiny_p16_224", pretrained, **kwargs)


@register_model
def robust_vit_digits_p4_32(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """A 32 px, patch-4 model for the digits data set: 64 wide, 4 blocks, 4 heads, 10 classes (0.2M)."""
    return _create("robust_vit_digits_p4_32", pretrained, **kwargs)


@register_model
def fan_tiny_12_p16_224(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """FAN-ViT-T (7.3M)."""
    return _create("fan_tiny_12_p16_224", pretrained, **kwargs)


@register_model
def fan_small_12_p16_224(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """FAN-ViT-S (28.0M)."""
    return _create("fan_small_12_p16_224", pretrained, **kwargs)


@register_model
def fan_base_18_p16_224(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """FAN-ViT-B (54.0M)."""
    return _create("fan_base_18_p16_224", pretrained, **kwargs)


@register_model
def fan_large_24_p16_224(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """FAN-ViT-L (80.5M)."""
    return _create("fan_large_24_p16_224", pretrained, **kwargs)


@register_model
def fan_tiny_8_p4_hybrid(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """FAN-Hybrid-T (7.4M)."""
    return _create("fan_tiny_8_p4_hybrid", pretrained, **kwargs)


@register_model
def fan_small_12_p4_hybrid(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """FAN-Hybrid-S (26.3M; 10 blocks despite the name, as published)."""
    return _create("fan_small_12_p4_hybrid", pretrained, **kwargs)


@register_model
def fan_base_16_p4_hybrid(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """FAN-Hybrid-B (50.4M)."""
    return _create("fan_base_16_p4_hybrid", pretrained, **kwargs)


@register_model
def fan_large_16_p4_hybrid(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """FAN-Hybrid-L (76.8M; 22 blocks, ConvNeXt stages (3, 5), as published)."""
    return _create("fan_large_16_p4_hybrid", pretrained, **kwargs)


@register_model
def tap_fan_base_16_p4_hybrid(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """FAN-Hybrid-B with TAP (K = 4: identity + dilations 1, 2, 3) in every block (50.7M)."""
    return _create("tap_fan_base_16_p4_hybrid", pretrained, **kwargs)


def count_parameters(model_name: str, **kwargs: Any) -> int:
    """Parameter count of a registered model, built on the meta device (no memory, no init cost).

    ``kwargs`` override the preset's arguments, as in ``timm.create_model``.
    """
    with torch.device("meta"):
        model = create_model(model_name, **kwargs)
    return sum(p.numel() for p in model.parameters())
