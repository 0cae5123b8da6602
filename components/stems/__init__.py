"""Patch stems, one module each, and their registry.

Every stem is built as ``cls(img_size, patch_size, in_chans, embed_dim, **stem_kwargs)`` and maps an
image (B, in_chans, H, W) to tokens (B, N, C) plus their grid ``(H / p, W / p)``.
"""

from __future__ import annotations

from torch import nn

from components._checks import lookup
from components.stems.conv import ConvPatchEmbed
from components.stems.convnext import ConvNeXtHybridEmbed
from components.stems.linear import LinearPatchEmbed

STEMS: dict[str, type[nn.Module]] = {
    "linear": LinearPatchEmbed,
    "conv": ConvPatchEmbed,
    "convnext": ConvNeXtHybridEmbed,
}


def get_stem(name: str) -> type[nn.Module]:
    """The stem class registered as ``name``; ``ValueError`` naming the valid stems otherwise."""
    return lookup("stem", name, STEMS)  # type: ignore[return-value]


__all__ = ["STEMS", "ConvNeXtHybridEmbed", "ConvPatchEmbed", "LinearPatchEmbed", "get_stem"]
