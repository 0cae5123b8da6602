"""The end of a search in the terminal: the Pareto front of the records and the summary table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from search.results.front import Objective, rankable  # the one rule for who enters the front
from search.results.pareto import non_dominated
from search.results.records import TrialRecord


def pareto_front(records: list[TrialRecord], objectives: Sequence[Objective]) -> list[TrialRecord]:
    """The records on the front among finished, full-budget trials with every objective."""
    metrics = [m for m, _ in objectives]
    eligible = [r for r in records if rankable(r, objectives)]
    if not eligible:
        return []
    points = [[r.final[m] for m in metrics] for r in eligible]
    front = [eligible[i] for i in non_dominated(points, [d for _, d in objectives])]
    first, direction = objectives[0]
    return sorted(front, key=lambda r: r.final[first], reverse=direction == "max")


def print_front(front: list[TrialRecord], objectives: Sequence[Objective], params: Sequence[str],
                records: list[TrialRecord], out: TextIO) -> None:
    """The end-of-search summary: trials by outcome, then the front as a table of trial, model,
    objectives and the searched parameters ``params``."""
    counts = {s: sum(r.status == s for r in records) for s in ("finished", "failed", "stopped", "running")}
    print(f"\ntrials: {counts['finished']} finished, {counts['failed']} failed, {counts['stopped']} stopped early, "
          f"{counts['running']} unfinished", file=out)
    for r in records:
        if r.status == "failed":
            print(f"  failed {r.trial_id}: {r.error}", file=out)
    if not front:
        print("Pareto front: empty (no trial finished its full budget)", file=out, flush=True)
        return
    metrics = [f"{m} ({d})" for m, d in objectives]
    params = [p for p in params if p != "model_name"]
    header = ["trial", "model", *metrics, *params]
    rows = [
        [r.trial_id, _cell(r.params.get("model_name")), *(f"{r.final[m]:.4g}" for m, _ in objectives),
         *(_cell(r.params.get(p)) for p in params)]
        for r in front
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    print(f"Pareto front ({len(front)} of {len(records)} trials):", file=out)
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  " + "  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip(), file=out)
    out.flush()


def _cell(value: Any) -> str:
    if value is None:
        return "-"  # does not apply to this trial's model
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)
