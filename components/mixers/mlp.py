"""``mlp`` channel mixer: the plain ViT MLP, Linear(C, rC) -> GELU -> Linear(rC, C)."""

from __future__ import annotations

import torch
from timm.layers import Mlp
from torch import nn

from components._checks import check_positive, check_positive_int, check_probability


class MlpMixer(nn.Module):
    """ViT MLP channel mixer (timm's ``Mlp``).

    All mixers share one keyword signature so that a registry can build any of them;
    ``num_heads`` and ``qkv_bias`` do not apply here and are accepted for that reason only.

    Args:
        dim: token width ``C``.
        num_heads: unused.
        mlp_ratio: hidden width ``r`` as a multiple of ``C``.
        qkv_bias: unused.
        drop: dropout after each linear layer.
        attn_drop: unused.
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
        check_positive_int("dim", dim)
        check_positive("mlp_ratio", mlp_ratio)
        check_probability("drop", drop)
        self.mlp = Mlp(dim, hidden_features=max(1, int(dim * mlp_ratio)), act_layer=nn.GELU, drop=drop)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """(B, N, C) -> (B, N, C); ``hw`` is unused."""
        return self.mlp(x)
