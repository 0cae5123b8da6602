"""RobustViT: one configurable Vision Transformer over the zoo's stems, TAP, mixers and heads.

Layout (no class token inside the blocks, so TAP and the conv mixers always see a token grid)::

    image -> stem -> + position encoding -> blocks (TAP?, attention, mixer) ->
        [class-attention blocks on (cls, tokens)] -> LayerNorm -> pool (cls or mean) -> head

Every published FAN model is a configuration of this class (see ``components.presets``). The model
speaks timm's model interface: ``feature_info`` and ``forward_intermediates`` (so ``features_only=True``
works through timm's ``FeatureGetterNet``), ``set_grad_checkpointing``, ``group_matcher``,
``reset_classifier(num_classes, global_pool)``, ``no_weight_decay``; it compiles with TorchScript and
traces with torch.fx.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from timm.layers import trunc_normal_
from timm.models import checkpoint, checkpoint_seq
from timm.models._features import feature_take_indices  # what timm's own models use
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

#: Pooling before the classifier: class token, mean of the grid tokens, or none (all tokens).
GLOBAL_POOLS = ("token", "avg", "")


def _check_global_pool(global_pool: str, has_class_token: bool) -> None:
    check_choice("global_pool", global_pool, GLOBAL_POOLS)
    if global_pool == "token" and not has_class_token:
        raise ValueError("global_pool='token' needs a class token (class_attn_layers > 0); "
                         "use 'avg' or '' for this model")


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
        global_pool: ``"token"`` (class token), ``"avg"`` (mean of the grid tokens) or ``""`` (no
            pooling: ``forward`` returns every token); ``None`` picks ``"token"`` with a
            class-attention head and ``"avg"`` without.
        head_init_scale: the classifier's initial weights are scaled by this (FAN-L-Hybrid: 0.001).
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
        global_pool: str | None = None,
        head_init_scale: float = 1.0,
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
        check_non_negative("head_init_scale", head_init_scale)
        if global_pool is None:
            global_pool = "token" if class_attn_layers else "avg"
        _check_global_pool(global_pool, bool(class_attn_layers))
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
        self.in_chans = in_chans
        self.num_prefix_tokens = 1 if class_attn_layers else 0
        self.grad_checkpointing = False

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
        # One feature level per block: (B, C, H / p, W / p) maps, as timm's ViT and XCiT report them.
        self.feature_info = [dict(num_chs=embed_dim, reduction=patch_size, module=f"blocks.{i}")
                             for i in range(depth)]

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
        self.global_pool = global_pool
        self.norm = LayerNorm6(embed_dim)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, self.num_classes) if self.num_classes else nn.Identity()
        self._init_weights(head_init_scale)

    # ---- timm model interface ----
    def _init_weights(self, head_init_scale: float) -> None:
        """As FAN and timm's XCiT: every Linear trunc-normal (std 0.02) with zero bias, the class token
        trunc-normal; the classifier then scaled by ``head_init_scale``. Convs keep their modules' init."""
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if isinstance(self.head, nn.Linear):
            with torch.no_grad():
                self.head.weight.mul_(head_init_scale)
                self.head.bias.mul_(head_init_scale)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Parameters that optimisers should not decay (timm's ``create_optimizer_v2`` reads this)."""
        return {"cls_token", "pos_embed.pos_embed"}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for layer-wise learning-rate decay (timm's ``param_groups_layer_decay``)."""
        return dict(
            stem=r"^cls_token|^pos_embed|^patch_embed",
            blocks=r"^blocks\.(\d+)" if coarse else [(r"^blocks\.(\d+)", None)],
            cls_attn_blocks=[(r"^cls_attn_blocks\.(\d+)", None), (r"^norm", (99999,))],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block in the backward pass instead of keeping its activations."""
        self.grad_checkpointing = bool(enable)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier (0 classes: none) and, if given, the pooling (one of :data:`GLOBAL_POOLS`)."""
        check_non_negative_int("num_classes", num_classes)
        if global_pool is not None:
            _check_global_pool(global_pool, self.cls_token is not None)
            self.global_pool = global_pool
        self.num_classes = int(num_classes)
        ref = next(self.parameters())
        self.head = (nn.Linear(self.embed_dim, self.num_classes, device=ref.device, dtype=ref.dtype)
                     if self.num_classes else nn.Identity())

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Image (B, in_chans, H, W) -> position-encoded tokens (B, N, C) and their grid."""
        x, hw = self.patch_embed(x)
        return self.pos_drop(self.pos_embed(x, hw)), hw

    def _head_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Grid tokens (B, N, C) -> [class token +] class-attention blocks -> final norm."""
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + N, C)
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint_seq(self.cls_attn_blocks, x)
            else:
                for block in self.cls_attn_blocks:
                    x = block(x)
        return self.norm(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> normalised tokens (B, N, C), or (B, 1 + N, C) with a class-attention head."""
        x, hw = self._embed(x)
        for block in self.blocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(block, x, hw)
            else:
                x = block(x, hw)
        return self._head_tokens(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens from :meth:`forward_features` -> logits (B, num_classes), or pooled (B, C).

        With ``global_pool=""`` nothing is pooled and the classifier applies to every token.
        """
        if self.global_pool == "token":
            x = x[:, 0]
        elif self.global_pool == "avg":
            x = x[:, self.num_prefix_tokens:].mean(dim=1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.jit.ignore
    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and, from the same pass, every token block's post-softmax attention (B, heads, N, N).

        Class-attention blocks are not included.
        """
        x, hw = self._embed(x)
        maps: list[torch.Tensor] = []
        for block in self.blocks:
            if self.grad_checkpointing:
                x, attn = checkpoint(block.forward_with_attn, x, hw)
            else:
                x, attn = block.forward_with_attn(x, hw)
            maps.append(attn)  # (B, heads, N, N)
        return self.forward_head(self._head_tokens(x)), maps

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """timm's feature API: the outputs of the blocks named by ``indices`` (last n if an int, all
        if ``None``), as (B, C, H / p, W / p) maps (``output_fmt="NCHW"``) or (B, N, C) tokens ("NLC").

        ``norm`` applies the final LayerNorm to each; ``stop_early`` skips the blocks after the last one
        asked for. Returns the intermediates, or ``(forward_features output, intermediates)``.
        """
        check_choice("output_fmt", output_fmt, ("NCHW", "NLC"))
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        B = x.shape[0]
        x, (H, W) = self._embed(x)
        blocks = self.blocks[: max_index + 1] if stop_early else self.blocks
        intermediates: list[torch.Tensor] = []
        for i, block in enumerate(blocks):
            x = checkpoint(block, x, (H, W)) if self.grad_checkpointing else block(x, (H, W))
            if i in take_indices:
                intermediates.append(self.norm(x) if norm else x)
        if output_fmt == "NCHW":
            intermediates = [y.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous() for y in intermediates]
        if intermediates_only:
            return intermediates
        return self._head_tokens(x), intermediates

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the blocks after the last of ``indices`` (and the head / final norm if asked)."""
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[: max_index + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.cls_attn_blocks = nn.ModuleList()
            self.reset_classifier(0, "")
        return take_indices
