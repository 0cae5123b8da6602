"""The Ray Tune callback that keeps ``<run folder>/trials/<trial_id>.json`` up to date.

Records are written on the driver from what trials report, so they land in the run folder even
when trials run on other nodes that cannot write to it. Each event rewrites one small JSON file
atomically. A resumed trial re-reports epochs and its final result: a history entry of the same
epoch replaces the old one, so nothing is counted twice.

A trial's outcome (finished, failed with its reason, stopped at an epoch) is decided here once, by
:func:`search.trial.protocol.outcome`, and written into its record. Listeners (the MLflow tracker)
get the record object right after it is written: they never depend on the order of Ray's callbacks
nor read the file back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

from ray.tune import Callback

from search.results.records import TrialRecord, load_record
from search.trial import protocol
from search.trial.spec import TrialSpec


class RecordListener(Protocol):
    """What a listener of :class:`RecordWriter` offers (:class:`search.tracking.SearchTracker` does)."""

    def start(self) -> Any: ...

    def log_record(self, record: TrialRecord, ray_error: str | None = None) -> None: ...


class RecordWriter(Callback):
    """Writes one :class:`TrialRecord` per trial as the trial starts, reports and ends, and hands each
    written record to its ``listeners``."""

    def __init__(self, run_folder: str | os.PathLike, listeners: Sequence[RecordListener] = ()) -> None:
        self.run_folder = str(run_folder)
        self.listeners = list(listeners)
        self._records: dict[str, TrialRecord] = {}

    # ---- helpers --------------------------------------------------------------------------------
    def _record(self, trial: Any) -> TrialRecord:
        record = self._records.get(trial.trial_id) or load_record(self.run_folder, trial.trial_id)
        if record is None:
            try:
                params = TrialSpec.from_flat_dict(dict(trial.config)).to_flat_dict()
            except (TypeError, ValueError):
                params = dict(trial.config)
            record = TrialRecord(trial.trial_id, params=params)
        return record

    def _write(self, record: TrialRecord, ray_error: str | None = None) -> None:
        record.save(self.run_folder)
        self._records[record.trial_id] = record
        for listener in self.listeners:
            listener.log_record(record, ray_error)

    # ---- Ray Tune events --------------------------------------------------------------------------
    def setup(self, **info: Any) -> None:
        for listener in self.listeners:
            listener.start()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._record(trial)
        if record.status != "finished":
            record.status, record.error, record.stop_epoch = "running", None, None
        self._write(record)

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
        self._write(record)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._record(trial)
        result = trial.last_result or {}
        ended = protocol.outcome(result)
        if ended.status == "stopped" and record.status == "stopped" and (record.stop_epoch or 0) >= (ended.epoch or 0):
            # Stopped again on resume from Ray's older snapshot (its last result predates the stop): as recorded.
            self._write(record)
            return
        record.status, record.error, record.full_budget = ended.status, ended.reason, ended.full_budget
        record.stop_epoch = ended.epoch if ended.status == "stopped" else None
        if ended.status == "finished":
            record.final = protocol.metrics_of(result)
        self._write(record)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._record(trial)
        record.status = "failed"
        record.error = _last_line(trial.get_error()) or "the trial's worker failed"
        self._write(record, ray_error=record.error)


def _last_line(trace: Any) -> str | None:
    """The last non-empty line of a traceback text (the exception and its message)."""
    if not trace:
        return None
    lines = [line.strip() for line in str(trace).splitlines() if line.strip()]
    return lines[-1] if lines else None
