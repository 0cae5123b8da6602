"""``convnext`` stem: FAN's hybrid patch embedding, the first ConvNeXt stages then a 2x2 projection.

Published (FAN-Hybrid): ConvNeXt stem (4x4 conv, stride 4, LayerNorm), stage 1 of depth 3 at 128
channels, downsample + stage 2 of depth 3 at 256 channels (7x7 depthwise convs, layer scale 1e-6),
then Conv2d(k=2, s=2) to the embedding width: 14x14 tokens at 224 px, i.e. patch size 16. The stages
are timm's own ``ConvNeXtStage``; as in ConvNeXt (and FAN's copy of it) every conv of the stem and the
stages starts trunc-normal (std 0.02) with zero bias, the projection with PyTorch's default. For another patch size p the stem conv's stride becomes
``p / 2**len(depths)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import LayerNorm, LayerNorm2d, trunc_normal_
from timm.models.convnext import ConvNeXtStage
from torch import nn

from components._checks import as_int_tuple, check_image_divisible, check_patch_grid, check_positive_int


class ConvNeXtHybridEmbed(nn.Module):
    """ConvNeXt stem + stages, then a 2x2 stride-2 conv to ``embed_dim`` tokens.

    Args:
        img_size: image size (int or (H, W)); must be divisible by ``patch_size``.
        patch_size: total stride; must be a multiple of ``2 ** len(convnext_depths)``.
        in_chans: image channels.
        embed_dim: token width ``C``.
        convnext_depths: blocks per ConvNeXt stage (published (3, 3); FAN-L-Hybrid (3, 5)).
        convnext_dims: widths of the stages (published (128, 256)).
        ls_init_value: ConvNeXt layer-scale initial value.
    """

    #: The first conv's weight name inside the stem (timm's pretrained_cfg ``first_conv``).
    first_conv = "stem.0"

    def __init__(self, img_size: int | tuple[int, int] = 224, patch_size: int = 16, in_chans: int = 3,
                 embed_dim: int = 768, convnext_depths: Sequence[int] = (3, 3),
                 convnext_dims: Sequence[int] = (128, 256), ls_init_value: float = 1e-6) -> None:
        super().__init__()
        check_positive_int("in_chans", in_chans)
        check_positive_int("embed_dim", embed_dim)
        self.grid_size = check_patch_grid(img_size, patch_size)
        depths = as_int_tuple("convnext_depths", convnext_depths)
        dims = as_int_tuple("convnext_dims", convnext_dims)
        if not depths or len(depths) != len(dims):
            raise ValueError(
                f"convnext_depths and convnext_dims must be non-empty and of equal length, got {depths} and {dims}"
            )
        for d in depths + dims:
            check_positive_int("convnext_depths/convnext_dims entry", d)
        n = len(depths)
        if patch_size % 2**n:
            raise ValueError(
                f"the convnext stem with {n} stages needs patch_size divisible by {2**n}, got {patch_size}"
            )
        self.patch_size = patch_size
        stem_stride = patch_size // 2**n  # stem, then (n - 1) stride-2 stages, then the 2x2 projection
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, dims[0], kernel_size=stem_stride, stride=stem_stride),
            LayerNorm2d(dims[0]),
        )
        stages = []
        in_ch = dims[0]
        for i, (depth, dim) in enumerate(zip(depths, dims, strict=True)):
            stages.append(ConvNeXtStage(
                in_ch, dim, kernel_size=7, stride=1 if i == 0 else 2, depth=depth,
                ls_init_value=ls_init_value, norm_layer=LayerNorm2d, norm_layer_cl=LayerNorm,
            ))
            in_ch = dim
        self.stages = nn.Sequential(*stages)
        self.proj = nn.Conv2d(in_ch, embed_dim, kernel_size=2, stride=2)
        for m in [*self.stem.modules(), *self.stages.modules()]:
            if isinstance(m, nn.Conv2d):
                trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Image (B, in_chans, H, W) -> tokens (B, N, C) and their grid (H / p, W / p)."""
        check_image_divisible(x.shape[-2], x.shape[-1], self.patch_size)
        x = self.proj(self.stages(self.stem(x)))  # (B, C, H/p, W/p)
        return x.flatten(2).transpose(1, 2), (x.shape[-2], x.shape[-1])
