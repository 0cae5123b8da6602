"""ADL: the attention diversification loss of TAP/ADL (Guo et al., ICCV 2023, arXiv 2303.11126).

For every token-attention layer: average the post-softmax maps over heads (A, shape (B, N, N)),
take the mean row ``a`` (B, 1, N), zero every entry of A and of a that is ``<= threshold / N``
(``threshold = 2``: twice the uniform attention level, since softmax attention is never exactly
zero), and average the cosine similarity between each row of A and ``a`` over batch and rows.
The loss is the mean over layers. Comparing each row with the mean row costs O(N^2) instead of the
O(N^3) of all row pairs. The caller multiplies by lambda (published 1.0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from components._checks import check_non_negative


def layer_diversification(attn: torch.Tensor, threshold: float = 2.0) -> torch.Tensor:
    """ADL of one layer: mean over batch and rows of ``cos(A_i, mean row)`` after the hard mask.

    Args:
        attn: post-softmax attention (B, heads, N, N), or already head-averaged (B, N, N).
        threshold: ``th``; entries ``<= th / N`` are zeroed.

    Returns:
        A scalar tensor.
    """
    # In float32 whatever the maps' dtype: under fp16 autocast the cosine's eps (1e-8) underflows to 0,
    # and a fully masked row then gives 0 / 0.
    attn = attn.float()
    if attn.dim() == 4:
        attn = attn.mean(dim=1)  # (B, N, N)
    if attn.dim() != 3 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError(
            f"attention maps must be (B, heads, N, N) or (B, N, N), got shape {tuple(attn.shape)}"
        )
    n = attn.shape[-1]
    tau = threshold / n
    mean_row = attn.mean(dim=1, keepdim=True)  # (B, 1, N); batch axis kept, also for B = 1
    attn = attn * (attn > tau)
    mean_row = mean_row * (mean_row > tau)
    # A row (or the mean row) with every entry masked has cosine 0 (F.cosine_similarity's eps).
    cos = F.cosine_similarity(attn, mean_row.expand_as(attn), dim=-1)  # (B, N)
    return cos.mean()


def attention_diversification_loss(attn_maps: Sequence[torch.Tensor], threshold: float = 2.0) -> torch.Tensor:
    """ADL over layers: the mean of :func:`layer_diversification` over ``attn_maps``.

    Args:
        attn_maps: one post-softmax map (B, heads, N, N) per token-attention layer
            (class-attention layers excluded), e.g. from ``model.forward_with_attention(x)[1]``.
        threshold: ``th`` of the hard mask ``A <= th / N`` (published 2.0).

    Returns:
        A scalar tensor: near 1 when every row attends like the mean row (collapsed attention),
        near 0 when rows attend to disjoint tokens.
    """
    check_non_negative("threshold", threshold)
    maps = list(attn_maps)
    if not maps:
        raise ValueError("attention_diversification_loss needs at least one attention map, got none")
    return torch.stack([layer_diversification(a, threshold) for a in maps]).mean()
