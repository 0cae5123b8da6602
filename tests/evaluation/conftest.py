"""Shared fixtures for the evaluation tests: real photographs and tiny real models."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from torch import nn

SKIMAGE_IMAGES = ("astronaut", "chelsea", "coffee", "rocket")


def real_images(n: int, size: int) -> torch.Tensor:
    """``n`` real photo crops (scikit-image's sample images), float (n, 3, size, size) on the 8-bit grid.

    Each photo is downscaled so its shorter side is ``2 * size`` and ``n / 4`` crops are taken.
    """
    import skimage.data
    from PIL import Image

    per = -(-n // len(SKIMAGE_IMAGES))
    out = []
    for name in SKIMAGE_IMAGES:
        img = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        w, h = img.size
        scale = 2 * size / min(w, h)
        img = np.asarray(img.resize((round(w * scale), round(h * scale)), Image.BILINEAR))
        hh, ww = img.shape[:2]
        for k in range(per):
            top = (k * 37) % (hh - size + 1)
            left = (k * 53) % (ww - size + 1)
            out.append(img[top:top + size, left:left + size])
    arr = np.stack(out[:n])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="session")
def photos64() -> torch.Tensor:
    return real_images(16, 64)


@pytest.fixture(scope="session")
def photos32_many() -> torch.Tensor:
    return real_images(512, 32)


class AttentionViT(nn.Module):
    """A timm ViT that also returns each block's post-softmax attention (B, heads, N, N).

    The maps are computed from the block's own qkv weights inside the same forward pass.
    """

    def __init__(self, **kwargs):
        super().__init__()
        self.vit = timm.create_model("vit_tiny_patch16_224", **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(x)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        vit = self.vit
        x = vit.norm_pre(vit._pos_embed(vit.patch_embed(x)))
        maps = []
        for blk in vit.blocks:
            y = blk.norm1(x)
            b, n, c = y.shape
            attn = blk.attn
            qkv = attn.qkv(y).reshape(b, n, 3, attn.num_heads, c // attn.num_heads).permute(2, 0, 3, 1, 4)
            q, k, _ = qkv.unbind(0)
            q, k = attn.q_norm(q), attn.k_norm(k)
            maps.append(((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1))
            x = blk(x)
        return vit.forward_head(vit.norm(x)), maps


def tiny_vit_kwargs() -> dict:
    return {"img_size": 32, "patch_size": 8, "num_classes": 10, "embed_dim": 32, "depth": 2, "num_heads": 2}


@pytest.fixture
def attention_vit() -> AttentionViT:
    torch.manual_seed(0)
    return AttentionViT(**tiny_vit_kwargs())
