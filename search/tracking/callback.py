"""The Ray Tune callback that logs a search to MLflow while it runs.

Ray calls it in the driver process. Each event makes the tracker copy the trial's record from the
run folder into its child run (the trial writes the record before it reports, so the record is the
whole truth; Ray's own result dict is not needed). The tracker never raises: a tracking server that
goes away costs a warning, not the search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.tune import Callback

if TYPE_CHECKING:
    from search.tracking.tracker import SearchTracker


class TrackingCallback(Callback):
    """Forwards Ray Tune's trial events to a :class:`SearchTracker` (see ``SearchTracker.tune_callback``)."""

    def __init__(self, tracker: SearchTracker) -> None:
        self.tracker = tracker

    def setup(self, **info: Any) -> None:
        self.tracker.start()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.tracker.log_trial(trial.trial_id)  # the child run appears (with its params) at once

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.tracker.log_trial(trial.trial_id)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.tracker.log_trial(trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # The trial's own code records its failures; this covers what Ray ended from outside
        # (a lost node after the last retry, an error while starting the actor).
        reason = getattr(trial, "error_msg", None) or "the trial ended with an error in Ray (see Ray's error file)"
        self.tracker.log_trial(trial.trial_id, ray_error=str(reason))
