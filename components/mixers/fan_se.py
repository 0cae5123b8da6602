"""``fan_se`` channel mixer: the SE variant that FAN's paper compares its channel attention with.

As in the authors' ``SEMlp`` (FAN-ViT with ``se_mlp=True``): FAN's value MLP without the channel
attention, ``Linear(C, rC) -> (x + gamma * DWConv(x)) -> Linear(rC, C)`` with DWConv the depthwise
3x3 -> GELU -> BatchNorm -> depthwise 3x3 branch, then squeeze-and-excitation over channels
(``sigmoid(W2 relu(W1 mean_tokens(y)))``, reduction 0.25, 1x1 convs with biases). At C = 384 and
ratio 4 that is 1,291,104 parameters, as in the authors' code; the ``se`` mixer (a plain MLP with SE)
has 1,255,776.
"""

from __future__ import annotations

import torch
from torch import nn

from components._checks import check_positive, check_positive_int, check_probability
from components.mixers.fan import ConvMlp, init_conv_fan_out
from components.mixers.se import TokenSqueezeExcite


class FANSEMixer(nn.Module):
    """FAN's value MLP (with its depthwise-conv branch and gamma) followed by squeeze-and-excitation.

    Args:
        dim: token width ``C``.
        num_heads: unused (uniform mixer signature).
        mlp_ratio: MLP hidden width as a multiple of ``C``.
        qkv_bias: unused.
        drop: dropout inside the MLP.
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
        self.mlp = ConvMlp(dim, max(1, int(dim * mlp_ratio)), drop=drop)
        # rd_divisor=1: exactly round(C * ratio) squeeze channels, as in the authors' SqueezeExcite.
        self.se = TokenSqueezeExcite(dim, rd_ratio=se_ratio, rd_divisor=1, act_layer=nn.ReLU, gate_layer="sigmoid")
        init_conv_fan_out(self.se.fc1)  # the authors' SEMlp initialises every conv this way
        init_conv_fan_out(self.se.fc2)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """(B, N, C) tokens on an ``hw`` grid -> (B, N, C)."""
        return self.se(self.mlp(x, hw))
