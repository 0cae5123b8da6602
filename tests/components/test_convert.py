"""The converter of the authors' checkpoints, tested without downloading anything.

A state dict with the authors' key names and shapes (listed below from their code: NVlabs/FAN
``models/fan.py`` and ``convnext_utils.py``, guoyongcs/TAPADL ``models/tap_fan.py``) is built from
a model of ours by the inverse renaming; the converter must turn it back so that a fresh model loads
it strictly and computes the same logits as the model the tensors came from. Two checks of the
arithmetic behind the renaming: the authors' q / kv attention, and their 1x1-conv ConvNeXt MLP (as
timm's ``conv_mlp=True`` block).
"""

from __future__ import annotations

import re

import pytest
import timm
import torch
from timm.layers import LayerNorm2d
from timm.models.convnext import ConvNeXtStage

from components.convert import convert_authors_state_dict, load_authors_checkpoint

C, HEADS, DEPTH, CLASSES, K = 16, 2, 2, 3, 4
TINY = dict(img_size=32, patch_size=16, embed_dim=C, depth=DEPTH, num_heads=HEADS, num_classes=CLASSES)
HYBRID = dict(TINY, convnext_depths=(1, 1), convnext_dims=(8, 16))


def _bn(prefix: str, n: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def _wb(prefix: str, w: tuple, b: int | None) -> dict[str, tuple]:
    return {f"{prefix}.weight": w, **({f"{prefix}.bias": (b,)} if b else {})}


def authors_keys(stem: str, mixer: str, tap: bool) -> dict[str, tuple]:
    """The authors' parameter and buffer names with their shapes, for the tiny configuration."""
    keys: dict[str, tuple] = {"cls_token": (1, 1, C), **_wb("pos_embed.token_projection", (C, 64, 1, 1), C)}
    if stem == "conv":  # ConvPatchEmbed, patch 16: conv3x3 + BN pairs at proj.0, .2, .4, .6
        widths = [3, C // 8, C // 4, C // 2, C]
        for j in range(4):
            keys |= _wb(f"patch_embed.proj.{2 * j}.0", (widths[j + 1], widths[j], 3, 3), None)
            keys |= _bn(f"patch_embed.proj.{2 * j}.1", widths[j + 1])
    else:  # HybridEmbed over their ConvNeXt (conv_mlp=True), dims (8, 16), depths (1, 1)
        b = "patch_embed.backbone"
        keys |= _wb(f"{b}.stem.0", (8, 3, 4, 4), 8) | _wb(f"{b}.stem.1", (8,), 8)
        keys |= _wb(f"{b}.stages.1.downsample.0", (8,), 8) | _wb(f"{b}.stages.1.downsample.1", (16, 8, 2, 2), 16)
        for i, d in enumerate((8, 16)):
            s = f"{b}.stages.{i}.blocks.0"
            keys |= _wb(f"{s}.conv_dw", (d, 1, 7, 7), d) | _wb(f"{s}.norm", (d,), d)
            keys |= _wb(f"{s}.mlp.fc1", (4 * d, d, 1, 1), 4 * d) | _wb(f"{s}.mlp.fc2", (d, 4 * d, 1, 1), d)
            keys[f"{s}.gamma"] = (d,)
        keys |= _wb("patch_embed.proj", (C, 16, 2, 2), C)
    for i in range(DEPTH):
        p = f"blocks.{i}"
        keys |= _wb(f"{p}.norm1", (C,), C) | _wb(f"{p}.norm2", (C,), C)
        keys |= _wb(f"{p}.attn.q", (C, C), C) | _wb(f"{p}.attn.kv", (2 * C, C), 2 * C)
        keys |= _wb(f"{p}.attn.proj", (C, C), C)
        keys[f"{p}.gamma1"] = keys[f"{p}.gamma2"] = (C,)
        m = f"{p}.mlp.mlp_v" if mixer == "fan" else f"{p}.mlp"  # ChannelProcessing's Mlp / SEMlp
        keys |= _wb(f"{m}.fc1", (4 * C, C), 4 * C) | _wb(f"{m}.fc2", (C, 4 * C), C)
        keys |= _wb(f"{m}.dwconv.conv1", (4 * C, 1, 3, 3), 4 * C) | _wb(f"{m}.dwconv.conv2", (4 * C, 1, 3, 3), 4 * C)
        keys |= _bn(f"{m}.dwconv.bn", 4 * C)
        keys[f"{m}.gamma"] = (4 * C,)
        if mixer == "fan":
            keys |= {f"{p}.mlp.temperature": (HEADS, 1, 1)} | _wb(f"{p}.mlp.q", (C, C), C)
            keys |= _wb(f"{p}.mlp.norm_v", (C,), C)
        else:
            keys |= _wb(f"{p}.mlp.se.conv_reduce", (C // 4, C, 1, 1), C // 4)
            keys |= _wb(f"{p}.mlp.se.conv_expand", (C, C // 4, 1, 1), C)
        if tap:  # DilationPredictor(dim, num_scales): conv -> BN -> conv, no biases
            keys[f"{p}.dilation_predictor.proj.0.weight"] = (K, C, 3, 3)
            keys |= _bn(f"{p}.dilation_predictor.proj.1", K)
            keys[f"{p}.dilation_predictor.proj.2.weight"] = (K, K, 3, 3)
    for j in range(2):  # timm's CaiT ClassAttn: q, k, v
        p = f"cls_attn_blocks.{j}"
        keys |= _wb(f"{p}.norm1", (C,), C) | _wb(f"{p}.norm2", (C,), C) | _wb(f"{p}.attn.proj", (C, C), C)
        for x in "qkv":
            keys |= _wb(f"{p}.attn.{x}", (C, C), C)
        keys |= _wb(f"{p}.mlp.fc1", (4 * C, C), 4 * C) | _wb(f"{p}.mlp.fc2", (C, 4 * C), C)
        keys[f"{p}.gamma1"] = keys[f"{p}.gamma2"] = (C,)
    return keys | _wb("norm", (C,), C) | _wb("head", (CLASSES, C), CLASSES)


def to_authors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict under the authors' names (the inverse of the converter, written separately)."""
    out = {}
    for key, value in state.items():
        if m := re.match(r"blocks\.(\d+)\.attn\.qkv\.(\w+)", key):
            out[f"blocks.{m[1]}.attn.q.{m[2]}"], out[f"blocks.{m[1]}.attn.kv.{m[2]}"] = value[:C], value[C:]
            continue
        if re.match(r"patch_embed\.stages\.\d+\.blocks\.\d+\.mlp\.fc\d\.weight", key):
            value = value[..., None, None]
        key = re.sub(r"^patch_embed\.(stem|stages)", r"patch_embed.backbone.\1", key)
        key = key.replace("pos_embed.encoding.", "pos_embed.").replace(".tap.predictor.", ".dilation_predictor.proj.")
        key = re.sub(r"\.ls([12])\.gamma$", r".gamma\1", key)
        key = key.replace(".mixer.se.fc1", ".mixer.se.conv_reduce").replace(".mixer.se.fc2", ".mixer.se.conv_expand")
        key = key.replace(".mixer.mlp.", ".mlp.").replace(".mixer.", ".mlp.")
        out[key] = value
    return out


CASES = {  # (our preset, overrides, the authors' stem / mixer / TAP)
    "TAP-FAN-Hybrid": ("tap_fan_base_16_p4_hybrid", HYBRID, ("convnext", "fan", True)),
    "FAN-Hybrid": ("fan_base_16_p4_hybrid", HYBRID, ("convnext", "fan", False)),
    "FAN-ViT-SE": ("fan_small_12_p16_224", dict(TINY, se_mlp=True), ("conv", "fan_se", False)),
}


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t) * 0.3)
    return model.eval()


@pytest.mark.parametrize("case", sorted(CASES))
def test_authors_state_dict_loads_strictly_and_computes_the_same(case: str) -> None:
    name, kwargs, layout = CASES[case]
    source = _randomised(timm.create_model(name, **kwargs))
    theirs = to_authors(source.state_dict())
    assert {k: tuple(v.shape) for k, v in theirs.items()} == authors_keys(*layout)
    checkpoint = {"epoch": 299, "state_dict": {"module." + k: v for k, v in theirs.items()}}  # DDP prefix
    model = load_authors_checkpoint(checkpoint, name, **kwargs).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_authors_attention_and_convnext_mlp_arithmetic() -> None:
    name, kwargs, _ = CASES["TAP-FAN-Hybrid"]
    theirs = to_authors(_randomised(timm.create_model(name, **kwargs)).state_dict())
    model = load_authors_checkpoint(theirs, name, **kwargs).eval()
    # TokenMixing: q = Linear(x), k, v = Linear(x).reshape(B, N, 2, h, d); softmax(q k^T / sqrt(d)) v; proj
    x = torch.randn(2, 5, C)
    q = torch.nn.functional.linear(x, theirs["blocks.0.attn.q.weight"], theirs["blocks.0.attn.q.bias"])
    kv = torch.nn.functional.linear(x, theirs["blocks.0.attn.kv.weight"], theirs["blocks.0.attn.kv.bias"])
    q = q.reshape(2, 5, HEADS, C // HEADS).transpose(1, 2)
    k, v = kv.reshape(2, 5, 2, HEADS, C // HEADS).permute(2, 0, 3, 1, 4)
    a = (q @ k.transpose(-2, -1) * (C // HEADS) ** -0.5).softmax(-1)
    ref = torch.nn.functional.linear((a @ v).transpose(1, 2).reshape(2, 5, C), theirs["blocks.0.attn.proj.weight"],
                                     theirs["blocks.0.attn.proj.bias"])
    with torch.no_grad():
        torch.testing.assert_close(model.blocks[0].attn(x), ref, atol=1e-5, rtol=1e-5)
    # Their ConvNeXt stage (1x1-conv MLP, LayerNorm2d) as timm builds it with conv_mlp=True
    stage = ConvNeXtStage(8, 16, stride=2, depth=1, conv_mlp=True, norm_layer=LayerNorm2d).eval()
    prefix = "patch_embed.backbone.stages.1."
    stage.load_state_dict({k[len(prefix):]: v for k, v in theirs.items() if k.startswith(prefix)}, strict=True)
    grid = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.patch_embed.stages[1](grid), stage(grid), atol=1e-5, rtol=1e-5)


def test_fused_class_attention_qkv_and_one_branch_tap_convert() -> None:
    """Two variants of their files: a fused class-attention qkv; --num-scales 1 (a one-branch TAP)."""
    name, kwargs, _ = CASES["FAN-Hybrid"]
    source = _randomised(timm.create_model(name, **kwargs))
    theirs = to_authors(source.state_dict())
    for j in range(2):
        for part in ("weight", "bias"):
            theirs[f"cls_attn_blocks.{j}.attn.qkv.{part}"] = torch.cat(
                [theirs.pop(f"cls_attn_blocks.{j}.attn.{x}.{part}") for x in "qkv"])
    for i in range(DEPTH):
        theirs[f"blocks.{i}.dilation_predictor.proj.0.weight"] = torch.randn(1, C, 3, 3)
    model = timm.create_model(name, **kwargs).eval()
    model.load_state_dict(convert_authors_state_dict({"model": theirs}, model), strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_bad_checkpoints_say_what_is_wrong(tmp_path) -> None:
    name, kwargs, _ = CASES["FAN-Hybrid"]
    theirs = to_authors(timm.create_model(name, **kwargs).state_dict())
    with pytest.raises(ValueError, match="does not exist"):
        load_authors_checkpoint(tmp_path / "missing.pth", name, **kwargs)
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch file"):
        load_authors_checkpoint(tmp_path / "junk.pth", name, **kwargs)
    del theirs["head.bias"]
    with pytest.raises(ValueError, match=r"does not fit fan_base_16_p4_hybrid: 1 missing \(first: \['head.bias'\]\)"):
        load_authors_checkpoint(theirs, name, **kwargs)
    with pytest.raises(ValueError, match="one of the zoo's models"):
        load_authors_checkpoint(theirs, "resnet18")
    torch.save({"state_dict": theirs | {"head.bias": torch.zeros(CLASSES)}}, tmp_path / "ok.pth")
    assert load_authors_checkpoint(tmp_path / "ok.pth", name, **kwargs).num_classes == CLASSES
