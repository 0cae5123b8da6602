"""Multi-head self-attention: any head count, maps from the same pass, fused and explicit paths agree."""

from __future__ import annotations

import pytest
import torch

from components.attention import Attention
from tests.components._helpers import assert_grads_reach_all


@pytest.mark.parametrize("heads", [1, 3, 6])
def test_maps_shape_rows_and_same_output(heads: int) -> None:
    attn = Attention(24, num_heads=heads).eval()
    x = torch.randn(2, 10, 24)
    fused = attn(x)
    out, maps = attn.forward_with_attn(x)
    assert out.shape == (2, 10, 24)
    assert maps.shape == (2, heads, 10, 10)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, heads, 10), atol=1e-5, rtol=0)
    # The explicit path with maps computes the same output as the fused kernel.
    torch.testing.assert_close(out, fused, atol=1e-5, rtol=1e-5)


def test_matches_textbook_formula() -> None:
    attn = Attention(8, num_heads=2)
    x = torch.randn(1, 5, 8)
    q, k, v = attn.qkv(x).reshape(1, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    a = torch.softmax(q @ k.transpose(-1, -2) / 4**0.5, dim=-1)
    expected = attn.proj((a @ v).transpose(1, 2).reshape(1, 5, 8))
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-5)


def test_backward_reaches_every_parameter() -> None:
    attn = Attention(16, num_heads=4)
    out, maps = attn.forward_with_attn(torch.randn(2, 9, 16))
    (out.square().mean() + maps.square().mean()).backward()
    assert_grads_reach_all(attn)


def test_heads_must_divide_dim() -> None:
    with pytest.raises(ValueError, match="dim=10 is not divisible by num_heads=4"):
        Attention(10, num_heads=4)
    with pytest.raises(ValueError, match="num_heads must be an integer >= 1"):
        Attention(10, num_heads=0)
