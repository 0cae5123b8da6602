"""The Ray Tune callback that keeps ``<run folder>/trials/<trial_id>.json`` up to date.

Records are written on the driver from what trials report, so they land in the run folder even
when trials run on other nodes that cannot write to it. Each event rewrites one small JSON file
atomically. A resumed trial re-reports epochs and its final result: a history entry of the same
epoch replaces the old one, so nothing is counted twice.
"""

from __future__ import annotations

import os
from typing import Any

from ray.tune import Callback

from search.results.records import TrialRecord, load_record
from search.trial import protocol
from search.trial.spec import TrialConfig


class RecordWriter(Callback):
    """Writes one :class:`TrialRecord` per trial as the trial starts, reports and ends."""

    def __init__(self, run_folder: str | os.PathLike) -> None:
        self.run_folder = str(run_folder)

    # ---- helpers --------------------------------------------------------------------------------
    def _record(self, trial: Any) -> TrialRecord:
        record = load_record(self.run_folder, trial.trial_id)
        if record is None:
            try:
                params = TrialConfig.from_flat_dict(dict(trial.config)).to_flat_dict()
            except (TypeError, ValueError):
                params = dict(trial.config)
            record = TrialRecord(trial.trial_id, params=params)
        return record

    # ---- Ray Tune events --------------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._record(trial)
        if record.status != "finished":
            record.status, record.error = "running", None
        record.save(self.run_folder)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get(protocol.FAILED):
            return  # written when the trial completes
        record = self._record(trial)
        if result.get(protocol.JUDGED):
            record.final = protocol.metrics_of(result)
            record.full_budget = bool(result.get(protocol.FULL_BUDGET))
        else:
            entry = protocol.epoch_entry(result)
            record.history = [h for h in record.history if h.get(protocol.EPOCH) != entry.get(protocol.EPOCH)]
            record.history.append(entry)
            record.history.sort(key=lambda h: h.get(protocol.EPOCH, 0.0))
        record.save(self.run_folder)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._record(trial)
        result = trial.last_result or {}
        if result.get(protocol.FAILED):
            record.status, record.error = "failed", str(result.get(protocol.ERROR, "failed"))
        elif result.get(protocol.JUDGED):
            record.status, record.error = "finished", None
            record.final = protocol.metrics_of(result)
            record.full_budget = bool(result.get(protocol.FULL_BUDGET))
        else:
            record.status = "stopped"  # ended by the scheduler before its budget
            record.full_budget = False
        record.save(self.run_folder)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._record(trial)
        record.status = "failed"
        record.error = _last_line(trial.get_error()) or "the trial's worker failed"
        record.save(self.run_folder)


def _last_line(trace: Any) -> str | None:
    """The last non-empty line of a traceback text (the exception and its message)."""
    if not trace:
        return None
    lines = [line.strip() for line in str(trace).splitlines() if line.strip()]
    return lines[-1] if lines else None
