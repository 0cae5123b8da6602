"""MO-ASHA as a Ray Tune ``TrialScheduler``, and the callback that keeps its rungs across a resume.

:class:`MOASHAScheduler` hands every rung result (an epoch result carrying ``rung/<objective>``
values, :mod:`search.trial.rungs`) to :class:`~search.tune.schedulers.mo_asha.MOASHARule` and
answers ``CONTINUE`` or ``STOP``; every other result continues. It never pauses a trial.

Ray saves neither a scheduler's state with its experiment snapshots nor restores it
(``TuneController.save_to_dir`` saves the trials, the searcher and the callbacks). The rung state
therefore travels as the state of a callback, :class:`RungState`, saved in the very snapshot that
holds the trials and the searcher: a resumed search continues with the rungs as they were when the
trials it resumes were saved (no rung forgotten; a trial that re-reports a rung it was judged at
gets its first decision again, so none is promoted twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray.tune import Callback
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search.trial import protocol
from search.trial.rungs import rung_values
from search.tune.schedulers.mo_asha import STOP, MOASHARule


class MOASHAScheduler(FIFOScheduler):
    """Ray Tune scheduler of MO-ASHA over ``metrics`` (the rule's directions, in that order)."""

    _supports_buffered_results = False  # every rung result is judged on its own

    def __init__(self, rule: MOASHARule, metrics: Sequence[str]) -> None:
        super().__init__()
        if len(metrics) != len(rule.directions):
            raise ValueError(f"one metric per direction needed; given {list(metrics)} for {list(rule.directions)}")
        self.rule = rule
        self.metrics = list(metrics)
        self.num_stopped = 0

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # ranks on its own objectives; the searcher's metric/mode are not its business

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.rule.bracket_of(trial.trial_id)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        values = rung_values(result, self.metrics)
        if values is None or not isinstance(result.get(protocol.EPOCH), int | float):
            return TrialScheduler.CONTINUE
        if self.rule.decide(trial.trial_id, int(result[protocol.EPOCH]), values) == STOP:
            self.num_stopped += 1
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return f"Using MO-ASHA: {self.num_stopped} stopped\n{self.rule.summary()}"


class RungState(Callback):
    """Carries a :class:`MOASHAScheduler`'s rungs in Ray's experiment snapshots (see the module)."""

    def __init__(self, scheduler: MOASHAScheduler) -> None:
        self.scheduler = scheduler

    def get_state(self) -> dict | None:
        return {"mo_asha": self.scheduler.rule.state()}

    def set_state(self, state: dict) -> None:
        if "mo_asha" in state:
            self.scheduler.rule.load_state(state["mo_asha"])
