"""MO-ASHA as a Ray Tune ``TrialScheduler``, with rungs that outlive a killed search.

:class:`MOASHAScheduler` hands every rung result (an epoch result carrying ``rung/<objective>``
values, :mod:`search.trial.rungs`) to :class:`~search.tune.schedulers.mo_asha.MOASHARule` and
answers ``CONTINUE`` or ``STOP``; every other result continues. It never pauses a trial.

An objective that every epoch reports (:data:`~search.space.schema.EPOCH_METRICS`: clean accuracy on
the whole clean test set, the training loss and accuracy) is ranked by the epoch's own value, the
others (mCE, ...) by the rung set's: the rung set's clean accuracy comes from its few clean images
(``eval.rung_subset``, 10 by default: steps of 10 points), and ASHA ranks on the epoch's value too.

Ray neither saves a scheduler's state with its experiment snapshots nor restores it, and a snapshot
is seconds old when a search is killed: trials that reported after it are resumed from older
checkpoints, and a state saved with the snapshot would forget their rung results (a trial stopped
after the snapshot would train on). So the rungs are written to the run folder (``rungs/mo_asha.json``,
atomically, on the driver) at every decision, and a resumed search starts from that file:

- a trial that re-reports a rung it was judged at gets its first decision again (none promoted twice);
- a trial stopped at a rung is stopped again before it trains (:meth:`choose_trial_to_run`), or at
  its first result if it already runs;
- rung results of trials the restored experiment does not know (started after Ray's last snapshot:
  Ray runs other trials in their place, and the runner drops their records) are forgotten, so that
  each trial of the budget counts once at a rung.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search.space.schema import EPOCH_METRICS
from search.trial import protocol
from search.trial.rungs import rung_values
from search.tune.schedulers.mo_asha import STOP, MOASHARule


class MOASHAScheduler(FIFOScheduler):
    """Ray Tune scheduler of MO-ASHA over ``metrics`` (the rule's directions, in that order).

    ``state_path``: where the rungs are kept (read when it exists; None: in memory only).
    """

    _supports_buffered_results = False  # every rung result is judged on its own

    def __init__(self, rule: MOASHARule, metrics: Sequence[str], state_path: str | os.PathLike | None = None) -> None:
        super().__init__()
        if len(metrics) != len(rule.directions):
            raise ValueError(f"one metric per direction needed; given {list(metrics)} for {list(rule.directions)}")
        self.rule = rule
        self.metrics = list(metrics)
        self.state_path = Path(state_path) if state_path is not None else None
        self.num_stopped = 0
        self._reconciled = False
        if self.state_path is not None and self.state_path.is_file():
            self.rule.load_state(json.loads(self.state_path.read_text()))

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # ranks on its own objectives; the searcher's metric/mode are not its business

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.rule.bracket_of(trial.trial_id)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        if not self._reconciled:  # the first call: every restored trial has been added
            self._reconciled = True
            trials = tune_controller.get_trials()
            if self.rule.forget([t.trial_id for t in trials]):
                self._save()
            for trial in trials:
                if trial.status == Trial.PENDING and self.rule.stopped(trial.trial_id):
                    tune_controller.stop_trial(trial)  # stopped at a rung before the kill: not again
        return super().choose_trial_to_run(tune_controller)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        values = self.rung_point(result)
        if values is None or not isinstance(result.get(protocol.EPOCH), int | float):
            return TrialScheduler.STOP if self.rule.stopped(trial.trial_id) else TrialScheduler.CONTINUE
        decision = self.rule.decide(trial.trial_id, int(result[protocol.EPOCH]), values)
        self._save()
        if decision == STOP:
            self.num_stopped += 1
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def rung_point(self, result: dict) -> list[float] | None:
        """The objectives of a rung result as the rule ranks them (None for another result): the
        epoch's own value of an epoch metric, else the rung set's ``rung/<metric>``."""
        values = rung_values(result, self.metrics)
        if values is None:
            return None
        for k, m in enumerate(self.metrics):
            v = result.get(m)
            if m in EPOCH_METRICS and isinstance(v, int | float) and not isinstance(v, bool):
                values[k] = float(v)
        return values

    def debug_string(self) -> str:
        return f"Using MO-ASHA: {self.num_stopped} stopped\n{self.rule.summary()}"

    def _save(self) -> None:
        """Write the rungs to ``state_path`` atomically (a reader never sees half a file)."""
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".rungs.", suffix=".json", dir=self.state_path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.rule.state(), fh, sort_keys=True)
            os.replace(tmp, self.state_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
