"""Each Optuna trial names the Ray trial it ran as and that trial's MLflow run (user attributes).

:class:`search.tune.searcher.SpaceSearch` sets ``ray_trial_id`` when Ray takes a suggestion;
:class:`StudyLinks`, a listener of the record writer after the tracker, sets ``mlflow_run_id`` once
the trial's MLflow run exists. optuna-dashboard then shows both on the trial's page, and
``optuna.load_study(...).trials[n].user_attrs`` leads from a study's trial to its run.

The listeners run on their own thread (:mod:`search.tune.listener_thread`), which can be behind a
trial that lasts a second: the trial may end, and Optuna refuse its attributes, before the links
set one. :class:`LinkBeforeTell`, the searcher's ``before_tell``, closes that gap on Tune's thread:
it waits (briefly, and only then) until the trial's first record has reached the listeners, and
hands the searcher the link to set before it tells Optuna.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from search.results.records import TrialRecord
from search.results.run_folder import study_uri
from search.tune.listener_thread import ListenerThread
from search.tune.searcher import RAY_TRIAL_ATTR

MLFLOW_RUN_ATTR = "mlflow_run_id"
LINK_WAIT_S = 10.0  # at most, for a trial whose first record the listener thread has not handed over
log = logging.getLogger("search.tune")


class StudyLinks:
    """Set :data:`MLFLOW_RUN_ATTR` on the Optuna trial of each record's Ray trial, once.

    Args:
        run_folder: the search's run folder (its ``optuna.db``).
        study_name: the study (the space's name).
        run_id_of: the MLflow run id of a Ray trial id, None while it has none (the tracker's
            :meth:`~search.tracking.SearchTracker.run_id_of`).
    """

    def __init__(self, run_folder: str | os.PathLike, study_name: str, run_id_of: Callable[[str], str | None]) -> None:
        self.run_folder, self.study_name, self.run_id_of = str(run_folder), study_name, run_id_of
        self._linked: set[str] = set()
        self._study: Any = None

    def __getstate__(self) -> dict[str, Any]:  # Ray may pickle the record writer: no open study
        return {**self.__dict__, "_study": None}

    def start(self) -> None:
        return None

    def log_record(self, record: TrialRecord, ray_error: str | None = None) -> None:
        if record.trial_id in self._linked:
            return
        run_id = self.run_id_of(record.trial_id)
        if run_id is None:
            return  # MLflow is away or has not created the run yet: the next record tries again
        try:
            self._link(record.trial_id, run_id)
        except Exception as err:  # noqa: BLE001  a busy study file: the next record of the trial tries again
            log.debug("linking trial %s to its MLflow run failed: %s", record.trial_id, err)

    def _link(self, trial_id: str, run_id: str) -> None:
        import optuna

        if self._study is None:
            self._study = optuna.load_study(study_name=self.study_name, storage=study_uri(self.run_folder))
        for trial in self._study.get_trials(deepcopy=False):
            if trial.user_attrs.get(RAY_TRIAL_ATTR) == trial_id:
                if trial.user_attrs.get(MLFLOW_RUN_ATTR) != run_id:
                    self._study._storage.set_trial_user_attr(trial._trial_id, MLFLOW_RUN_ATTR, run_id)
                self._linked.add(trial_id)
                return


class LinkBeforeTell:
    """``SpaceSearch(before_tell=LinkBeforeTell(listening))``: a trial's MLflow run link, for the
    searcher to set before it tells Optuna (see the module docstring); ``{}`` when MLflow has no run
    of the trial (away, or not yet after ``wait_s``)."""

    def __init__(self, listening: ListenerThread, wait_s: float = LINK_WAIT_S) -> None:
        self.listening, self.wait_s = listening, wait_s

    def __call__(self, trial_id: str) -> dict[str, str]:
        if not self.listening.wait_handed(trial_id, self.wait_s):
            return {}
        links = next((x for x in self.listening.listeners if isinstance(x, StudyLinks)), None)
        run_id = links.run_id_of(trial_id) if links is not None else None
        return {MLFLOW_RUN_ATTR: run_id} if run_id else {}
