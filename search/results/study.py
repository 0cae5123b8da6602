"""Everything the study report shows about one search, computed from its run folder's files.

:func:`build_study` gathers it from the records, the space and what the tracker and ``search
confirm`` left (passed in: this module reads no MLflow and no tracker state itself), so that the
page (search.report) only draws and a test can check every figure against the records.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.results.confirmation import Confirmation
from search.results.effects import RESAMPLES, ParamEffects, component_effects, eligible
from search.results.front import Objective, TrialPoint, metric_value, rank_trials, rankable, sort_points
from search.results.pareto import default_reference, hypervolume, non_dominated
from search.results.records import TrialRecord, is_finite_number

# evaluation.report's flat keys and which way is better: stability is a clean-vs-corrupted cosine;
# head_diversity is the heads' mean pairwise cosine (lower = more diverse heads).
ATTENTION_METRICS = {"attention_stability": "max", "head_diversity": "min"}
_ERROR_KEY = re.compile(r"^error/(?P<corruption>[^/]+)/(?P<severity>\d+)$")  # error/<c>/<s>, in %


@dataclass(frozen=True)
class HypervolumeStep:
    """The front after the first ``step`` full-budget trials (``trial_id`` is the step's trial)."""

    step: int
    trial_id: str
    hypervolume: float
    front_size: int


@dataclass
class ErrorGrid:
    """The error (%) of each front member per corruption and severity (None: not judged there)."""

    members: list[str]
    corruptions: list[str]
    severities: list[int]
    errors: list[list[list[float | None]]]  # [member][corruption][severity]

    def columns(self) -> list[tuple[str, int]]:
        return [(c, s) for c in self.corruptions for s in self.severities]

    def flat(self) -> list[list[float | None]]:
        """[member][corruption x severity], in :meth:`columns` order."""
        return [[value for row in member for value in row] for member in self.errors]

    def by_corruption(self) -> list[list[float | None]]:
        """[member][corruption]: the mean error over the severities judged."""
        out = []
        for member in self.errors:
            means = []
            for row in member:
                values = [v for v in row if v is not None]
                means.append(sum(values) / len(values) if values else None)
            out.append(means)
        return out


@dataclass
class Study:
    """What the report says about one search (see :func:`build_study`)."""

    run_folder: Path
    space_name: str
    objectives: list[Objective]
    corruption_table: str
    counts: dict[str, int]  # status -> trials
    searched: list[str]
    points: list[TrialPoint]
    front: list[TrialPoint]  # best first objective first
    hypervolume: list[HypervolumeStep]
    hypervolume_source: str  # "tracker" | "recomputed"
    reference: list[float] | None
    effects: list[ParamEffects]
    errors: ErrorGrid
    attention: dict[str, dict[str, float]] = field(default_factory=dict)  # measured metric -> trial -> value
    confirmation: Confirmation | None = None

    @property
    def trials(self) -> int:
        return sum(self.counts.values())



def hypervolume_steps(
    records: Sequence[TrialRecord],
    objectives: Sequence[Objective],
    finish_order: Sequence[str] = (),
    history: Sequence[Sequence[float]] = (),
    reference: Sequence[float] | None = None,
) -> tuple[list[HypervolumeStep], str, list[float] | None]:
    """The hypervolume after each full-budget trial, in the order they finished.

    The tracker's history (``[hypervolume, front size]`` per step of ``finish_order``, against its
    fixed ``reference``) is used as it is when it covers every ranked trial; otherwise the steps are
    recomputed from the records (those the tracker never saw finish come last, by trial id).
    Returns (steps, "tracker" | "recomputed", reference).
    """
    by_id = {r.trial_id: r for r in records if rankable(r, objectives)}
    order = [t for t in dict.fromkeys(finish_order) if t in by_id]
    order += sorted(set(by_id) - set(order))
    if not order:
        return [], "recomputed", None
    if reference is not None and len(history) == len(order):
        steps = [HypervolumeStep(n + 1, t, float(h[0]), int(h[1])) for n, (t, h) in enumerate(zip(order, history, strict=True))]
        return steps, "tracker", list(reference)
    directions = [d for _, d in objectives]
    values = [[float(by_id[t].final[m]) for m, _ in objectives] for t in order]
    ref = list(reference) if reference is not None else default_reference(values, directions)
    steps = [
        HypervolumeStep(n, order[n - 1], hypervolume(values[:n], directions, ref), len(non_dominated(values[:n], directions)))
        for n in range(1, len(values) + 1)
    ]
    return steps, "recomputed", ref


def error_grid(members: Sequence[TrialRecord]) -> ErrorGrid:
    """The ``error/<corruption>/<severity>`` values of ``members`` (corruptions in judging order)."""
    corruptions: dict[str, None] = {}
    severities: set[int] = set()
    for record in members:
        for key in record.final:
            match = _ERROR_KEY.match(key)
            if match:
                corruptions.setdefault(match["corruption"])
                severities.add(int(match["severity"]))
    cs, ss = list(corruptions), sorted(severities)

    grid = [[[metric_value(r.final, f"error/{c}/{s}") for s in ss] for c in cs] for r in members]
    return ErrorGrid([r.trial_id for r in members], cs, ss, grid)


def build_study(
    run_folder: str | os.PathLike,
    space: Any,
    records: Sequence[TrialRecord],
    *,
    finish_order: Sequence[str] = (),
    history: Sequence[Sequence[float]] = (),
    reference: Sequence[float] | None = None,
    confirmation: Confirmation | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Study:
    """The study of one search.

    Args:
        space: the run folder's :class:`search.space.SearchSpace` (its name, objectives, searched
            params, corruption table).
        records: its trial records (:func:`search.results.records.load_records`).
        finish_order, history, reference: the tracker's memory (search.tracking.state), when any.
        confirmation: what ``search confirm`` found (:func:`search.results.confirmation.read_confirmation`).
    """
    from search.space import schema

    objectives = [(str(m), str(d)) for m, d in space.objectives]
    points = rank_trials(records, objectives)
    front = [p for p in sort_points(points, objectives) if p.on_front]
    steps, source, ref = hypervolume_steps(records, objectives, finish_order, history, reference)
    by_id = {r.trial_id: r for r in records}
    full = eligible(records)
    attention = {
        metric: {r.trial_id: float(r.final[metric]) for r in full if is_finite_number(r.final.get(metric))}
        for metric in ATTENTION_METRICS
    }
    attention = {m: v for m, v in attention.items() if v}
    metrics = objectives + [(m, ATTENTION_METRICS[m]) for m in attention if m not in dict(objectives)]
    parents = {p.name: schema.CONDITIONS[p.when][0] for p in space.params if p.when}
    counts = {s: sum(r.status == s for r in records) for s in ("finished", "stopped", "failed", "running")}
    return Study(
        run_folder=Path(run_folder),
        space_name=str(space.name),
        objectives=objectives,
        corruption_table=str(space.corruption_table),
        counts=counts,
        searched=[p.name for p in space.params],
        points=points,
        front=front,
        hypervolume=steps,
        hypervolume_source=source,
        reference=ref,
        effects=component_effects(records, space.params, metrics, resamples=resamples, seed=seed, parents=parents),
        errors=error_grid([by_id[p.trial_id] for p in front]),
        attention=attention,
        confirmation=confirmation,
    )
