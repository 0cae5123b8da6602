"""Does the rung tell the truth? Spearman's rank correlation of each rung's objectives with the final ones.

Early stopping is only worth its savings if the ranking of trials at a rung predicts their final
ranking. For every rung epoch and every objective this module correlates, over the trials that ran
to the end (finished, full budget, every objective), the value the trial had at that rung with its
final value: the value the scheduler ranked by, that is the epoch's own value of a metric every
epoch reports (``clean_accuracy`` on the whole test set, ``train_loss``: what ASHA and MO-ASHA rank
on), else the rung set's (``rung/<metric>``, mCE).
A correlation near 1 says the rung ranked the trials as the end did; near 0 or below, stopping at
that rung was a lottery. Fewer than 3 trials, or a constant column, give no correlation (None).

Plain Python over TrialRecords (no Ray, no MLflow): the end-of-search summary, the MLflow parent
run and ``search pareto`` all show the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from search.results.front import Objective, rankable
from search.results.records import TrialRecord, is_finite_number
from search.space.schema import EPOCH_METRICS
from search.trial.rungs import rung_key

MIN_TRIALS = 3


@dataclass(frozen=True)
class RungCorrelation:
    """Spearman's rho between an objective at rung ``epoch`` and at the end, over ``trials`` trials."""

    epoch: int
    metric: str
    rho: float | None
    trials: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (SciPy's, ties sharing their mean rank); None for fewer than
    :data:`MIN_TRIALS` pairs or a constant side."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs two sequences of one length; given {len(x)} and {len(y)}")
    if len(x) < MIN_TRIALS or len(set(x)) == 1 or len(set(y)) == 1:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def _at(entry: dict[str, float], metric: str) -> float | None:
    """The value a scheduler ranked ``metric`` by at this epoch: the epoch's own value of a metric
    every epoch reports (clean accuracy on the whole test set, as ASHA and MO-ASHA rank it), else the
    rung set's ``rung/<metric>``."""
    keys = (metric, rung_key(metric)) if metric in EPOCH_METRICS else (rung_key(metric), metric)
    value = next((entry[k] for k in keys if k in entry), None)
    return float(value) if is_finite_number(value) else None


def rung_correlations(records: Sequence[TrialRecord], objectives: Sequence[Objective],
                      epochs: Sequence[int]) -> list[RungCorrelation]:
    """One :class:`RungCorrelation` per rung epoch (``epochs``) and objective, epoch by epoch."""
    finished = [r for r in records if rankable(r, objectives)]
    out = []
    for epoch in sorted(set(epochs)):
        entries = {r.trial_id: next((h for h in r.history if h.get("epoch") == epoch), None) for r in finished}
        for metric, _ in objectives:
            pairs = [(_at(entries[r.trial_id], metric), r.final[metric]) for r in finished if entries[r.trial_id]]
            pairs = [(a, b) for a, b in pairs if a is not None]
            rho = spearman([a for a, _ in pairs], [b for _, b in pairs])
            out.append(RungCorrelation(epoch, metric, rho, len(pairs)))
    return out


def print_rung_truth(correlations: Sequence[RungCorrelation], records: Sequence[TrialRecord], out: TextIO) -> None:
    """The summary's lines: the trials stopped early and, per rung, each objective's rho."""
    if not correlations:
        return
    stopped = sorted(r.stop_epoch for r in records if r.status == "stopped" and r.stop_epoch is not None)
    at = ", ".join(f"{stopped.count(e)} at epoch {e}" for e in sorted(set(stopped)))
    print(f"stopped early: {len(stopped)} trial(s){f' ({at})' if at else ''}", file=out)
    print("rung vs final rank correlation (Spearman, over the trials that ran to the end):", file=out)
    for epoch in sorted({c.epoch for c in correlations}):
        cells = [f"{c.metric} {'n/a' if c.rho is None else f'{c.rho:+.2f}'}"
                 for c in correlations if c.epoch == epoch]
        n = max(c.trials for c in correlations if c.epoch == epoch)
        print(f"  epoch {epoch}: " + ", ".join(cells) + f" ({n} trials)", file=out)
    out.flush()
