"""``conv`` stem: FAN's (XCiT's) convolutional patch embedding.

``log2(p)`` stride-2 3x3 conv + BatchNorm layers with GELU between them; the widths double up to
``embed_dim`` (for p = 16: C/8 -> C/4 -> C/2 -> C). timm's ``xcit.ConvPatchEmbed`` only knows
p = 8 and 16, so this one is written for any power-of-two patch size.
"""

from __future__ import annotations

import torch
from torch import nn

from components._checks import check_image_divisible, check_patch_grid, check_positive_int


class ConvPatchEmbed(nn.Module):
    """Stack of stride-2 conv3x3 + BN layers (GELU between) from the image to ``embed_dim`` tokens.

    Laid out as in FAN's and timm's XCiT code: ``proj`` holds (conv, BN) pairs with a GELU between
    them, so the weights are named ``proj.0.0``, ``proj.0.1``, ``proj.2.0``, ...

    Args:
        img_size: image size (int or (H, W)); must be divisible by ``patch_size``.
        patch_size: total stride ``p``; a power of two >= 2.
        in_chans: image channels.
        embed_dim: token width ``C``; must be divisible by ``p / 2``.
    """

    #: The first conv's weight name inside the stem (timm's pretrained_cfg ``first_conv``).
    first_conv = "proj.0.0"

    def __init__(self, img_size: int | tuple[int, int] = 224, patch_size: int = 16, in_chans: int = 3,
                 embed_dim: int = 768) -> None:
        super().__init__()
        check_positive_int("in_chans", in_chans)
        check_positive_int("embed_dim", embed_dim)
        self.grid_size = check_patch_grid(img_size, patch_size)
        if patch_size < 2 or patch_size & (patch_size - 1):
            raise ValueError(f"the conv stem needs a power-of-two patch_size >= 2, got {patch_size}")
        n = patch_size.bit_length() - 1  # number of stride-2 layers
        if embed_dim % 2 ** (n - 1):
            raise ValueError(
                f"the conv stem with patch_size={patch_size} needs embed_dim divisible by "
                f"{2 ** (n - 1)}, got {embed_dim}"
            )
        self.patch_size = patch_size
        widths = [embed_dim // 2 ** (n - 1 - i) for i in range(n)]  # e.g. C/8, C/4, C/2, C
        layers: list[nn.Module] = []
        in_ch = in_chans
        for i, out_ch in enumerate(widths):
            if i:
                layers.append(nn.GELU())
            layers.append(nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1, bias=False),
                                        nn.BatchNorm2d(out_ch)))
            in_ch = out_ch
        self.proj = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Image (B, in_chans, H, W) -> tokens (B, N, C) and their grid (H / p, W / p)."""
        check_image_divisible(x.shape[-2], x.shape[-1], self.patch_size)
        x = self.proj(x)  # (B, C, H/p, W/p)
        return x.flatten(2).transpose(1, 2), (x.shape[-2], x.shape[-1])
