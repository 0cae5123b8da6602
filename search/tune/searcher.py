"""Ray's ``OptunaSearch`` over a search space, made exact about failures, early stops and resumes.

Ray's ``OptunaSearch`` tells Optuna whatever the last result of a trial holds. This subclass:

- tells ``FAIL`` for a trial that reported ``trial_failed`` (NaN loss, an exception in its code) or
  that errored, and ``PRUNED`` for one stopped early by a scheduler (its stop epoch and rung values
  as user attrs :data:`STOP_EPOCH_ATTR`, :data:`RUNG_VALUES_ATTR`, even when its last result holds a
  value for every objective: a rung's values are not a final result) or without a finite value for
  every objective, instead of letting Optuna reject a partial or NaN result with a logged warning;
- skips a trial that Optuna already holds as finished (a resumed search can complete a trial
  twice when the driver died between Optuna's ``tell`` and Ray's next experiment snapshot);
- does not spend a trial on a configuration already tried: a suggestion equal to a finished trial
  is kept in the study as ``PRUNED`` with :data:`DUPLICATE_ATTR` (its twin's number) and
  :data:`REPEAT_VALUES_ATTR` (its twin's values), so that it never shows as a second "best" with
  the same values (Ray runs nothing twice), and the sampler is asked again, up to :data:`MAX_ASKS` times. Multivariate TPE repeats its best
  configuration often on small discrete spaces. Once every configuration of a finite space
  (``space_size``) has finished, the first suggestion is taken: asking again could only repeat one
  (each ask and tell is a round trip to the study's database);
- likewise never reruns a configuration that a scheduler stopped (its repeat is told ``PRUNED`` with
  the twin's stop epoch and rung values) nor one that failed deterministically: a trial that reported
  ``trial_failed`` (its model could not be built, its loss diverged: the same configuration and
  seed fail again) is told ``FAIL`` with the user attr :data:`FAILED_ATTR` (the reason), and a later
  suggestion equal to it is told ``FAIL`` too (with :data:`DUPLICATE_ATTR`, its twin's number) and
  asked again. A trial that errored in Ray (a lost node, a killed worker) gets no such attr: its
  configuration may be suggested and run again, as Ray's own retries run it again;
- on restore, fails the Optuna trials that were asked for but that the restored Ray experiment does
  not know (asked after Ray's last snapshot): they would otherwise stay ``RUNNING`` for ever;
- sets what ``before_tell`` returns as user attrs on a trial's Optuna trial just before telling it,
  the last moment Optuna takes them: the run's link to its MLflow run (:mod:`search.tune.study_links`),
  which the record listeners, on a thread of their own, may not have set yet. The hook belongs to
  this driver process: it is not pickled with the searcher's state and survives a restore.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from search.trial import protocol
from search.trial.rungs import rung_values

MAX_ASKS = 20
DUPLICATE_ATTR = "duplicate_of"
FAILED_ATTR = "failed_deterministically"  # the reason; a suggestion equal to such a trial is not run
STOP_EPOCH_ATTR = "stop_epoch"  # a trial stopped by the scheduler (PRUNED): the last epoch it trained
RUNG_VALUES_ATTR = "rung_values"  # ... and its objectives at the rung that stopped it (None: not a rung)
REPEAT_VALUES_ATTR = "repeat_of_values"  # a repeat of a finished trial (PRUNED): its twin's values
RAY_TRIAL_ATTR = "ray_trial_id"  # the Ray Tune trial an Optuna trial ran as (search.tune.study_links)


class SpaceSearch(OptunaSearch):
    """``OptunaSearch(space, metric=[...], mode=[...], sampler=..., study_name=..., storage=...)``,
    plus ``space_size``: the number of distinct configurations (None: continuous) and ``before_tell``:
    the user attrs to set on a Ray trial's Optuna trial before it is told (see the module docstring)."""

    def __init__(self, *args: Any, space_size: int | None = None,
                 before_tell: Callable[[str], dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._space_size = space_size
        self.before_tell = before_tell

    def __getstate__(self) -> dict[str, Any]:  # Tune's pickles of the searcher: without the process's hook
        return {key: value for key, value in self.__dict__.items() if key != "before_tell"}

    def save(self, checkpoint_path: str) -> None:  # OptunaSearch.save, through __getstate__
        with open(checkpoint_path, "wb") as out:
            pickle.dump(self.__getstate__(), out)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        for _ in range(MAX_ASKS - 1):
            ot_trial = self._ot_trials.get(trial_id)
            if ot_trial is None:
                break
            ended = self._ot_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL,
                                                                      TrialState.PRUNED))
            finished = [t for t in ended if _verdict(t)]
            twin = _twin(ot_trial, finished)
            if twin is None or self._exhausted(finished):
                break
            # Record the repeat in the study as its twin ended (values, or a failure), then ask again.
            ot_trial.set_user_attr(DUPLICATE_ATTR, twin.number)
            if twin.state == TrialState.FAIL:
                ot_trial.set_user_attr(FAILED_ATTR, twin.user_attrs[FAILED_ATTR])
                self._ot_study.tell(ot_trial, state=TrialState.FAIL)
            elif twin.state == TrialState.PRUNED:  # stopped at a rung: its repeat would train the same epochs
                for key in (STOP_EPOCH_ATTR, RUNG_VALUES_ATTR):
                    if key in twin.user_attrs:
                        ot_trial.set_user_attr(key, twin.user_attrs[key])
                self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
            else:
                # Kept with its twin's values as an attr, but PRUNED: told COMPLETE it would be a second
                # "best" with the very same values in study.best_trials and optuna-dashboard.
                ot_trial.set_user_attr(REPEAT_VALUES_ATTR, twin.values)
                self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
            del self._ot_trials[trial_id]
            config = super().suggest(trial_id)
        if config is not None and trial_id in self._ot_trials:  # the Optuna trial that Ray runs
            self._ot_trials[trial_id].set_user_attr(RAY_TRIAL_ATTR, trial_id)
        return config

    def _exhausted(self, finished: list[optuna.trial.FrozenTrial]) -> bool:
        """Every configuration of the (finite) space has finished (or failed deterministically)."""
        size = getattr(self, "_space_size", None)  # None also in a searcher pickled before it existed
        return size is not None and len({_key(t.params) for t in finished}) >= size

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or trial_id in self._completed_trials:
            return
        if self._already_finished(ot_trial.number):
            self._completed_trials.add(trial_id)
            return
        # First: the hook may wait, and a driver killed then must not leave half a verdict behind.
        self._set_before_tell_attrs(trial_id, ot_trial)
        if result and result.get(protocol.FAILED):  # our code failed: the configuration is not rerun
            ot_trial.set_user_attr(FAILED_ATTR, str(result.get(protocol.ERROR) or "failed"))
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        ended = protocol.outcome(result) if result else None
        if ended is not None and ended.status == "stopped":
            # Stopped by a scheduler: PRUNED, its rung values kept as attrs, never as final values
            # (they come from fewer epochs and the rung set; docs/spaces.md says what this does to TPE/NSGA-II).
            ot_trial.set_user_attr(STOP_EPOCH_ATTR, ended.epoch)
            values = rung_values(result, metrics)
            if values is not None:
                ot_trial.set_user_attr(RUNG_VALUES_ATTR, [v if math.isfinite(v) else None for v in values])
            result = None
        if ended is not None and ended.status == "failed":
            result, error = None, True
        elif not protocol.has_objectives(result, metrics):
            result = None  # Optuna: PRUNED (or FAIL when error)
        super().on_trial_complete(trial_id, result=result, error=error)

    def _set_before_tell_attrs(self, trial_id: str, ot_trial: optuna.Trial) -> None:
        hook = getattr(self, "before_tell", None)  # None also in a searcher pickled before it existed
        attrs = hook(trial_id) if hook is not None else {}
        if attrs:
            have = ot_trial.user_attrs
            for key, value in attrs.items():
                if have.get(key) != value:
                    ot_trial.set_user_attr(key, value)

    def restore(self, checkpoint_path: str) -> None:
        hook = getattr(self, "before_tell", None)
        super().restore(checkpoint_path)
        self.before_tell = hook
        known = {t.number for t in self._ot_trials.values()}
        for frozen in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.number not in known:
                self._ot_study.tell(frozen.number, state=TrialState.FAIL)

    def _already_finished(self, number: int) -> bool:
        trials = self._ot_study.get_trials(deepcopy=False)
        states = {t.number: t.state for t in trials}
        return states.get(number, TrialState.RUNNING).is_finished()

    @property
    def study(self) -> optuna.Study:
        """The Optuna study (for reading results after a search)."""
        return self._ot_study


def _verdict(trial: optuna.trial.FrozenTrial) -> bool:
    """The trial ended in a way its configuration would end again: finished, failed deterministically
    (``FAIL`` with :data:`FAILED_ATTR`) or stopped by the scheduler (``PRUNED`` with :data:`STOP_EPOCH_ATTR`).
    A ``FAIL`` without the reason is a trial lost to Ray or to a killed driver (told ``FAIL`` on
    restore, perhaps after its stop epoch was set): its configuration may run again."""
    if trial.state == TrialState.COMPLETE:
        return True
    if trial.state == TrialState.FAIL:
        return FAILED_ATTR in trial.user_attrs
    return trial.state == TrialState.PRUNED and STOP_EPOCH_ATTR in trial.user_attrs


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))  # Optuna's values here are primitives (lists go as JSON)


def _twin(ot_trial: optuna.Trial, finished: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial | None:
    """A finished trial with exactly the same parameters as ``ot_trial``, if any."""
    for frozen in finished:
        if frozen.number != ot_trial.number and frozen.params == ot_trial.params:
            return frozen
    return None
