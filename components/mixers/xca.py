"""``xca`` channel mixer: the ViT MLP followed by XCiT's cross-covariance attention (timm's ``XCA``).

XCA is channel attention: per head, q and k are L2-normalised along the tokens and
``softmax(q^T k * temperature)`` is a (d, d) map that mixes the d channels of v, followed by a
projection. Like ``se`` and ``fan``, the channel attention acts on the output of the block's MLP,
so all four mixers keep the per-token MLP and differ only in the channel attention after it
(bare XCA without an MLP would leave a block with no per-token non-linearity).
"""

from __future__ import annotations

import torch
from timm.layers import Mlp
from timm.models.xcit import XCA
from torch import nn

from components._checks import check_heads, check_positive, check_probability


class XCAMixer(nn.Module):
    """MLP + cross-covariance (channel) attention.

    Args:
        dim: token width ``C``.
        num_heads: XCA heads; must divide ``dim``.
        mlp_ratio: MLP hidden width as a multiple of ``C``.
        qkv_bias: bias on XCA's qkv projection.
        drop: dropout after the MLP's linear layers and XCA's projection.
        attn_drop: dropout on XCA's (d, d) attention map.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
    ) -> None:
        super().__init__()
        check_heads(dim, num_heads)
        check_positive("mlp_ratio", mlp_ratio)
        check_probability("drop", drop)
        check_probability("attn_drop", attn_drop)
        self.mlp = Mlp(dim, hidden_features=max(1, int(dim * mlp_ratio)), act_layer=nn.GELU, drop=drop)
        self.xca = XCA(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """(B, N, C) -> (B, N, C); ``hw`` is unused (XCA is global over tokens)."""
        return self.xca(self.mlp(x))
