"""TAP: token-aware average pooling (Guo et al., ICCV 2023, arXiv 2303.11126).

Each token is replaced by a per-token softmax mixture of K branches: the identity and 3x3 average
pools at several dilations (published: dilations 1, 2, 3, so K = 4). Branch weights come from a
small conv predictor and are shared across channels.

The published code builds every pooled branch with ``F.unfold`` (a (B, 9C, N) tensor per branch).
Here each branch is one depthwise convolution with fixed weights 1/9, dilation d and zero padding d,
which is the same arithmetic (zero padding counted in the mean, always divided by 9) without the 9x
intermediate. Its backward is the same conv applied to the incoming gradient (a
symmetric kernel with "same" zero padding is its own adjoint), which on CPU is several times faster
than the generic depthwise-conv backward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import register_notrace_function
from torch import nn

from components._checks import as_int_tuple, check_positive_int, check_token_grid


def _box_filter(grid: torch.Tensor, dilation: int) -> torch.Tensor:
    """Depthwise 3x3 conv with fixed weights 1/9, dilation d, zero padding d, on (B, C, H, W).

    The weights are made in the input's dtype on every call (C x 9 values): 1/9 is then rounded
    once, in that dtype, so a float64 model is exact to float64 and no fp32 buffer meets a
    bf16 tensor. Under autocast, ``conv2d`` casts input and weights to the autocast dtype.
    """
    channels = grid.shape[1]
    weight = torch.full((channels, 1, 3, 3), 1.0 / 9.0, dtype=grid.dtype, device=grid.device)
    return F.conv2d(grid, weight, padding=dilation, dilation=dilation, groups=channels)


class _BoxPool(torch.autograd.Function):
    """The 3x3 mean filter, whose backward is the same filter (a symmetric kernel with "same" zero
    padding is its own adjoint), several times faster on CPU than the generic depthwise-conv
    backward. The backward filters the gradient in the gradient's own dtype (bf16 or fp16 when the
    forward ran under autocast); autograd casts it to the input's dtype."""

    @staticmethod
    def forward(ctx, grid: torch.Tensor, dilation: int) -> torch.Tensor:
        ctx.dilation = dilation
        return _box_filter(grid, dilation)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        # Applying the function itself keeps higher-order gradients available.
        return _BoxPool.apply(grad, ctx.dilation), None


@register_notrace_function  # an FX leaf: torch.fx cannot trace into an autograd.Function
def box_pool(grid: torch.Tensor, dilation: int) -> torch.Tensor:
    """3x3 average pool of (B, C, H, W) with ``dilation``, stride 1, zero padding ``dilation``,
    padding counted in the mean (always divided by 9); same shape out."""
    if torch.jit.is_scripting():
        return _box_filter(grid, dilation)  # TorchScript cannot call an autograd.Function
    else:
        return _BoxPool.apply(grid, dilation)


@register_notrace_function  # an FX leaf: it reads the tensor's device
def autocast_once(grid: torch.Tensor) -> torch.Tensor:
    """``grid`` in autocast's dtype when autocast is on for its device (else as it is), so that the
    convs that read it do not each cast it again; the identity branch keeps the input's precision."""
    device = grid.device.type
    if torch.is_autocast_enabled(device):
        return grid.to(torch.get_autocast_dtype(device))
    return grid


def check_dilations(dilations: Sequence[int]) -> tuple[int, ...]:
    """Validate a TAP dilation set: a non-empty sequence of distinct integers >= 1."""
    dil = as_int_tuple("tap_dilations", dilations)
    if not dil:
        raise ValueError("tap_dilations must name at least one dilation, e.g. (1, 2, 3)")
    bad = [d for d in dil if d <= 0]
    if bad:
        raise ValueError(f"tap_dilations must all be positive integers, got {list(dil)} (bad: {bad})")
    if len(set(dil)) != len(dil):
        raise ValueError(f"tap_dilations must be distinct, got {list(dil)}")
    return dil


class TokenAwarePooling(nn.Module):
    """Token-aware average pooling over a token grid.

    ``out = w_0 * x + sum_k w_k * avgpool3x3_{dilation d_k}(x)`` with per-token weights
    ``w = softmax(Conv3x3(K->K)(BN(Conv3x3(C->K)(x))))`` over the K branches.

    Args:
        dim: token width ``C``.
        dilations: dilations of the pooled branches (all >= 1); K = ``len(dilations) + 1``.
    """

    def __init__(self, dim: int, dilations: Sequence[int] = (1, 2, 3)) -> None:
        super().__init__()
        check_positive_int("dim", dim)
        self.dim = dim
        self.dilations = check_dilations(dilations)
        self.num_branches = len(self.dilations) + 1
        k = self.num_branches
        # Branch-weight predictor, as published: conv -> BN -> conv, no biases, softmax over K.
        self.predictor = nn.Sequential(
            nn.Conv2d(dim, k, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(k),
            nn.Conv2d(k, k, kernel_size=3, padding=1, bias=False),
        )

    def pool(self, grid: torch.Tensor, dilation: int) -> torch.Tensor:
        """3x3 average pool with ``dilation``, stride 1, zero padding ``dilation``, divisor 9.

        ``grid`` is (B, C, H, W); the result has the same shape, memory format and dtype.
        """
        return box_pool(grid, dilation)

    def branch_weights(self, grid: torch.Tensor) -> torch.Tensor:
        """Per-token branch weights (B, K, H, W), summing to 1 over K."""
        return self.predictor(grid).softmax(dim=1)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """Pool the tokens ``x`` (B, N, C) laid out on an ``hw = (H, W)`` grid; returns (B, N, C)."""
        B, N, C = x.shape
        H, W = hw
        check_token_grid(N, H, W)
        # The tokens (B, N, C) are already the grid in channels-last order: (B, H, W, C) is a view,
        # and permuting it gives (B, C, H, W) with channels-last strides, no copy. The depthwise
        # pooling convs run markedly faster on that layout on the CPU (fp32 fwd+bwd of the whole
        # module 0.76x at (2, 196, 448), bf16 0.89x, benchmarks/bench_components.py), and the
        # result needs no copy back.
        tokens = x.reshape(B, H, W, C)
        grid = tokens.permute(0, 3, 1, 2)
        if not torch.jit.is_scripting():
            grid = autocast_once(grid)  # one cast for the four convs, not one each
        w = self.branch_weights(grid).permute(0, 2, 3, 1)  # (B, H, W, K): one weight per token and branch
        out = tokens * w[..., 0:1]
        for i, d in enumerate(self.dilations, start=1):
            # In place: ``out`` is not saved for backward, and skipping a fresh (B, H, W, C) buffer
            # per branch saves ~20 % on CPU. Assigned, so that torch.fx keeps the op.
            out = out.add_(self.pool(grid, d).permute(0, 2, 3, 1) * w[..., i:i + 1])  # shared across channels
        return out.reshape(B, N, C)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, dilations={self.dilations}, num_branches={self.num_branches}"
