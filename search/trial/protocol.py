"""The keys of what a trial reports to the driver through ``ray.tune.report``.

A trial reports one result per epoch (:data:`EPOCH_KEYS`), then one final result holding the flat
robustness report, the training totals and ``judged = 1``; or, when it fails (NaN loss, an
exception in its own code), one result with ``trial_failed = 1`` and the reason under ``error``.
The driver's record writer, the searcher and the live view read these keys; nothing else does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ray.tune.result import AUTO_RESULT_KEYS

from search.trial.rungs import RUNG_TIME, rung_keys

EPOCH = "epoch"
FAILED = "trial_failed"
ERROR = "error"
JUDGED = "judged"
FULL_BUDGET = "full_budget"

# One entry of a TrialRecord's history (per epoch).
EPOCH_KEYS = (EPOCH, "train_loss", "train_accuracy", "clean_accuracy", "lr", "epoch_time_s")
# Ray's own bookkeeping keys, and ours, that are not metrics of the trial.
NOT_METRICS = frozenset({*AUTO_RESULT_KEYS, "done", "trial_id", "experiment_tag", FAILED, JUDGED, FULL_BUDGET, ERROR})


def metrics_of(result: dict[str, Any]) -> dict[str, float]:
    """The numeric metrics of a result (Ray's bookkeeping and our flags left out)."""
    return {
        k: float(v)
        for k, v in result.items()
        if k not in NOT_METRICS and isinstance(v, int | float) and not isinstance(v, bool)
    }


def epoch_entry(result: dict[str, Any]) -> dict[str, float]:
    """The history entry of an epoch result (with a rung's ``rung/<metric>`` values and judging time)."""
    keys = [*EPOCH_KEYS, *rung_keys(result), RUNG_TIME]
    return {k: float(result[k]) for k in keys if isinstance(result.get(k), int | float)}


def has_objectives(result: dict[str, Any] | None, metrics: list[str]) -> bool:
    """True when ``result`` holds a finite value for every objective."""
    if not result:
        return False
    values = [result.get(m) for m in metrics]
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


@dataclass(frozen=True)
class Outcome:
    """How a trial ended, decided once from its last result (:func:`outcome`).

    ``status``: ``"finished"`` (judged), ``"failed"`` (with ``reason``) or ``"stopped"`` (by a
    scheduler before its budget, at ``epoch``); ``full_budget``: it trained every epoch and was judged.
    """

    status: str
    reason: str | None = None
    epoch: int | None = None
    full_budget: bool = False


def outcome(result: dict[str, Any] | None) -> Outcome:
    """The outcome of a trial whose last result is ``result`` (the one rule the record writer, the
    searcher and the live view apply)."""
    result = result or {}
    epoch = result.get(EPOCH)
    epoch = int(epoch) if isinstance(epoch, int | float) and math.isfinite(epoch) else None
    if result.get(FAILED):
        return Outcome("failed", str(result.get(ERROR) or "failed"), epoch)
    if result.get(JUDGED):
        return Outcome("finished", None, epoch, bool(result.get(FULL_BUDGET)))
    return Outcome("stopped", None, epoch)
