"""Multi-head self-attention (token mixing) that can hand back its attention maps.

The fused ``F.scaled_dot_product_attention`` kernel is used whenever the caller does not need the
maps. When it does (ADL, attention diagnostics), the same forward pass computes the softmax
explicitly and returns the post-softmax map alongside the output, so the maps always belong to the
activations that produced the output (no second pass, no hooks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from components._checks import check_heads, check_probability


class Attention(nn.Module):
    """Standard ViT multi-head self-attention with any head count.

    ``q, k, v = Linear(C, 3C)(x)``; ``A = softmax(q k^T / sqrt(d))`` over keys; output
    ``Linear(C, C)(A v)``.

    Args:
        dim: token width ``C``.
        num_heads: number of heads ``h``; must divide ``dim``.
        qkv_bias: bias on the qkv projection.
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after the output projection.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        check_heads(dim, num_heads)
        check_probability("attn_drop", attn_drop)
        check_probability("proj_drop", proj_drop)
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, N, C = x.shape
        # (B, N, 3C) -> (3, B, h, N, d)
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        return q, k, v

    def _out(self, out: torch.Tensor) -> torch.Tensor:
        B, h, N, d = out.shape
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, N, h * d)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the tokens of ``x`` (B, N, C) with the fused kernel; returns (B, N, C)."""
        q, k, v = self._qkv(x)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0)
        return self._out(out)

    def forward_with_attn(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`forward`, plus the post-softmax map (B, heads, N, N) (before attention dropout)."""
        q, k, v = self._qkv(x)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, h, N, N)
        return self._out(self.attn_drop(attn) @ v), attn
