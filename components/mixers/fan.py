"""``fan`` channel mixer: FAN's attentional channel processing (Zhou et al., ICML 2022, arXiv 2204.12451).

Per head (h heads, d = C / h channels each):

- ``q = Linear(C, C)(x)`` as (B, h, N, d), softmax over the N tokens;
- ``k = x`` itself (no projection), softmax over N, then averaged over the d channels of the head
  into one token prototype (B, h, N, 1);
- ``gate = sigmoid(q_hat^T k_hat) * temperature`` of shape (B, h, d, 1), one gate per channel,
  with a learnable per-head temperature initialised to 1;
- ``v = LayerNorm(Mlp_v(x))``, where ``Mlp_v`` is Linear(C, rC) -> (x + gamma * DWConv(x)) ->
  Linear(rC, C) and DWConv is depthwise 3x3 -> GELU -> BatchNorm -> depthwise 3x3 over the grid;
- output ``gate * v`` per channel, with no output projection.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from components._checks import check_heads, check_positive, check_probability


def init_conv_fan_out(conv: nn.Conv2d) -> None:
    """FAN's conv init: normal with std sqrt(2 / fan_out), fan_out = k_h * k_w * out / groups, zero bias.

    For the 3x3 depthwise convs that is std sqrt(2 / 9) = 0.47 (PyTorch's default gives 0.19).
    """
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class DWConv(nn.Module):
    """Depthwise 3x3 conv -> GELU -> BatchNorm -> depthwise 3x3 conv over the token grid."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=pad, groups=channels)
        self.act = nn.GELU()
        self.bn = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=pad, groups=channels)
        init_conv_fan_out(self.conv1)
        init_conv_fan_out(self.conv2)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """(B, N, C) tokens on an ``hw`` grid -> (B, N, C)."""
        B, N, C = x.shape
        H, W = hw
        grid = x.reshape(B, H, W, C).permute(0, 3, 1, 2)  # channels-last view of (B, C, H, W)
        grid = self.conv2(self.bn(self.act(self.conv1(grid))))
        return grid.permute(0, 2, 3, 1).reshape(B, N, C)


class ConvMlp(nn.Module):
    """FAN's value MLP: Linear(C, hidden) -> (x + gamma * DWConv(x)) -> Linear(hidden, C)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.gamma = nn.Parameter(torch.ones(hidden))
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        x = self.fc1(x)  # (B, N, hidden)
        x = x + self.drop(self.gamma * self.dwconv(x, hw))
        return self.drop(self.fc2(x))  # (B, N, C)


class FANMixer(nn.Module):
    """Attentional channel processing of FAN.

    Args:
        dim: token width ``C``.
        num_heads: channel-attention heads; must divide ``dim``.
        mlp_ratio: hidden width of the value MLP as a multiple of ``C``.
        qkv_bias: bias on the q projection.
        drop: dropout inside the value MLP.
        attn_drop: dropout on the channel gates.
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
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.mlp_v = ConvMlp(dim, max(1, int(dim * mlp_ratio)), drop=drop)
        # The published ChannelProcessing builds this norm with nn.LayerNorm's default eps.
        self.norm_v = nn.LayerNorm(dim)
        self.attn_drop = nn.Dropout(attn_drop)

    def channel_gates(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel gates (B, h, d, 1) from ``x`` (B, N, C)."""
        B, N, C = x.shape
        h = self.num_heads
        q = self.q(x).reshape(B, N, h, C // h).transpose(1, 2)  # (B, h, N, d)
        k = x.reshape(B, N, h, C // h).transpose(1, 2)  # (B, h, N, d), k = x itself
        q_hat = q.softmax(dim=-2)  # softmax over tokens
        k_hat = k.softmax(dim=-2).mean(dim=-1, keepdim=True)  # (B, h, N, 1): one token prototype
        return torch.sigmoid(q_hat.transpose(-2, -1) @ k_hat) * self.temperature  # (B, h, d, 1)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """(B, N, C) tokens on an ``hw`` grid -> (B, N, C)."""
        B, N, C = x.shape
        gate = self.attn_drop(self.channel_gates(x))  # (B, h, d, 1)
        v = self.norm_v(self.mlp_v(x, hw))  # (B, N, C)
        # gate (B, h, d, 1) -> (B, 1, C): head-major channel order, as in the reshape of v.
        return v * gate.reshape(B, 1, C)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}"
