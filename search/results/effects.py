"""The effect of each searched component on each metric: a mean difference between its levels, with
a bootstrap confidence interval, from a search's full-budget trials.

For a parameter ``p`` and a metric ``m``, every level of ``p`` is compared with a baseline level:

- a choice (mixer, TAP on/off, heads, a set of ADL weights): each tried value against the space's
  first choice (``mixer: {choice: [mlp, fan]}`` -> ``fan`` vs ``mlp``);
- an int or float range: each value against the lowest when at most :data:`MAX_LEVELS` values were
  tried, else the upper half of the tried values against the lower half (split at the median).

*Matched* where the space allows: trials that share every other searched value (the parameters
that only apply under ``p``, such as TAP's blocks under TAP, left aside) form a group; when at
least ``min_trials`` groups hold both levels, the effect is the mean over those groups of the
difference of their means, and the groups are resampled. Otherwise it is *unmatched*: the
difference of the two levels' means, each level resampled on its own. The interval is scipy's
percentile bootstrap (seeded; degenerate data give a zero-width interval rather than NaN).

Plain warnings say when an estimate cannot carry a conclusion: fewer than ``min_trials`` trials (or
matched groups) behind a level, or an interval that covers 0. Plain numpy and scipy: no Ray, MLflow.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from search.results.records import TrialRecord, is_finite_number

Objective = tuple[str, str]  # (metric, "max" | "min")
MAX_LEVELS = 5  # a numeric parameter with more tried values is split in halves
MIN_TRIALS = 3  # fewer trials (or matched groups) behind a level: too few to conclude
RESAMPLES = 2000
CONFIDENCE = 0.95
_ABSENT = "<n/a>"  # a parameter that does not apply to a trial (its record leaves it out)


@dataclass(frozen=True)
class Effect:
    """``level`` against ``baseline`` of one parameter on one metric (in the metric's units).

    Attributes:
        estimate: mean difference ``level - baseline`` (matched: the mean of the groups' differences).
        low, high: the bootstrap interval (None when a level has fewer than two values).
        n_level, n_baseline: trials behind each side (matched: those in the matched groups).
        pairs: the matched groups (0 when unmatched).
        warning: why the figure cannot carry a conclusion (None when it can).
    """

    param: str
    level: str
    baseline: str
    metric: str
    direction: str
    estimate: float
    low: float | None
    high: float | None
    n_level: int
    n_baseline: int
    matched: bool
    pairs: int = 0
    warning: str | None = None

    @property
    def conclusive(self) -> bool:
        return self.warning is None

    @property
    def verdict(self) -> str:
        """``better`` / ``worse`` (by the metric's direction) when conclusive, else ``unclear``."""
        if not self.conclusive:
            return "unclear"
        return "better" if (self.estimate > 0) == (self.direction == "max") else "worse"


@dataclass
class ParamEffects:
    """Every comparison of one parameter, with its levels' trial counts (note: why there is none)."""

    param: str
    baseline: str | None
    levels: dict[str, int] = field(default_factory=dict)  # level label -> trials (any metric)
    effects: list[Effect] = field(default_factory=list)
    note: str | None = None


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(_label(v) for v in value) + "]"
    return str(value)



def eligible(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The trials whose final results are comparable: finished with their full budget."""
    return [r for r in records if r.status == "finished" and r.full_budget]


def _levels(param: Any, rows: list[TrialRecord]) -> tuple[dict[str, str], list[str], str]:
    """(trial id -> level label, labels in order with the baseline first, how levels were made)."""
    values = {r.trial_id: r.params[param.name] for r in rows}
    numeric = param.kind in ("int", "float") and all(is_finite_number(v) for v in values.values())
    if not numeric:
        order = [_key(c) for c in getattr(param, "choices", ())]  # the space's order: baseline first
        seen = sorted({_key(v) for v in values.values()}, key=lambda k: (order.index(k) if k in order else len(order), k))
        labels = {_key(v): _label(v) for v in values.values()}
        return {t: labels[_key(v)] for t, v in values.items()}, [labels[k] for k in seen], "per level"
    distinct = sorted({float(v) for v in values.values()})
    if len(distinct) <= MAX_LEVELS:
        label = {v: _label(int(v) if param.kind == "int" else v) for v in distinct}
        return {t: label[float(v)] for t, v in values.items()}, [label[v] for v in distinct], "per level"
    median = statistics.median(distinct)
    low, high = f"lower half (< {median:g})", f"upper half (>= {median:g})"
    return {t: (high if float(v) >= median else low) for t, v in values.items()}, [low, high], "halves"


def _interval(samples: tuple[np.ndarray, ...], statistic: Any, resamples: int, seed: int) -> tuple[float, float] | None:
    """The percentile bootstrap interval of ``statistic`` over ``samples`` (None: a sample under 2)."""
    if any(len(s) < 2 for s in samples):
        return None
    if all(np.ptp(s) == 0 for s in samples):  # nothing varies: every resample gives the estimate
        value = float(statistic(*samples, axis=-1))
        return value, value
    result = stats.bootstrap(samples, statistic, n_resamples=resamples, confidence_level=CONFIDENCE,
                             method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def compare(
    level: Sequence[TrialRecord],
    baseline: Sequence[TrialRecord],
    metric: str,
    match_on: Sequence[str],
    *,
    min_trials: int = MIN_TRIALS,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, tuple[float, float] | None, int, int, bool, int]:
    """(estimate, interval, n_level, n_baseline, matched, pairs) of ``metric`` between two groups of
    trials, matched on the params ``match_on`` when at least ``min_trials`` groups allow it."""

    def group(rows: Sequence[TrialRecord]) -> dict[tuple, list[float]]:
        out: dict[tuple, list[float]] = {}
        for r in rows:
            out.setdefault(tuple(_key(r.params.get(k, _ABSENT)) for k in match_on), []).append(float(r.final[metric]))
        return out

    a, b = group(level), group(baseline)
    shared = sorted(set(a) & set(b))
    if len(shared) >= min_trials:
        diffs = np.array([statistics.fmean(a[k]) - statistics.fmean(b[k]) for k in shared])
        interval = _interval((diffs,), _mean, resamples, seed)
        return (float(diffs.mean()), interval, sum(len(a[k]) for k in shared), sum(len(b[k]) for k in shared),
                True, len(shared))
    xa = np.array([float(r.final[metric]) for r in level])
    xb = np.array([float(r.final[metric]) for r in baseline])
    interval = _interval((xa, xb), _mean_difference, resamples, seed)
    return float(xa.mean() - xb.mean()), interval, len(xa), len(xb), False, 0


def _warning(n_level: int, n_baseline: int, interval: tuple[float, float] | None, min_trials: int) -> str | None:
    # A matched estimate has at least min_trials groups, hence as many trials on each side.
    if min(n_level, n_baseline) < min_trials:
        return f"too few trials to conclude ({n_level} vs {n_baseline}; at least {min_trials} per level are needed)"
    if interval is None:
        return "too few trials for an interval"
    if interval[0] <= 0.0 <= interval[1]:
        return "the interval covers 0: no effect shown"
    return None


def component_effects(
    records: Sequence[TrialRecord],
    params: Sequence[Any],
    metrics: Sequence[Objective],
    *,
    min_trials: int = MIN_TRIALS,
    resamples: int = RESAMPLES,
    seed: int = 0,
    parents: dict[str, str] | None = None,
) -> list[ParamEffects]:
    """The effect of every searched parameter on every metric.

    Args:
        records: the search's trial records (only finished, full-budget trials count).
        params: the searched parameters (:class:`search.space.Param`: ``name``, ``kind``,
            ``choices``); their order is kept.
        metrics: ``(metric, direction)`` pairs; a trial without a finite value is left out of that metric.
        parents: param -> the param it only applies under (``{"tap_blocks": "tap"}``); such params
            are left out of the matching of their parent.
    """
    parents = parents or {}
    rows_all = eligible(records)
    names = [p.name for p in params]
    out: list[ParamEffects] = []
    for param in params:
        rows = [r for r in rows_all if param.name in r.params]
        if not rows:
            out.append(ParamEffects(param.name, None, note="no full-budget trial used it"))
            continue
        level_of, order, _ = _levels(param, rows)
        counts = {label: sum(v == label for v in level_of.values()) for label in order}
        result = ParamEffects(param.name, order[0], counts)
        out.append(result)
        if len(order) < 2:
            result.note = f"only one level was tried ({order[0]})"
            continue
        match_on = [n for n in names if n != param.name and parents.get(n) != param.name]
        for metric, direction in metrics:
            with_value = [r for r in rows if is_finite_number(r.final.get(metric))]
            base = [r for r in with_value if level_of[r.trial_id] == order[0]]
            for label in order[1:]:
                level = [r for r in with_value if level_of[r.trial_id] == label]
                if not level or not base:
                    continue
                estimate, interval, n_a, n_b, matched, pairs = compare(
                    level, base, metric, match_on, min_trials=min_trials, resamples=resamples, seed=seed)
                result.effects.append(Effect(
                    param.name, label, order[0], metric, direction, estimate,
                    interval[0] if interval else None, interval[1] if interval else None,
                    n_a, n_b, matched, pairs, _warning(n_a, n_b, interval, min_trials)))
    return out
