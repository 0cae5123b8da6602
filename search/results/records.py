"""One JSON file per trial in ``<run folder>/trials/<trial_id>.json``: what a trial was and what it gave.

A :class:`TrialRecord` is written by the trial itself as it progresses (``running`` after each epoch,
then ``finished`` / ``failed``), and by the runner when Ray ends a trial that could not write it
(``stopped`` by a scheduler, or errored outside the trial's own code). The records are the search's
results independent of Ray and MLflow: the Pareto front, ``search sync`` and the resume logic read
them. Writes are atomic (temporary file + rename) so a reader never sees half a record, even when the
driver or a node is killed mid-write.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search.results.json_files import json_safe, write_json
from search.results.run_folder import trials_dir

TRIAL_STATUSES = ("running", "finished", "failed", "stopped")


@dataclass
class TrialRecord:
    """What one trial was (its flat :class:`search.trial.spec.TrialSpec`) and what it gave.

    Attributes:
        trial_id: Ray Tune's trial id (stable across a resume).
        status: ``"running"`` | ``"finished"`` | ``"failed"`` | ``"stopped"``.
        params: the flat trial spec (``TrialSpec.to_flat_dict()``): only what applies to its model.
        history: one dict of metrics per finished epoch (``epoch``, ``train_loss``, ...).
        final: the flat robustness report (``RobustnessReport.to_flat_dict()``) plus training
            metrics, empty until the trial has been judged.
        error: the reason of a failure (``None`` unless ``status == "failed"``).
        full_budget: True when the trial trained every epoch of its budget and was judged; only
            such trials enter the Pareto front.
        stop_epoch: the last epoch a trial ``stopped`` by a scheduler trained (None otherwise).
    """

    trial_id: str
    status: str = "running"
    params: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    full_budget: bool = False
    stop_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.status not in TRIAL_STATUSES:
            raise ValueError(f"TrialRecord.status must be one of {TRIAL_STATUSES}, got {self.status!r}")

    # ---- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite floats become ``None``: JSON has no NaN)."""
        return json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        """The inverse of :meth:`to_dict`; unknown keys are rejected so a typo is never silent."""
        known = {"trial_id", "status", "params", "history", "final", "error", "full_budget", "stop_epoch"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrialRecord keys {unknown}; valid keys are {sorted(known)}")
        return cls(**data)

    def save(self, run_folder: str | os.PathLike) -> Path:
        """Write ``<run_folder>/trials/<trial_id>.json`` atomically and return its path."""
        return write_json(record_path(run_folder, self.trial_id), self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrialRecord:
        """Read one record file."""
        with open(path) as fh:
            return cls.from_dict(json.load(fh))


def record_path(run_folder: str | os.PathLike, trial_id: str) -> Path:
    """Where the record of ``trial_id`` lives in ``run_folder``."""
    return trials_dir(run_folder) / f"{trial_id}.json"


def load_record(run_folder: str | os.PathLike, trial_id: str) -> TrialRecord | None:
    """The record of one trial, or ``None`` when it has none yet."""
    path = record_path(run_folder, trial_id)
    return TrialRecord.load(path) if path.exists() else None


def load_records(run_folder: str | os.PathLike) -> list[TrialRecord]:
    """Every trial record of a run folder, sorted by trial id (empty when there is none)."""
    folder = trials_dir(run_folder)
    if not folder.is_dir():
        return []
    return [TrialRecord.load(p) for p in sorted(folder.glob("*.json")) if not p.name.startswith(".")]


def is_finite_number(value: Any) -> bool:
    """True for a real, finite metric value (an int or float, not a bool, not NaN or inf)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
