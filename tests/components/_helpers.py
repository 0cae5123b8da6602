"""Assertions shared by the component tests."""

from __future__ import annotations

import torch
from torch import nn


def assert_grads_reach_all(module: nn.Module) -> None:
    """Every trainable parameter got a finite, non-zero gradient."""
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached: {missing}"
    zero = [n for n, p in module.named_parameters() if p.requires_grad and not p.grad.abs().sum() > 0]
    assert not zero, f"zero gradient: {zero}"
    bad = [n for n, p in module.named_parameters() if p.requires_grad and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradient: {bad}"


def assert_deterministic_in_eval(fn, *args) -> None:
    """Two calls in eval mode give bit-identical outputs."""
    with torch.no_grad():
        a, b = fn(*args), fn(*args)
    assert torch.equal(a, b)


def tiny_preset_kwargs(name: str, depth: int = 2) -> dict:
    """Overrides that shrink preset ``name`` to 16 px, width 16, ``depth`` blocks, 2 heads, 3 classes,
    keeping its own structure (stem, mixer, position encoding, head, TAP)."""
    from components import PRESET_KWARGS

    stem = PRESET_KWARGS[name].get("stem", "linear")
    tiny = dict(img_size=16, embed_dim=16, depth=depth, num_heads=2, num_classes=3, patch_size=4)
    if stem == "conv":
        tiny["patch_size"] = 8
    if stem == "convnext":
        tiny["convnext_dims"] = (8, 16)
    return tiny
