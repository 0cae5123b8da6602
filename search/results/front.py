"""The Pareto front of a search's trials, computed from their TrialRecords.

Only trials that ran their full budget and have a finite value for every objective are ranked
(a scheduler's early-stopped trial has partial metrics that would flatter it); the others are kept
as unranked points so that plots can still show them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from search.results.pareto import pareto_ranks
from search.results.records import TrialRecord, is_finite_number

Objective = tuple[str, str]  # (metric, "max" | "min")


@dataclass
class TrialPoint:
    """One trial in objective space: its values, its rank (``None`` when not ranked) and its params."""

    trial_id: str
    status: str
    full_budget: bool
    values: list[float | None]
    params: dict[str, Any] = field(default_factory=dict)
    rank: int | None = None

    @property
    def ranked(self) -> bool:
        return self.rank is not None

    @property
    def on_front(self) -> bool:
        return self.rank == 1


def metric_value(final: dict[str, Any], metric: str) -> float | None:
    """``final[metric]`` as a float, None when it is absent or not a finite number."""
    value = final.get(metric)
    return float(value) if is_finite_number(value) else None


def rankable(record: TrialRecord, objectives: Sequence[Objective]) -> bool:
    """True when the record enters the front: finished, full budget, a finite value per objective."""
    return (
        record.status == "finished"
        and bool(record.full_budget)
        and all(metric_value(record.final, metric) is not None for metric, _ in objectives)
    )


def rank_trials(records: Sequence[TrialRecord], objectives: Sequence[Objective]) -> list[TrialPoint]:
    """A point per record that has any objective value, ranked by non-dominated sorting when rankable."""
    points: list[TrialPoint] = []
    ranked: list[TrialPoint] = []
    for record in records:
        values = [metric_value(record.final, metric) for metric, _ in objectives]
        if all(v is None for v in values):
            continue  # nothing to place (failed, or still running)
        point = TrialPoint(record.trial_id, record.status, bool(record.full_budget), values, dict(record.params))
        points.append(point)
        if rankable(record, objectives):
            ranked.append(point)
    ranks = pareto_ranks([p.values for p in ranked], [d for _, d in objectives])
    for point, rank in zip(ranked, ranks, strict=True):
        point.rank = rank
    return points


def searched_params(points: Sequence[TrialPoint]) -> list[str]:
    """The params whose value differs between trials (the ones the search varied), sorted."""
    keys = sorted({k for p in points for k in p.params})
    return [k for k in keys if len({repr(p.params.get(k)) for p in points}) > 1]


def table_csv(points: Sequence[TrialPoint], objectives: Sequence[Objective]) -> str:
    """All placed trials as CSV: front first (by rank, then by the first objective), then the rest."""
    params = searched_params(points)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial_id", "pareto_rank", "on_front", "status", "full_budget", *[m for m, _ in objectives], *params])
    for p in sort_points(points, objectives):
        writer.writerow(
            [p.trial_id, p.rank if p.ranked else "", p.on_front, p.status, p.full_budget]
            + ["" if v is None else v for v in p.values]
            + [p.params.get(k, "") for k in params]
        )
    return out.getvalue()


def sort_points(points: Sequence[TrialPoint], objectives: Sequence[Objective]) -> list[TrialPoint]:
    """Ranked points by rank and best first objective, then the unranked ones by trial id."""
    sign = -1.0 if objectives and objectives[0][1] == "max" else 1.0

    def key(p: TrialPoint) -> tuple:
        first = p.values[0] if p.values and p.values[0] is not None else math.inf * sign
        return (0 if p.ranked else 1, p.rank or 0, sign * first, p.trial_id)

    return sorted(points, key=key)
