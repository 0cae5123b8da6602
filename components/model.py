"""RobustViT: one configurable Vision Transformer over the zoo's stems, TAP, mixers and heads.

Layout (no class token inside the blocks, so TAP and the conv mixers always see a token grid)::

    image -> stem -> + position encoding -> blocks (TAP?, attention, mixer) ->
        [class-attention blocks on (cls, tokens)] -> LayerNorm -> pool (cls or mean) -> head

Every published FAN model is a configuration of this class (see ``components.presets``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from timm.layers import trunc_normal_
from timm.models.xcit import ClassAttentionBlock
from torch import nn

from components._checks import (
    as_int_tuple,
    check_choice,
    check_heads,
    check_non_negative,
    check_non_negative_int,
    check_positive,
    check_positive_int,
    check_probability,
    lookup,
)
from components.blocks import LayerNorm6, RobustBlock
from components.mixers import MIXERS
from components.pos_embed import build_pos_embed
from components.stems import get_stem
from components.tap import check_dilations

#: How the drop-path rate is spread over the blocks (see ``RobustViT``).
DROP_PATH_SCHEDULES = ("uniform", "linear")


def _mixers_per_block(mixer: str | Sequence[str], depth: int) -> list[str]:
    """One mixer name per block; a single name applies to all blocks."""
    names = [mixer] * depth if isinstance(mixer, str) else list(mixer)
    if len(names) != depth:
        raise ValueError(f"mixer must be one name or one per block ({depth} blocks), got {len(names)}: {names}")
    for name in names:
        lookup("mixer", name, MIXERS)
    return names


def _tap_mask(tap_dilations: Sequence[int], tap_blocks: Sequence[int] | None, depth: int) -> list[bool]:
    """Which blocks get TAP. No dilations: none (``tap_blocks`` is then ignored)."""
    if not len(tap_dilations):
        return [False] * depth
    if tap_blocks is None:
        return [True] * depth
    blocks = as_int_tuple("tap_blocks", tap_blocks)
    bad = [b for b in blocks if not 0 <= b < depth]
    if bad:
        raise ValueError(f"tap_blocks must be block indices in [0, {depth - 1}], got {list(blocks)} (bad: {bad})")
    return [i in blocks for i in range(depth)]


class RobustViT(nn.Module):
    """A Vision Transformer assembled from the zoo (flat keyword arguments, timm conventions).

    Args:
        img_size: input image size (int or (H, W)); must be divisible by ``patch_size``.
        patch_size: token stride of the stem.
        in_chans: image channels.
        num_classes: classifier outputs; 0 gives no classifier (``forward`` returns pooled features).
        embed_dim: token width ``C``.
        depth: number of token blocks.
        num_heads: attention heads (any divisor of ``embed_dim``).
        mlp_ratio: hidden width of the mixers' MLPs as a multiple of ``C``.
        mixer: channel mixer for all blocks (``"mlp"``, ``"se"``, ``"xca"``, ``"fan"``) or one per block.
        stem: ``"linear"`` (ViT), ``"conv"`` (FAN conv stem) or ``"convnext"`` (FAN hybrid stem).
        tap_dilations: TAP pooled-branch dilations; empty means no TAP; K = len + 1.
        tap_blocks: indices of the blocks with TAP; ``None`` means every block (when TAP is on).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth; see ``drop_path_schedule``.
        layer_scale_init: LayerScale initial value; ``None`` or ``0`` disables LayerScale. Note that
            ``timm.create_model`` drops keyword arguments that are ``None``: pass ``0`` there.
        class_attn_layers: 0 gives a mean-pool head; > 0 that many CaiT class-attention blocks on a
            class token, whose output feeds the classifier.
        qkv_bias: bias on the qkv projections.
        pos_embed: ``"learned"`` (ViT), ``"fourier"`` (XCiT/FAN) or ``"none"``.
        attn_drop_rate: dropout on attention weights.
        proj_drop_rate: dropout after projections and inside the mixers.
        pos_drop_rate: dropout after adding the position encoding.
        drop_path_schedule: ``"uniform"`` (FAN: the same rate in every block) or ``"linear"``
            (timm ViT: 0 in the first block rising to ``drop_path_rate`` in the last).
        tokens_norm: class-attention blocks normalise all tokens (FAN) rather than the class token only.
        convnext_depths: stage depths of the ``convnext`` stem (default (3, 3)); that stem only.
        convnext_dims: stage widths of the ``convnext`` stem (default (128, 256)); that stem only.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        mixer: str | Sequence[str] = "mlp",
        stem: str = "linear",
        tap_dilations: Sequence[int] = (),
        tap_blocks: Sequence[int] | None = None,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_scale_init: float | None = 1.0,
        class_attn_layers: int = 0,
        qkv_bias: bool = True,
        pos_embed: str = "learned",
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        pos_drop_rate: float = 0.0,
        drop_path_schedule: str = "uniform",
        tokens_norm: bool = True,
        convnext_depths: Sequence[int] | None = None,
        convnext_dims: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        # ---- checks (all ValueError, before anything is built) ----
        check_positive_int("depth", depth)
        check_heads(embed_dim, num_heads, what="embed_dim")
        check_positive("mlp_ratio", mlp_ratio)
        check_non_negative_int("num_classes", num_classes)
        check_non_negative_int("class_attn_layers", class_attn_layers)
        for name, rate in (("drop_rate", drop_rate), ("drop_path_rate", drop_path_rate),
                           ("attn_drop_rate", attn_drop_rate), ("proj_drop_rate", proj_drop_rate),
                           ("pos_drop_rate", pos_drop_rate)):
            check_probability(name, rate)
        if layer_scale_init is not None:
            check_non_negative("layer_scale_init", layer_scale_init)
        check_choice("drop_path_schedule", drop_path_schedule, DROP_PATH_SCHEDULES)
        mixers = _mixers_per_block(mixer, depth)
        dilations = check_dilations(tap_dilations) if len(tap_dilations) else ()
        tap_on = _tap_mask(dilations, tap_blocks, depth)
        stem_cls = get_stem(stem)
        stem_kwargs: dict[str, Any] = {}
        for key, value in (("convnext_depths", convnext_depths), ("convnext_dims", convnext_dims)):
            if value is not None:
                if stem != "convnext":
                    raise ValueError(f"{key} only applies to stem='convnext', got stem={stem!r}")
                stem_kwargs[key] = value

        self.num_classes = int(num_classes)
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.depth = depth
        self.mixers = tuple(mixers)
        self.tap_dilations = dilations
        self.tap_blocks = tuple(i for i, on in enumerate(tap_on) if on)

        # ---- stem and position encoding ----
        self.patch_embed = stem_cls(img_size, patch_size, in_chans, embed_dim, **stem_kwargs)
        self.pos_embed = build_pos_embed(pos_embed, embed_dim, self.patch_embed.grid_size)
        self.pos_drop = nn.Dropout(pos_drop_rate)

        # ---- token blocks ----
        if drop_path_schedule == "linear":
            dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        else:
            dpr = [drop_path_rate] * depth
        self.blocks = nn.ModuleList([
            RobustBlock(
                embed_dim, num_heads, mixer=mixers[i], mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                tap_dilations=dilations if tap_on[i] else (), proj_drop=proj_drop_rate,
                attn_drop=attn_drop_rate, drop_path=dpr[i], layer_scale_init=layer_scale_init,
            )
            for i in range(depth)
        ])

        # ---- head: optional class attention, norm, pool, classifier ----
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_attn_layers else None
        self.cls_attn_blocks = nn.ModuleList([
            ClassAttentionBlock(
                embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, proj_drop=proj_drop_rate,
                attn_drop=attn_drop_rate, norm_layer=LayerNorm6, eta=layer_scale_init or None,
                tokens_norm=tokens_norm,
            )
            for _ in range(int(class_attn_layers))
        ])
        self.global_pool = "token" if class_attn_layers else "avg"
        self.norm = LayerNorm6(embed_dim)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, self.num_classes) if self.num_classes else nn.Identity()
        self._init_weights()

    # ---- timm model interface ----
    def _init_weights(self) -> None:
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Parameters that optimisers should not decay (timm's ``create_optimizer_v2`` reads this)."""
        return {"cls_token", "pos_embed.pos_embed"}

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier (0 classes: none). The pooling is fixed by ``class_attn_layers``."""
        check_non_negative_int("num_classes", num_classes)
        if global_pool is not None and global_pool != self.global_pool:
            raise ValueError(f"this model pools with {self.global_pool!r}; got global_pool={global_pool!r}")
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.embed_dim, self.num_classes) if self.num_classes else nn.Identity()

    def _tokens(self, x: torch.Tensor, return_attn: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Image (B, in_chans, H, W) -> normalised tokens (B, [1 +] N, C) and, if asked, the maps."""
        x, hw = self.patch_embed(x)  # (B, N, C), grid hw
        x = self.pos_drop(self.pos_embed(x, hw))
        maps: list[torch.Tensor] = []
        for block in self.blocks:
            if return_attn:
                x, attn = block(x, hw, return_attn=True)
                maps.append(attn)  # (B, heads, N, N)
            else:
                x = block(x, hw)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + N, C)
            for block in self.cls_attn_blocks:
                x = block(x)
        return self.norm(x), maps

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> normalised tokens (B, N, C), or (B, 1 + N, C) with a class-attention head."""
        return self._tokens(x, return_attn=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens from :meth:`forward_features` -> logits (B, num_classes), or pooled (B, C)."""
        x = x[:, 0] if self.global_pool == "token" else x.mean(dim=1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and, from the same pass, every token block's post-softmax attention (B, heads, N, N).

        Class-attention blocks are not included.
        """
        tokens, maps = self._tokens(x, return_attn=True)
        return self.forward_head(tokens), maps
