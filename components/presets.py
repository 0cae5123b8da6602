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

import inspect
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, create_model, generate_default_cfgs, register_model

from components.model import RobustViT
from components.stems import STEMS

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
    "fan_large_16_p4_hybrid": dict(_FAN_HYBRID, embed_dim=480, depth=22, num_heads=10, convnext_depths=(3, 5),
                                   head_init_scale=0.001),
    "tap_fan_base_16_p4_hybrid": dict(_FAN_HYBRID, embed_dim=448, depth=16, num_heads=8,
                                      tap_dilations=(1, 2, 3)),
}

#: Every registered model name of the zoo.
PRESETS: tuple[str, ...] = tuple(PRESET_KWARGS)

#: Published parameter counts in millions (FAN README, TAP paper), 1000 classes.
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

def _cfg(name: str) -> dict[str, Any]:
    """timm's pretrained_cfg of preset ``name``: no weights (no url), the data config timm's
    ``resolve_data_config`` reads, and the names of the first conv and of the classifier."""
    kw = PRESET_KWARGS[name]
    size = kw.get("img_size", 224)
    return dict(
        url="", num_classes=kw.get("num_classes", 1000), input_size=(3, size, size), pool_size=None,
        crop_pct=0.9, interpolation="bicubic", fixed_input_size=False, mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD, first_conv="patch_embed." + STEMS[kw.get("stem", "linear")].first_conv, classifier="head",
        license="apache-2.0",
    )


default_cfgs = generate_default_cfgs({name: _cfg(name) for name in PRESETS})

# ---- keyword arguments ----

#: Names that users of the authors' code (NVlabs/FAN, guoyongcs/TAPADL) type, and what they become.
#: ``num_scales`` is TAP's K (identity + dilations 1 .. K-1); ``drop_connect_rate`` is timm's old name
#: of the drop-path rate.
AUTHOR_KWARGS: dict[str, str] = {
    "num_scales": "tap_dilations",
    "drop_connect_rate": "drop_path_rate",
    "eta": "layer_scale_init",
    "cls_attn_layers": "class_attn_layers",
    "se_mlp": "mixer",
    "use_pos_embed": "pos_embed",
    "use_checkpoint": "set_grad_checkpointing()",
}

# Arguments of the authors' code that have no counterpart here, with what to use instead.
_REFUSED_KWARGS: dict[str, str] = {
    "backbone": "the hybrid stem is stem='convnext' (convnext_depths, convnext_dims)",
    "channel_dims": "every block has width embed_dim",
    "c_head_num": "the fan mixer uses num_heads",
    "sr_ratio": "attention here is never spatially reduced",
    "hybrid_patch_size": "the hybrid stem's projection is 2x2; set patch_size",
    "sharpen_attn": "not part of the published models",
    "drop_block_rate": "there is no DropBlock in this zoo; use drop_path_rate",
    "bn_momentum": "not supported",
    "bn_eps": "not supported",
}

# Keyword arguments that timm.create_model hands to every entrypoint; build_model_with_cfg takes them.
_TIMM_BUILD_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "pretrained_model_args", "cache_dir",
                      "features_only", "out_indices", "feature_cls", "feature_cfg")
_MODEL_KWARGS = tuple(inspect.signature(RobustViT).parameters)


def _same_or_set(kwargs: dict[str, Any], ours: str, value: Any, theirs: str) -> None:
    if ours in kwargs and kwargs[ours] != value:
        raise ValueError(f"{theirs} and {ours} disagree ({theirs} means {ours}={value!r}, got {ours}={kwargs[ours]!r})")
    kwargs[ours] = value


