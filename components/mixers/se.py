"""``se`` channel mixer: the ViT MLP followed by squeeze-and-excitation over channels.

As in FAN's SE variant: the MLP output is gated per channel by
``sigmoid(W2 relu(W1 mean_tokens(y)))`` with reduction ratio 0.25 (timm's ``SEModule``).
"""

from __future__ import annotations

import torch
from timm.layers import Mlp, SEModule
from torch import nn

from components._checks import check_positive, check_positive_int, check_probability


class TokenSqueezeExcite(SEModule):
    """timm's ``SEModule`` (its layers and init) on tokens (B, N, C): the squeeze is the mean over tokens."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        s = x.mean(dim=1).reshape(B, C, 1, 1)  # squeeze: (B, C, 1, 1), as SEModule's spatial mean
        s = self.fc2(self.act(self.bn(self.fc1(s))))
        return x * self.gate(s).reshape(B, 1, C)


class SEMixer(nn.Module):
    """MLP + squeeze-and-excitation channel mixer.

    Args:
        dim: token width ``C``.
        num_heads: unused (uniform mixer signature).
        mlp_ratio: MLP hidden width as a multiple of ``C``.
        qkv_bias: unused.
        drop: dropout after each linear layer of the MLP.
        attn_drop: unused.
        se_ratio: SE reduction ratio (published 0.25).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        se_ratio: float = 0.25,
    ) -> None:
        super().__init__()
        check_positive_int("dim", dim)
        check_positive("mlp_ratio", mlp_ratio)
        check_positive("se_ratio", se_ratio)
        check_probability("drop", drop)
        self.mlp = Mlp(dim, hidden_features=max(1, int(dim * mlp_ratio)), act_layer=nn.GELU, drop=drop)
        # rd_divisor=1: exactly round(C * ratio) squeeze channels, as in the published SE block.
        self.se = TokenSqueezeExcite(dim, rd_ratio=se_ratio, rd_divisor=1, act_layer=nn.ReLU, gate_layer="sigmoid")

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """(B, N, C) -> (B, N, C). The squeeze is the mean over all tokens, so ``hw`` is unused."""
        return self.se(self.mlp(x))
