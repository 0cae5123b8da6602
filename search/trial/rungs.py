"""Judging at rungs: where the rungs of a multi-fidelity scheduler lie, the rung set, the rung keys.

A multi-objective scheduler (MO-ASHA, :mod:`search.tune.schedulers`) ranks the trials at a rung
over every objective, so a trial must be judged at each rung epoch, not only at its end. Judging on
the search's whole corrupted set at every rung would cost as much as the final judging each time;
the *rung set* is a fixed, seeded subset of that set's items instead: the same images for every
trial, each one at every corruption and severity of the set (so every corruption and severity is
represented), ``eval.rung_subset`` items large (:data:`DEFAULT_RUNG_SUBSET`).

A rung result is an epoch result that carries, besides the epoch's keys, the rung report's values
under :func:`rung_key` (``rung/mce``, ``rung/clean_accuracy``, ...) and the judging time under
:data:`RUNG_TIME`: the rung values never mix with the final, full-set values of the same names.

Plain torch and the evaluation package: the trial (which judges) and the driver's scheduler (which
reads the keys and the rung epochs) both import this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from evaluation.corrupted_set import CorruptedSet

RUNG_PREFIX = "rung/"
RUNG_TIME = "rung_time_s"  # seconds this rung's judging took (in the rung result)
RUNG_TOTAL_TIME = "rung_judge_time_s"  # seconds all rungs' judging took (in the final result)
DEFAULT_RUNG_SUBSET = 100  # items of the rung set (each at every corruption and severity)


def rung_key(metric: str) -> str:
    """The key of an objective's value at a rung (``mce`` -> ``rung/mce``)."""
    return RUNG_PREFIX + metric


def rung_values(result: Mapping[str, Any], metrics: Sequence[str]) -> list[float] | None:
    """The objectives' values of a rung result, in the order of ``metrics`` (NaN for a missing or
    non-numeric one); None when ``result`` is not a rung result (no rung key at all)."""
    if not any(isinstance(k, str) and k.startswith(RUNG_PREFIX) for k in result):
        return None
    values = []
    for m in metrics:
        v = result.get(rung_key(m))
        values.append(float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan)
    return values


def rung_epochs(grace_period: int, reduction_factor: float, epochs: int, bracket: int = 0) -> tuple[int, ...]:
    """The rung epochs of one bracket: ``ceil(grace_period * reduction_factor ** k)`` for k >= bracket,
    strictly before the last epoch (a trial that reaches its last epoch is judged, never cut after
    paying for all of its training). Bracket 0 holds every rung of the others."""
    if grace_period < 1 or reduction_factor <= 1 or epochs < 1 or bracket < 0:
        raise ValueError(f"rung_epochs needs grace_period >= 1, reduction_factor > 1, epochs >= 1, bracket >= 0; "
                         f"given {grace_period}, {reduction_factor}, {epochs}, {bracket}")
    out: list[int] = []
    k = bracket
    while True:
        # round first: 3 * 1.1 ** 2 is 3.6300000000000003, whose ceiling must stay 4, not become 5
        epoch = math.ceil(round(grace_period * reduction_factor ** k, 9))
        if epoch >= epochs:
            return tuple(out)
        if not out or epoch > out[-1]:
            out.append(epoch)
        k += 1


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
