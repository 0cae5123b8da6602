"""What ``search confirm`` found: the front's members retrained with new seeds, one JSON file per run
folder (``confirm/confirmation.json``), read by the study report (``search report``).

A member *survives* when the mean of its confirmed objective values is still non-dominated among the
means of every confirmed member: the front, recomputed on what the new seeds measured. A member whose
every seed failed has no mean and does not survive.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.results.json_files import json_safe, write_json
from search.results.pareto import non_dominated
from search.results.records import is_finite_number
from search.results.run_folder import confirmation_file

Objective = tuple[str, str]  # (metric, "max" | "min")


@dataclass(frozen=True)
class SeedResult:
    """One retraining of a member: its seed, the Ray trial that ran it and one value per objective
    (``None`` where the trial failed or gave no finite value)."""

    seed: int
    trial_id: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class ConfirmedMember:
    """One front member of the search and its retrainings.

    Attributes:
        trial_id: the search trial that put this configuration on the front.
        params: its flat trial spec (as its TrialRecord holds it), seed excluded.
        search_values: the objective values the search measured for it.
        runs: one :class:`SeedResult` per new seed.
    """

    trial_id: str
    params: dict[str, Any]
    search_values: tuple[float | None, ...]
    runs: tuple[SeedResult, ...]

    def values(self, objective: int) -> list[float]:
        """The finite values the new seeds gave for one objective (by its index)."""
        return [r.values[objective] for r in self.runs if is_finite_number(r.values[objective])]

    def mean(self, objective: int) -> float | None:
        values = self.values(objective)
        return statistics.fmean(values) if values else None

    def std(self, objective: int) -> float | None:
        """The sample standard deviation over the seeds (None with fewer than two values)."""
        values = self.values(objective)
        return statistics.stdev(values) if len(values) >= 2 else None


@dataclass(frozen=True)
class Confirmation:
    """Every confirmed member of one search, with the objectives they are judged on."""

    objectives: tuple[Objective, ...]
    seeds: tuple[int, ...]
    members: tuple[ConfirmedMember, ...]

    def means(self, member: ConfirmedMember) -> tuple[float | None, ...]:
        return tuple(member.mean(i) for i in range(len(self.objectives)))

    def survivors(self) -> list[str]:
        """Trial ids of the members whose mean is non-dominated among the members' means."""
        complete = [m for m in self.members if all(v is not None for v in self.means(m))]
        if not complete:
            return []
        front = non_dominated([self.means(m) for m in complete], [d for _, d in self.objectives])
        return [complete[i].trial_id for i in front]

    # ---- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        survivors = set(self.survivors())
        return json_safe({
            "objectives": [{"metric": m, "direction": d} for m, d in self.objectives],
            "seeds": list(self.seeds),
            "members": [
                {
                    "trial_id": m.trial_id,
                    "params": m.params,
                    "search_values": list(m.search_values),
                    "runs": [{"seed": r.seed, "trial_id": r.trial_id, "values": list(r.values)} for r in m.runs],
                    "mean": list(self.means(m)),
                    "std": [m.std(i) for i in range(len(self.objectives))],
                    "survives": m.trial_id in survivors,
                }
                for m in self.members
            ],
        })

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Confirmation:
        """The inverse of :meth:`to_dict` (``mean``, ``std`` and ``survives`` are recomputed)."""
        return cls(
            objectives=tuple((o["metric"], o["direction"]) for o in data["objectives"]),
            seeds=tuple(int(s) for s in data["seeds"]),
            members=tuple(
                ConfirmedMember(
                    trial_id=m["trial_id"],
                    params=dict(m["params"]),
                    search_values=tuple(m["search_values"]),
                    runs=tuple(SeedResult(int(r["seed"]), r["trial_id"], tuple(r["values"])) for r in m["runs"]),
                )
                for m in data["members"]
            ),
        )

    def save(self, run_folder: str | os.PathLike) -> Path:
        """Write ``<run_folder>/confirm/confirmation.json`` atomically and return its path."""
        return write_json(confirmation_file(run_folder), self.to_dict())


def read_confirmation(run_folder: str | os.PathLike) -> Confirmation | None:
    """The run folder's confirmation, or None when ``search confirm`` has not run there."""
    path = confirmation_file(run_folder)
    if not path.is_file():
        return None
    try:
        return Confirmation.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a confirmation file search confirm wrote ({err})") from None



def summarise(confirmation: Confirmation, objectives: Sequence[Objective] | None = None) -> list[dict[str, Any]]:
    """One row per member: trial id, survives, and per objective the search value, mean and std."""
    rows = []
    survivors = set(confirmation.survivors())
    for m in confirmation.members:
        row: dict[str, Any] = {"trial_id": m.trial_id, "survives": m.trial_id in survivors, "seeds": len(m.runs)}
        for i, (metric, _) in enumerate(objectives or confirmation.objectives):
            row[f"{metric} (search)"] = m.search_values[i]
            row[f"{metric} mean"] = m.mean(i)
            row[f"{metric} std"] = m.std(i)
        rows.append(row)
    return rows
