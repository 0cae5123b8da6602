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
