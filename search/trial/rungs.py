"""Judging at rungs: where the rungs of a multi-fidelity scheduler lie, the rung set, the rung keys.

A multi-objective scheduler (MO-ASHA, :mod:`search.tune.schedulers`) ranks the trials at a rung
over every objective, so a trial must be judged at each rung epoch, not only at its end. Judging on
the search's whole corrupted set at every rung would cost as much as the final judging each time;
the *rung set* is a fixed, seeded subset of that set's items instead: the same images for every
trial, each one at every corruption and severity of the set (so every corruption and severity is
represented), ``eval.rung_subset`` items large.

A rung result is an epoch result that carries, besides the epoch's keys, the rung report's values
under :func:`rung_key` (``rung/mce``, ``rung/clean_accuracy``, ...) and the judging time under
:data:`RUNG_TIME`: the rung values never mix with the final, full-set values of the same names.

Plain Python (the space loader, the trial and the driver's scheduler import it); the rung set
itself, torch and the evaluation package, is :mod:`search.trial.rung_set`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

RUNG_PREFIX = "rung/"
RUNG_TIME = "rung_time_s"  # seconds this rung's judging took (in the rung result)
RUNG_TOTAL_TIME = "rung_judge_time_s"  # seconds all rungs' judging took (in the final result)


def rung_key(metric: str) -> str:
    """The key of an objective's value at a rung (``mce`` -> ``rung/mce``)."""
    return RUNG_PREFIX + metric


def rung_keys(result: Mapping[str, Any]) -> list[str]:
    """The ``rung/<metric>`` keys of a result (none unless it is a rung result)."""
    return [k for k in result if isinstance(k, str) and k.startswith(RUNG_PREFIX)]


def rung_values(result: Mapping[str, Any], metrics: Sequence[str]) -> list[float] | None:
    """The objectives' values of a rung result, in the order of ``metrics`` (NaN for a missing or
    non-numeric one); None when ``result`` is not a rung result (no rung key at all)."""
    if not rung_keys(result):
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


def scheduler_rung_epochs(space: Any) -> tuple[int, ...]:
    """The rung epochs of the scheduler of ``space`` (bracket 0's, which hold every other bracket's);
    none without a scheduler."""
    spec = space.search.scheduler
    if spec is None:
        return ()
    return rung_epochs(spec.grace_period, spec.reduction_factor, space.train.epochs)


def trial_rung_epochs(space: Any) -> tuple[int, ...]:
    """The epochs at which a trial of ``space`` is judged on the rung set: the rungs of an MO-ASHA
    scheduler; none for ``asha`` (it ranks on an epoch metric) or without a scheduler."""
    from search.space.schema import MULTI_OBJECTIVE_STOPPERS

    spec = space.search.scheduler
    return scheduler_rung_epochs(space) if spec is not None and spec.type in MULTI_OBJECTIVE_STOPPERS else ()


def rung_result(report: Mapping[str, float], training: Mapping[str, float], seconds: float) -> dict[str, float]:
    """The keys a rung adds to its epoch's result: the rung report's flat metrics and the training
    metrics so far (``params_m``, ``train_time_s``, ...: objectives too), each under :func:`rung_key`,
    and the judging time under :data:`RUNG_TIME`."""
    from search.space.schema import TRAINING_METRICS

    out = {rung_key(k): float(v) for k, v in training.items() if k in TRAINING_METRICS}
    out.update({rung_key(k): float(v) for k, v in report.items()})
    out[RUNG_TIME] = float(seconds)
    return out
