"""Shared helpers for the component tests: tiny sizes, so the whole set runs in seconds on 2 cores."""

from __future__ import annotations

import pytest
import torch

import components  # noqa: F401  (registers the models with timm)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
