"""``linear`` stem: ViT's linear patch embedding (a p x p conv with stride p; timm's ``PatchEmbed``)."""

from __future__ import annotations

import torch
from timm.layers import PatchEmbed
from torch import nn

from components._checks import check_image_divisible, check_patch_grid, check_positive_int


class LinearPatchEmbed(nn.Module):
    """Split the image into p x p patches and project each to ``embed_dim``.

    Args:
        img_size: image size (int or (H, W)); must be divisible by ``patch_size``.
        patch_size: patch side ``p``.
        in_chans: image channels.
        embed_dim: token width ``C``.
    """

    #: The first conv's weight name inside the stem (timm's pretrained_cfg ``first_conv``).
    first_conv = "proj.proj"

    def __init__(self, img_size: int | tuple[int, int] = 224, patch_size: int = 16, in_chans: int = 3,
                 embed_dim: int = 768) -> None:
        super().__init__()
        check_positive_int("in_chans", in_chans)
        check_positive_int("embed_dim", embed_dim)
        self.grid_size = check_patch_grid(img_size, patch_size)
        self.patch_size = patch_size
        # strict_img_size=False: any input whose sides are multiples of p works (checked in forward).
        self.proj = PatchEmbed(img_size, patch_size, in_chans, embed_dim, flatten=False, output_fmt="NHWC",
                               strict_img_size=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Image (B, in_chans, H, W) -> tokens (B, N, C) and their grid (H / p, W / p)."""
        check_image_divisible(x.shape[-2], x.shape[-1], self.patch_size)
        x = self.proj(x)  # (B, H/p, W/p, C)
        return x.flatten(1, 2), (x.shape[1], x.shape[2])
