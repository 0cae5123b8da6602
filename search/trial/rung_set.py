"""The rung set: a fixed, seeded subset of the search's corrupted set (see :mod:`search.trial.rungs`).

The driver draws the items once (:func:`with_rung_set`, beside building the corrupted set) and every
trial judges its rungs on those very items (:func:`rung_judging_set`), each at every corruption and
severity of the set; the images are read from the corrupted set itself, never copied.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from evaluation.corrupted_set import CorruptedSet


def rung_positions(num_items: int, size: int, seed: int) -> torch.Tensor:
    """The positions (sorted int64) of the rung set's items among a corrupted set's ``num_items``:
    a seeded draw of ``size`` of them (all of them when ``size`` >= ``num_items``)."""
    if size >= num_items:
        return torch.arange(num_items)
    g = torch.Generator().manual_seed(int(seed) * 7_919 + 104_729)  # not the draw that chose the set's images
    return torch.randperm(num_items, generator=g)[:size].sort().values


class RungSet(CorruptedSet):
    """The rung set: the items at ``positions`` of a corrupted set, at every corruption and severity
    of it (its images are read from the owner: no copy)."""

    def __init__(self, owner: CorruptedSet, positions: torch.Tensor) -> None:
        sources = None if owner.source_indices is None else owner.source_indices[positions]
        super().__init__(owner.corruptions, owner.severities, owner.labels[positions], sources, owner.num_classes)
        self.owner, self.positions = owner, positions.long()

    def _load(self, corruption: str, severity: int, positions: torch.Tensor) -> torch.Tensor:
        return self.owner._load(corruption, severity, self.positions[positions])


def rung_set(corrupted: CorruptedSet, size: int, seed: int) -> CorruptedSet:
    """The rung set of ``corrupted`` (``corrupted`` itself when ``size`` covers all of its items)."""
    if size >= len(corrupted):
        return corrupted
    return RungSet(corrupted, rung_positions(len(corrupted), size, seed))


def with_rung_set(ctx: Any, corrupted: CorruptedSet) -> Any:
    """In the driver: the trial context with the rung set's items drawn from ``corrupted`` (unchanged
    when the trials are not judged at rungs)."""
    if not ctx.rungs:
        return ctx
    items = rung_positions(len(corrupted), ctx.eval.rung_subset, ctx.eval.seed)
    return dataclasses.replace(ctx, rung_items=tuple(int(i) for i in items))


def rung_judging_set(ctx: Any, corrupted: CorruptedSet) -> CorruptedSet:
    """In a trial: the rung set of ``corrupted``, the items the driver drew (or the same seeded draw)."""
    if ctx.rung_items:
        items = torch.tensor(ctx.rung_items, dtype=torch.long)
        return corrupted if len(items) >= len(corrupted) else RungSet(corrupted, items)
    return rung_set(corrupted, ctx.eval.rung_subset, ctx.eval.seed)
