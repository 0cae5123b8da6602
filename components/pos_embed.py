"""Position encodings added to the stem's tokens: learned absolute, XCiT Fourier, or none."""

from __future__ import annotations

import torch
from timm.layers import register_notrace_function, resample_abs_pos_embed, trunc_normal_
from timm.models.xcit import PositionalEncodingFourier
from torch import nn

from components._checks import lookup

POS_EMBEDS = ("learned", "fourier", "none")


@register_notrace_function  # an FX leaf: the size test runs on the real grid, not on a traced one
def pos_embed_for_grid(pos: torch.Tensor, hw: tuple[int, int], grid_size: tuple[int, int]) -> torch.Tensor:
    """The embedding (1, H*W, C) of ``grid_size``, bicubically resampled to ``hw`` if that differs."""
    if hw[0] == grid_size[0] and hw[1] == grid_size[1]:
        return pos
    # as timm's ViT does for dynamic image sizes
    return resample_abs_pos_embed(pos, new_size=[hw[0], hw[1]], old_size=[grid_size[0], grid_size[1]],
                                  num_prefix_tokens=0)


class LearnedPosEmbed(nn.Module):
    """ViT's learned absolute position embedding (1, H*W, C), resampled for other grid sizes."""

    def __init__(self, dim: int, grid_size: tuple[int, int]) -> None:
        super().__init__()
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid_size[0] * grid_size[1], dim))
        trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """Add the embedding to tokens ``x`` (B, N, C) on an ``hw`` grid."""
        return x + pos_embed_for_grid(self.pos_embed, hw, self.grid_size)


class FourierPosEmbed(nn.Module):
    """XCiT's Fourier position encoding (hidden 32) through a 1x1 conv; any grid size."""

    def __init__(self, dim: int, grid_size: tuple[int, int], hidden_dim: int = 32) -> None:
        super().__init__()
        self.encoding = PositionalEncodingFourier(hidden_dim=hidden_dim, dim=dim)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        B, N, C = x.shape
        pos = self.encoding(1, hw[0], hw[1])  # (1, C, H, W)
        return x + pos.reshape(1, C, N).transpose(1, 2)


class NoPosEmbed(nn.Module):
    """No position encoding."""

    def __init__(self, dim: int, grid_size: tuple[int, int]) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        return x


_POS_EMBED_CLASSES: dict[str, type[nn.Module]] = {
    "learned": LearnedPosEmbed,
    "fourier": FourierPosEmbed,
    "none": NoPosEmbed,
}


def build_pos_embed(name: str, dim: int, grid_size: tuple[int, int]) -> nn.Module:
    """Build the position encoding ``name`` (one of :data:`POS_EMBEDS`)."""
    cls = lookup("pos_embed", name, _POS_EMBED_CLASSES)
    return cls(dim, grid_size)  # type: ignore[operator]
