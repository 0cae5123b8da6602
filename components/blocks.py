"""The RobustViT block: optional TAP, token attention, and a registered channel mixer.

FAN's block form, with TAP feeding the attention branch only (the residual keeps the un-pooled x)::

    x = x + DropPath(gamma1 * Attn(LN1(TAP(x))))
    x = x + DropPath(gamma2 * ChannelMix(LN2(x)))
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from timm.layers import DropPath, LayerScale
from torch import nn

from components._checks import check_probability
from components.attention import Attention
from components.mixers import get_mixer
from components.tap import TokenAwarePooling

LayerNorm6 = partial(nn.LayerNorm, eps=1e-6)


class RobustBlock(nn.Module):
    """One transformer block over a token grid (no class token inside).

    Args:
        dim: token width ``C``.
        num_heads: heads of the token attention (and of the channel mixer, where it has heads).
        mixer: registered channel-mixer name (``components.MIXERS``).
        mlp_ratio: hidden width of the mixer's MLP as a multiple of ``C``.
        qkv_bias: bias on the qkv projections.
        tap_dilations: TAP dilations; empty means no TAP in this block.
        proj_drop: dropout after projections / inside the mixer.
        attn_drop: dropout on attention weights.
        drop_path: stochastic-depth rate of both residual branches.
        layer_scale_init: LayerScale initial value; ``None`` or ``0`` means no LayerScale.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mixer: str = "mlp",
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        tap_dilations: Sequence[int] = (),
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        layer_scale_init: float | None = 1.0,
    ) -> None:
        super().__init__()
        check_probability("drop_path", drop_path)
        mixer_cls = get_mixer(mixer)
        self.tap = TokenAwarePooling(dim, tap_dilations) if len(tap_dilations) else None
        self.norm1 = LayerNorm6(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop)
        self.ls1 = LayerScale(dim, layer_scale_init) if layer_scale_init else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = LayerNorm6(dim)
        self.mixer = mixer_cls(dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                               drop=proj_drop, attn_drop=attn_drop)
        self.ls2 = LayerScale(dim, layer_scale_init) if layer_scale_init else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """Tokens (B, N, C) on an ``hw`` grid -> (B, N, C)."""
        y = self.tap(x, hw) if self.tap is not None else x
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(y))))
        return x + self.drop_path2(self.ls2(self.mixer(self.norm2(x), hw)))

    def forward_with_attn(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`forward`, plus the token attention's post-softmax map (B, heads, N, N)."""
        y = self.tap(x, hw) if self.tap is not None else x
        y, attn = self.attn.forward_with_attn(self.norm1(y))
        x = x + self.drop_path1(self.ls1(y))
        return x + self.drop_path2(self.ls2(self.mixer(self.norm2(x), hw))), attn
