"""The one frozen config of a trial: what it builds, how it trains. Saved with every checkpoint.

A :class:`TrialConfig` is made from the flat dict that the sampler gives a trial (sampled values
plus the space's fixed values). From it alone the model is rebuilt:
``timm.create_model(cfg.model_name, **cfg.model_kwargs())``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from search.space.schema import did_you_mean


@dataclass(frozen=True)
class TrialConfig:
    """Model, optimisation and loss settings of one trial (flat: it is logged as MLflow params)."""

    # ---- model (keyword arguments of the timm model) ----
    model_name: str = "robust_vit"
    img_size: int = 32
    in_chans: int = 3
    num_classes: int = 10
    patch_size: int = 4
    embed_dim: int = 192
    depth: int = 12
    num_heads: int = 4
    mlp_ratio: float = 4.0
    mixer: str | tuple[str, ...] = "mlp"
    stem: str = "linear"
    pos_embed: str = "learned"
    tap: bool = False
    tap_dilations: tuple[int, ...] = ()
    tap_blocks: str | tuple[int, ...] = "all"  # "all" | "first_half" | "last_half" | block indices
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    layer_scale_init: float | None = 1.0
    class_attn_layers: int = 0
    drop_path_schedule: str = "uniform"
    # ---- training ----
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    scheduler: str = "cosine"
    warmup_epochs: int = 0
    min_lr: float = 1e-5
    adl_weight: float = 0.0
    adl_threshold: float = 2.0
    augmentation: str = "flip"
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    seed: int = 0

    # ---- conversions ----------------------------------------------------------------------------
    @classmethod
    def from_flat_dict(cls, values: dict[str, Any]) -> TrialConfig:
        """Build from a flat dict; unknown keys are rejected (ValueError naming the valid keys)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            hint = did_you_mean(unknown[0], list(fields))
            raise ValueError(
                f"unknown TrialConfig keys {unknown}; valid keys are {sorted(fields)}" + (f"; {hint}" if hint else "")
            )
        # JSON and Ray configs turn tuples into lists: turn them back so configs compare equal.
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def to_flat_dict(self) -> dict[str, Any]:
        """Every field, tuples as lists (JSON/YAML/MLflow friendly)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    # ---- what it builds -------------------------------------------------------------------------
    def tap_block_indices(self) -> tuple[int, ...] | None:
        """Block indices with TAP (None: all blocks) — only meaningful when TAP is on."""
        if isinstance(self.tap_blocks, tuple):
            return self.tap_blocks
        half = self.depth // 2
        if self.tap_blocks == "first_half":
            return tuple(range(max(1, half)))
        if self.tap_blocks == "last_half":
            return tuple(range(min(half, self.depth - 1), self.depth))
        return None

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``timm.create_model(self.model_name, **kwargs)``."""
        return {
            "img_size": self.img_size,
            "in_chans": self.in_chans,
            "num_classes": self.num_classes,
            "patch_size": self.patch_size,
            "embed_dim": self.embed_dim,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "mixer": list(self.mixer) if isinstance(self.mixer, tuple) else self.mixer,
            "stem": self.stem,
            "pos_embed": self.pos_embed,
            "tap_dilations": tuple(self.tap_dilations) if self.tap else (),
            "tap_blocks": self.tap_block_indices() if self.tap else None,
            "drop_rate": self.drop_rate,
            "drop_path_rate": self.drop_path_rate,
            # timm.create_model drops keyword arguments that are None; 0 is the model's "no LayerScale".
            "layer_scale_init": self.layer_scale_init or 0.0,
            "class_attn_layers": self.class_attn_layers,
            "drop_path_schedule": self.drop_path_schedule,
        }

    def optimizer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``timm.optim.create_optimizer_v2(model, **kwargs)``."""
        kwargs: dict[str, Any] = {"opt": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay}
        if self.optimizer in ("sgd", "nesterov", "momentum", "rmsprop", "rmsproptf", "lars", "nlars"):
            kwargs["momentum"] = self.momentum
        return kwargs
