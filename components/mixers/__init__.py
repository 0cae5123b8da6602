"""Channel mixers (the second half of a block), one module each, and their registry.

Every mixer is built as ``cls(dim, num_heads=..., mlp_ratio=..., qkv_bias=..., drop=..., attn_drop=...)``
and called as ``mixer(x, hw)`` with tokens ``x`` (B, N, C) on an ``hw = (H, W)`` grid.
"""

from __future__ import annotations

from torch import nn

from components._checks import lookup
from components.mixers.fan import FANMixer
from components.mixers.fan_se import FANSEMixer
from components.mixers.mlp import MlpMixer
from components.mixers.se import SEMixer
from components.mixers.xca import XCAMixer

MIXERS: dict[str, type[nn.Module]] = {
    "mlp": MlpMixer,
    "se": SEMixer,
    "xca": XCAMixer,
    "fan": FANMixer,
    "fan_se": FANSEMixer,
}


def get_mixer(name: str) -> type[nn.Module]:
    """The mixer class registered as ``name``; ``ValueError`` naming the valid mixers otherwise."""
    return lookup("mixer", name, MIXERS)  # type: ignore[return-value]


__all__ = ["MIXERS", "FANMixer", "FANSEMixer", "MlpMixer", "SEMixer", "XCAMixer", "get_mixer"]
