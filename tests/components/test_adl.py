"""ADL: collapsed attention scores ~1, diverse attention ~0, batch size 1, bad input."""

from __future__ import annotations

import pytest
import torch

from components.adl import attention_diversification_loss


def _identical_rows(B: int, h: int, N: int) -> torch.Tensor:
    row = torch.softmax(torch.randn(N) * 3, dim=0)
    return row.expand(B, h, N, N).clone()


def _one_hot_rows(B: int, h: int, N: int) -> torch.Tensor:
    return torch.eye(N).expand(B, h, N, N).clone()


@pytest.mark.parametrize("B", [1, 3])
def test_identical_rows_near_one(B: int) -> None:
    loss = attention_diversification_loss([_identical_rows(B, 2, 16), _identical_rows(B, 2, 16)])
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("B", [1, 3])
def test_disjoint_one_hot_rows_near_zero(B: int) -> None:
    loss = attention_diversification_loss([_one_hot_rows(B, 4, 16)])
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_mean_over_layers_and_batch_one_is_per_sample() -> None:
    maps = [torch.softmax(torch.randn(3, 2, 9, 9) * 4, dim=-1) for _ in range(2)]
    full = attention_diversification_loss(maps)
    per_sample = [attention_diversification_loss([m[i : i + 1] for m in maps]) for i in range(3)]
    torch.testing.assert_close(full, torch.stack(per_sample).mean())
    mixed = attention_diversification_loss([_identical_rows(2, 2, 8), _one_hot_rows(2, 2, 8)])
    assert mixed.item() == pytest.approx(0.5, abs=1e-5)


def test_threshold_masks_entries_at_most_th_over_n() -> None:
    # Uniform attention is exactly 1/N everywhere: at th = 2 all is masked -> 0; at th = 0.5 -> 1.
    uniform = torch.full((1, 1, 8, 8), 1 / 8)
    assert attention_diversification_loss([uniform]).item() == pytest.approx(0.0)
    assert attention_diversification_loss([uniform], threshold=0.5).item() == pytest.approx(1.0, abs=1e-6)


def test_differentiable() -> None:
    logits = torch.randn(2, 2, 10, 10, requires_grad=True)
    attention_diversification_loss([torch.softmax(logits * 5, dim=-1)]).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="at least one attention map"):
        attention_diversification_loss([])
    with pytest.raises(ValueError, match=r"\(B, heads, N, N\)"):
        attention_diversification_loss([torch.rand(2, 3, 4, 5)])
    with pytest.raises(ValueError, match="threshold"):
        attention_diversification_loss([torch.rand(1, 4, 4)], threshold=-1.0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_maps_give_the_float32_loss(dtype: torch.dtype) -> None:
    """Maps from an autocast pass are fp16/bf16; a fully masked row must still give 0, not 0 / 0."""
    uniform = torch.full((2, 2, 8, 8), 1 / 8, dtype=dtype)
    assert attention_diversification_loss([uniform]).item() == 0.0
    maps = torch.softmax(torch.randn(2, 2, 9, 9) * 4, dim=-1)
    half = attention_diversification_loss([maps.to(dtype)])
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(attention_diversification_loss([maps]).item(), abs=2e-2)
