"""RobustViT: every mixer x stem through the same checks, TAP placement, heads, errors, timm parity."""

from __future__ import annotations

import itertools

import pytest
import timm
import torch

from components import MIXERS, STEMS, RobustViT
from tests.components._helpers import assert_deterministic_in_eval, assert_grads_reach_all

TINY = dict(img_size=16, patch_size=4, embed_dim=16, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=5)
STEM_TINY = {"convnext": dict(convnext_depths=(1, 1), convnext_dims=(8, 16))}


def check_model(model: torch.nn.Module, x: torch.Tensor, num_classes: int, heads: int, depth: int) -> None:
    """The registry-wide checks: shape, gradients, attention maps, eval determinism."""
    model.train()
    logits, maps = model.forward_with_attention(x)
    assert logits.shape == (x.shape[0], num_classes)
    n = maps[0].shape[-1]
    assert len(maps) == depth
    for a in maps:
        assert a.shape == (x.shape[0], heads, n, n)
        torch.testing.assert_close(a.sum(-1), torch.ones_like(a.sum(-1)), atol=1e-5, rtol=0)
    (logits.square().mean() + sum(a.square().mean() for a in maps)).backward()
    assert_grads_reach_all(model)
    model.eval()
    assert_deterministic_in_eval(model, x)
    with torch.no_grad():  # the maps come from the same pass as the logits
        torch.testing.assert_close(model.forward_with_attention(x)[0], model(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("mixer", "stem"), list(itertools.product(sorted(MIXERS), sorted(STEMS))))
def test_every_mixer_and_stem(mixer: str, stem: str) -> None:
    model = timm.create_model("robust_vit", mixer=mixer, stem=stem, tap_dilations=(1, 2), tap_blocks=(1,),
                              **TINY, **STEM_TINY.get(stem, {}))
    assert [b.tap is not None for b in model.blocks] == [False, True]
    check_model(model, torch.randn(2, 3, 16, 16), 5, 2, 2)


@pytest.mark.parametrize("pos_embed", ["learned", "fourier", "none"])
def test_class_attention_head_and_position_encodings(pos_embed: str) -> None:
    model = timm.create_model("robust_vit", class_attn_layers=2, pos_embed=pos_embed, drop_path_rate=0.1,
                              **{**TINY, "num_heads": 4})
    assert model.global_pool == "token"
    feats = model.forward_features(torch.randn(2, 3, 16, 16))
    assert feats.shape == (2, 1 + 16, 16)  # class token + 4x4 grid
    assert model.forward_head(feats, pre_logits=True).shape == (2, 16)
    check_model(model, torch.randn(2, 3, 16, 16), 5, 4, 2)


def test_one_mixer_per_block_any_heads_non_square_image() -> None:
    model = RobustViT(img_size=(12, 20), patch_size=4, embed_dim=15, depth=4, num_heads=5, num_classes=3,
                      mixer=["mlp", "se", "xca", "fan"], tap_dilations=(1, 3))
    assert model.mixers == ("mlp", "se", "xca", "fan") and model.tap_blocks == (0, 1, 2, 3)
    check_model(model, torch.randn(2, 3, 12, 20), 3, 5, 4)


def test_tap_feeds_attention_branch_only() -> None:
    model = RobustViT(**TINY, tap_dilations=(1,)).eval()
    block = model.blocks[0]
    x, hw = torch.randn(2, 16, 16), (4, 4)
    expected = x + block.ls1(block.attn(block.norm1(block.tap(x, hw))))  # residual keeps un-pooled x
    expected = expected + block.ls2(block.mixer(block.norm2(expected), hw))
    torch.testing.assert_close(block(x, hw), expected)


def test_any_image_size_at_run_time() -> None:
    model = RobustViT(**TINY).eval()  # learned position embedding, resampled for the 24x32 input
    assert model(torch.randn(1, 3, 24, 32)).shape == (1, 5)
    assert model.forward_with_attention(torch.randn(1, 3, 24, 32))[1][0].shape == (1, 2, 48, 48)


def test_drop_path_and_layer_scale_options() -> None:
    uniform = RobustViT(**{**TINY, "depth": 3}, drop_path_rate=0.2)
    linear = RobustViT(**{**TINY, "depth": 3}, drop_path_rate=0.2, drop_path_schedule="linear")
    assert [getattr(b.drop_path1, "drop_prob", 0.0) for b in uniform.blocks] == [0.2, 0.2, 0.2]
    assert [getattr(b.drop_path1, "drop_prob", 0.0) for b in linear.blocks] == pytest.approx([0.0, 0.1, 0.2])
    no_ls = RobustViT(**TINY, layer_scale_init=0)
    assert not any("ls1" in n or "ls2" in n for n, _ in no_ls.named_parameters())
    assert torch.all(RobustViT(**TINY, layer_scale_init=0.1).blocks[0].ls1.gamma == 0.1)


def test_reset_classifier_and_no_classifier() -> None:
    model = RobustViT(**TINY)
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 16)
    model.reset_classifier(7)
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(mixer="gmlp"), r"unknown mixer 'gmlp'; valid mixers: fan, fan_se, mlp, se, xca"),
        (dict(mixer=["mlp"]), "one per block"),
        (dict(stem="vit"), "valid stems: conv, convnext, linear"),
        (dict(tap_dilations=(1, 0)), "tap_dilations must all be positive"),
        (dict(tap_dilations=(1,), tap_blocks=(2,)), r"tap_blocks must be block indices in \[0, 1\]"),
        (dict(num_heads=3), "embed_dim=16 is not divisible by num_heads=3"),
        (dict(img_size=18), "image size 18x18 is not divisible by patch_size=4"),
        (dict(pos_embed="rope"), "valid pos_embeds: fourier, learned, none"),
        (dict(drop_path_rate=1.0), r"drop_path_rate must be in \[0, 1\)"),
        (dict(drop_path_schedule="cosine"), "valid drop_path_schedules: linear, uniform"),
        (dict(convnext_dims=(8, 16)), "only applies to stem='convnext'"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        timm.create_model("robust_vit", **{**TINY, **kwargs})


def test_no_pretrained_weights() -> None:
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("robust_vit", pretrained=True)


def test_plain_config_equals_timm_vision_transformer() -> None:
    """Linear stem + mlp mixer + no TAP is timm's ViT (mean pool, no class token, LayerScale 1.0)."""
    from timm.models.vision_transformer import VisionTransformer

    ours = RobustViT(**TINY).eval()
    ref = VisionTransformer(img_size=16, patch_size=4, embed_dim=16, depth=2, num_heads=2, mlp_ratio=2.0,
                            num_classes=5, class_token=False, global_pool="avg", fc_norm=False,
                            init_values=1.0, qkv_bias=True).eval()
    state = {}
    for key, value in ours.state_dict().items():
        key = key.replace("patch_embed.proj.proj", "patch_embed.proj").replace("pos_embed.pos_embed", "pos_embed")
        state[key.replace(".mixer.mlp.", ".mlp.")] = value
    ref.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_convnext_stem_and_head_start_as_the_authors() -> None:
    """ConvNeXt's init for the hybrid stem's convs (trunc-normal 0.02, zero bias), and FAN-L-Hybrid's
    classifier scaled by head_init_scale = 0.001."""
    model = timm.create_model("fan_large_16_p4_hybrid", img_size=32, embed_dim=20, depth=1, num_heads=2,
                              num_classes=1000)
    stem = model.patch_embed
    convs = [m for m in [*stem.stem.modules(), *stem.stages.modules()] if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 8 + 1  # stem conv, 3 + 5 depthwise convs, the downsample conv
    for conv in convs:
        assert conv.weight.std().item() == pytest.approx(0.02, rel=0.15)
        assert torch.all(conv.bias == 0)
    assert model.head.weight.std().item() == pytest.approx(0.02 * 0.001, rel=0.1)
    assert torch.all(model.head.bias == 0)
    base = timm.create_model("fan_base_16_p4_hybrid", img_size=32, embed_dim=20, depth=1, num_heads=2)
    assert base.head.weight.std().item() == pytest.approx(0.02, rel=0.1)
