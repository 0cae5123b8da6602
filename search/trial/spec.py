"""The one frozen spec of a trial: what it builds and how it trains. Logged, checkpointed, exported.

A :class:`TrialSpec` is made once from the flat dict that the sampler gives a trial (the sampled
values plus the space's fixed values). It holds a :class:`ModelSpec` (a timm model name and only the
model fields that the space set for that model: a preset or any timm model keeps its own
architecture) and a :class:`TrainSpec` (optimisation and loss). From it alone the model is rebuilt:
``timm.create_model(spec.model.name, **spec.model.kwargs())``. Its flat form
(:meth:`TrialSpec.to_flat_dict`) is what MLflow records as params and the trial record keeps.

Defaults live in one place each: the model's own (``timm.create_model`` gets nothing the space did
not set) and the space schema's for training (:mod:`search.space.schema`), which the sampler always
passes. The spec has none of its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from search.space import schema
from search.space.schema import did_you_mean

# Flat keys that are not fields of the space's model section but reach the model.
DATA_KEYS = ("img_size", "in_chans", "num_classes")
# The model section's fields (besides ``name``), in schema order.
MODEL_FIELDS = tuple(k for k in schema.MODEL if k != "name")


def _tuples(value: Any) -> Any:
    """JSON, YAML and Ray turn tuples into lists: turn them back so that specs compare equal."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class ModelSpec:
    """A timm model name and the keyword-level fields the space set for it.

    Attributes:
        name: a timm model name (the zoo is registered: ``robust_vit``, a preset, ``resnet18``...).
        fields: ``(field, value)`` pairs of the space's model section that apply to this model,
            sorted by field name; the TAP fields (``tap``, ``tap_dilations``, ``tap_blocks``) are
            turned into the model's TAP keywords by :meth:`kwargs`.
        img_size, in_chans, num_classes: from the data set (``img_size`` None for a model without one).
    """

    name: str
    fields: tuple[tuple[str, Any], ...] = ()
    img_size: int | None = None
    in_chans: int = 3
    num_classes: int = 1000

    def get(self, field: str, default: Any = None) -> Any:
        return dict(self.fields).get(field, default)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``timm.create_model(self.name, **kwargs)``: only what was set."""
        fields = dict(self.fields)
        out: dict[str, Any] = {"in_chans": self.in_chans, "num_classes": self.num_classes}
        if self.img_size is not None:
            out["img_size"] = self.img_size
        tap = fields.pop("tap", None)
        dilations, blocks = fields.pop("tap_dilations", None), fields.pop("tap_blocks", None)
        if tap is not None:  # TAP set by the space: on with its dilations, or off (even for a TAP preset)
            out["tap_dilations"] = tuple(dilations) if tap else ()
            out["tap_blocks"] = self._tap_block_indices(blocks, fields.get("depth")) if tap else None
        for key, value in fields.items():
            # timm.create_model drops None keywords: 0 is the zoo's "no LayerScale".
            out[key] = 0.0 if key == "layer_scale_init" and value is None else _lists(value)
        return out

    def _tap_block_indices(self, blocks: Any, depth: int | None) -> tuple[int, ...] | None:
        """Block indices with TAP (None: all blocks) from a keyword or a list of indices."""
        if blocks is None or blocks == "all":
            return None
        if isinstance(blocks, tuple):
            return blocks
        if depth is None:
            from search.space.models import zoo_defaults

            depth = int(zoo_defaults(self.name)["depth"])
        half = depth // 2
        if blocks == "first_half":
            return tuple(range(max(1, half)))
        return tuple(range(min(half, depth - 1), depth))  # "last_half"


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation and loss of a trial (values from the space; defaults are the schema's)."""

    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float
    momentum: float
    scheduler: str
    warmup_epochs: int
    min_lr: float
    augmentation: str
    random_erasing: float
    label_smoothing: float
    grad_clip: float | None
    precision: str
    channels_last: bool
    compile: bool
    mixup: float
    cutmix: float
    ema_decay: float | None
    seed: int
    adl_weight: float | None = None  # None: ADL does not apply (a model without attention maps)
    adl_threshold: float | None = None  # only with ADL

    def optimizer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``timm.optim.create_optimizer_v2(model, **kwargs)``."""
        kwargs: dict[str, Any] = {"opt": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay}
        if self.optimizer in ("sgd", "nesterov", "momentum", "rmsprop", "rmsproptf", "lars", "nlars"):
            kwargs["momentum"] = self.momentum
        return kwargs


TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainSpec))
FLAT_KEYS = ("model_name", *MODEL_FIELDS, *DATA_KEYS, *TRAIN_KEYS)


@dataclass(frozen=True)
class TrialSpec:
    """Everything one trial builds and trains from (see the module docstring)."""

    model: ModelSpec
    train: TrainSpec

    @classmethod
    def from_flat_dict(cls, values: dict[str, Any]) -> TrialSpec:
        """Build from the flat dict of a sampled trial; unknown keys are a ValueError naming the valid ones."""
        unknown = sorted(set(values) - set(FLAT_KEYS))
        if unknown:
            hint = did_you_mean(unknown[0], FLAT_KEYS)
            raise ValueError(f"unknown trial spec keys {unknown}; valid keys are {sorted(FLAT_KEYS)}"
                             + (f"; {hint}" if hint else ""))
        if "model_name" not in values:
            raise ValueError("a trial spec needs 'model_name' (a timm model name)")
        fields = tuple(sorted((k, _tuples(values[k])) for k in MODEL_FIELDS if k in values))
        data = {k: values[k] for k in DATA_KEYS if k in values}
        model = ModelSpec(values["model_name"], fields, **data)
        missing = [f.name for f in dataclasses.fields(TrainSpec)
                   if f.default is dataclasses.MISSING and f.name not in values]
        if missing:
            raise ValueError(f"a trial spec needs the training values {missing}")
        train = TrainSpec(**{k: values[k] for k in TRAIN_KEYS if k in values})
        return cls(model, train)

    def to_flat_dict(self) -> dict[str, Any]:
        """The flat form (tuples as lists; JSON, YAML and MLflow friendly): only what applies."""
        out: dict[str, Any] = {"model_name": self.model.name}
        out.update({k: _lists(v) for k, v in self.model.fields})
        if self.model.img_size is not None:
            out["img_size"] = self.model.img_size
        out["in_chans"], out["num_classes"] = self.model.in_chans, self.model.num_classes
        train = dataclasses.asdict(self.train)
        for key in ("adl_weight", "adl_threshold"):  # what does not apply is not logged
            if train[key] is None:
                train.pop(key)
        out.update(train)
        return out

    @property
    def uses_adl(self) -> bool:
        return bool(self.train.adl_weight)
