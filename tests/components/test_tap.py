"""TAP: the depthwise-conv pooling equals the published unfold formulation; any K, any dilations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from components.tap import TokenAwarePooling
from tests.components._helpers import assert_deterministic_in_eval, assert_grads_reach_all


def unfold_tap(tap: TokenAwarePooling, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """The published formulation: every pooled branch from a 3x3 dilated unfold, mean over 9 taps."""
    B, N, C = x.shape
    H, W = hw
    grid = x.transpose(1, 2).reshape(B, C, H, W)
    w = tap.predictor(grid).softmax(dim=1)  # (B, K, H, W)
    branches = [grid]
    for d in tap.dilations:
        cols = F.unfold(grid, kernel_size=3, dilation=d, padding=d)  # (B, 9C, N): the 9x tensor
        branches.append(cols.reshape(B, C, 9, H * W).mean(dim=2).reshape(B, C, H, W))
    out = sum(w[:, k : k + 1] * b for k, b in enumerate(branches))
    return out.flatten(2).transpose(1, 2)


@pytest.mark.parametrize(
    ("dilations", "hw"),
    [((1, 2, 3), (7, 7)), ((1,), (4, 6)), ((2, 5), (6, 5)), ((1, 2, 3, 4, 6), (8, 8)), ((9,), (3, 4))],
)
def test_equals_unfold_reference(dilations: tuple[int, ...], hw: tuple[int, int]) -> None:
    tap = TokenAwarePooling(12, dilations).eval()
    x = torch.randn(3, hw[0] * hw[1], 12)
    torch.testing.assert_close(tap(x, hw), unfold_tap(tap, x, hw), atol=1e-5, rtol=1e-5)
    # Train mode too (BatchNorm on batch statistics), and the gradients agree.
    tap.train()
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    ya, yb = tap(xa, hw), unfold_tap(tap, xb, hw)
    torch.testing.assert_close(ya, yb, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(ya)
    (ga,) = torch.autograd.grad(ya, xa, g)
    (gb,) = torch.autograd.grad(yb, xb, g)
    torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-5)


def test_branch_weights_are_a_softmax_per_token() -> None:
    tap = TokenAwarePooling(8, (1, 2, 3))
    assert tap.num_branches == 4
    w = tap.branch_weights(torch.randn(2, 8, 5, 5))
    assert w.shape == (2, 4, 5, 5)
    torch.testing.assert_close(w.sum(1), torch.ones(2, 5, 5))


def test_backward_and_determinism() -> None:
    tap = TokenAwarePooling(8, (1, 3))
    x = torch.randn(2, 20, 8, requires_grad=True)
    tap(x, (4, 5)).square().mean().backward()
    assert_grads_reach_all(tap)
    assert x.grad is not None
    tap.eval()
    assert_deterministic_in_eval(tap, x.detach(), (4, 5))


def test_published_parameter_cost() -> None:
    # About 16k parameters per block at C = 448, K = 4 (the TAP paper: FAN-B-Hybrid 50.4M -> 50.7M; docs/components.md).
    n = sum(p.numel() for p in TokenAwarePooling(448, (1, 2, 3)).parameters())
    assert n == 448 * 9 * 4 + 2 * 4 + 4 * 9 * 4


@pytest.mark.parametrize(
    ("dilations", "message"),
    [((0,), "positive"), ((1, -2), "positive"), ((), "at least one"), ((1, 1), "distinct"), ((1.5,), "integers")],
)
def test_bad_dilations_raise(dilations, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TokenAwarePooling(8, dilations)


def test_grid_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="grid of 3x3"):
        TokenAwarePooling(4, (1,))(torch.randn(1, 10, 4), (3, 3))


@pytest.mark.parametrize("dilation", [1, 2])
def test_pool_gradients_first_and_second_order(dilation: int) -> None:
    """The pooling's hand-written backward (the filter is self-adjoint) passes gradcheck/gradgradcheck."""
    tap = TokenAwarePooling(3, (dilation,)).double()
    grid = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda g: tap.pool(g, dilation), (grid,))
    assert torch.autograd.gradgradcheck(lambda g: tap.pool(g, dilation), (grid,))


def test_float64_model_is_exact_to_float64() -> None:
    """The fixed 1/9 filter follows the module's dtype: no float32-rounded 1/9 inside a float64 model."""
    tap = TokenAwarePooling(6, (1, 2, 3)).double().eval()
    x = torch.randn(2, 30, 6, dtype=torch.float64)
    out = tap(x, (5, 6))
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, unfold_tap(tap, x, (5, 6)), atol=1e-13, rtol=0)
