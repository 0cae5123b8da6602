"""What a model of a space can take: its keyword arguments, its defaults, its attention maps.

``model.name`` may be any timm model (the zoo is registered with timm), fixed or searched. A model
field of the space (``mixer``, ``tap``, ``num_heads``, ...) reaches ``timm.create_model`` only when
the space sets it, and only for a model that takes it; ADL needs a model that returns its attention
maps (``forward_with_attention``). This module answers those questions once per model name:

- the zoo's models (``components.PRESETS``) take every keyword of ``components.RobustViT``, and
  their defaults are the class's, updated by the preset's own arguments;
- any other timm model is built once on PyTorch's ``meta`` device (no memory, no weights, a few
  milliseconds) with the keyword in question: timm passes unknown keywords to the model class,
  whose ``__init__`` refuses them with a ``TypeError`` naming the keyword.

Every answer is kept on disk (:mod:`search.space.registry_cache`), so that checking a space file
imports neither torch nor timm once the answers are known.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from search.space.registry_cache import registry

# The model keyword that a space field sets (the TAP fields together set the TAP keywords).
FIELD_KWARG = {"tap": "tap_dilations", "tap_dilations": "tap_dilations", "tap_blocks": "tap_blocks"}
_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def kwarg_of(field: str) -> str:
    """The ``timm.create_model`` keyword that the model field ``field`` sets."""
    return FIELD_KWARG.get(field, field)


@registry
def is_zoo(name: str) -> bool:
    """True for the zoo's models (RobustViT and its presets)."""
    import components

    return name in components.PRESETS


@registry
def zoo_defaults(name: str) -> dict[str, Any]:
    """Every keyword of a zoo model with the value it takes when the space leaves it unset."""
    import components

    signature = inspect.signature(components.RobustViT.__init__)
    defaults = {k: p.default for k, p in signature.parameters.items() if p.default is not inspect.Parameter.empty}
    return {**defaults, **components.PRESET_KWARGS[name]}


def _build_on_meta(name: str, kwargs: dict[str, Any]) -> Any:
    import timm
    import torch

    import components  # noqa: F401  (registers the zoo with timm)

    with torch.device("meta"):
        return timm.create_model(name, pretrained=False, **kwargs)


@registry
def takes(name: str, kwarg: str) -> bool:
    """True when model ``name`` accepts the keyword ``kwarg``."""
    if is_zoo(name):
        return kwarg in zoo_defaults(name)
    try:
        # Any value but None (timm.create_model drops None): the keyword is refused before it is read.
        _build_on_meta(name, {kwarg: 1})
    except TypeError as err:
        match = _UNEXPECTED.search(str(err))
        if match and match.group(1) == kwarg:
            return False
    except Exception:  # noqa: BLE001  the keyword exists; its value is judged when the trial builds
        return True
    return True


@registry
def exposes_attention(name: str) -> bool:
    """True when the model returns its attention maps (``forward_with_attention``), as ADL needs."""
    if is_zoo(name):
        return True
    try:
        model = _build_on_meta(name, {})
    except Exception:  # noqa: BLE001  a model that cannot be built has no maps to give
        return False
    return callable(getattr(model, "forward_with_attention", None))