def translate_author_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Map the authors' keyword names onto ours; ``ValueError`` for anything neither of us knows.

    Returns the translated keyword arguments and whether gradient checkpointing was asked for
    (``use_checkpoint``).
    """
    out = dict(kwargs)
    for key in list(out):
        if key in _REFUSED_KWARGS:
            raise ValueError(f"{key} (an argument of the authors' FAN code) is not supported here: {_REFUSED_KWARGS[key]}")
        if key not in AUTHOR_KWARGS and key not in _MODEL_KWARGS and key not in _TIMM_BUILD_KWARGS:
            raise ValueError(f"unknown keyword argument {key!r}; valid: {', '.join(sorted(_MODEL_KWARGS))} "
                             f"(or the authors' {', '.join(sorted(AUTHOR_KWARGS))})")
    if "num_scales" in out:
        k = out.pop("num_scales")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"num_scales (TAP's K, identity + K-1 pooled branches) must be an integer >= 1, got {k!r}")
        _same_or_set(out, "tap_dilations", tuple(range(1, k)), "num_scales")
    if "drop_connect_rate" in out:
        _same_or_set(out, "drop_path_rate", out.pop("drop_connect_rate"), "drop_connect_rate")
    if "eta" in out:
        _same_or_set(out, "layer_scale_init", out.pop("eta"), "eta")
    if "cls_attn_layers" in out:
        _same_or_set(out, "class_attn_layers", out.pop("cls_attn_layers"), "cls_attn_layers")
    if out.pop("se_mlp", False):
        _same_or_set(out, "mixer", "fan_se", "se_mlp")
    if "use_pos_embed" in out and not out.pop("use_pos_embed"):
        _same_or_set(out, "pos_embed", "none", "use_pos_embed=False")
    return out, bool(out.pop("use_checkpoint", False))


def _local_weights(pretrained_cfg: Any) -> bool:
    """True when timm handed over a cfg that points at weights on disk (``local-dir:`` or ``file``)."""
    get = pretrained_cfg.get if isinstance(pretrained_cfg, dict) else lambda k: getattr(pretrained_cfg, k, None)
    return pretrained_cfg is not None and bool(get("file") or get("state_dict"))


def _create(name: str, pretrained: bool, **kwargs: Any) -> RobustViT:
    """Build preset ``name`` with ``kwargs`` overriding its defaults, as timm builds its own models."""
    if pretrained and not _local_weights(kwargs.get("pretrained_cfg")):
        raise ValueError(f"{name} has no pretrained weights (nothing is downloaded); use pretrained=False, "
                         "or load a folder of weights with timm.create_model('local-dir:FOLDER', pretrained=True)")
    kwargs, grad_checkpointing = translate_author_kwargs(kwargs)
    kwargs = {**PRESET_KWARGS[name], **kwargs}
    # features_only=True: timm's FeatureGetterNet over forward_intermediates, by default the last 3 blocks.
    depth = kwargs.get("depth", 12)
    model = build_model_with_cfg(
        RobustViT, name, pretrained=pretrained,  # True only for local weights: timm's loader reads them
        feature_cfg=dict(out_indices=min(3, depth) if isinstance(depth, int) else 3, feature_cls="getter"),
        **kwargs,
    )
    net = model if isinstance(model, RobustViT) else model.model
    if grad_checkpointing:
        net.set_grad_checkpointing(True)
    # The cfg of this very model: timm's data helpers (resolve_data_config) read the input size.
    grid, patch = net.patch_embed.grid_size, net.patch_embed.patch_size
    model.pretrained_cfg = model.default_cfg = {
        **model.pretrained_cfg, "num_classes": net.num_classes, "input_size": (net.in_chans, grid[0] * patch, grid[1] * patch),
        "first_conv": f"patch_embed.{net.patch_embed.first_conv}",
    }
    return model


@register_model
def robust_vit(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """The generic RobustViT; every keyword of :class:`RobustViT` can be passed."""
    return _create("robust_vit", pretrained, **kwargs)


@register_model
def robust_vit_tiny_p16_224(pretrained: bool = False, **kwargs: Any) -> RobustViT:
    """ViT-Tiny's dimensions (192 wide, 12 blocks, 3 heads, linear stem, MLP mixer), but unlike
    ViT-Ti / DeiT-Ti: no class token, mean pooling over the tokens, LayerScale 1.0 (5.72M)."""
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
