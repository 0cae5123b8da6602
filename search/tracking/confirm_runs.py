"""``search confirm`` in MLflow: one child run of the search's parent run per retraining, and the
confirmed means on the parent.

- Each confirmation trial (a front member retrained with one new seed) is a run nested under the
  search's parent run (found by the ``search_id`` the run folder's tracking state keeps), named
  ``confirm <the member's run name> seed <seed>`` and tagged ``search.role = confirm``,
  ``confirm_of = <the member's trial id>``, ``confirm_seed = <seed>`` and ``confirm_trial_id = <its
  Ray trial id>``. It has no ``trial_id`` tag, so the search's own tracker and ``search pareto`` never
  take it for a trial of the search. Its params, curves and final report are logged as a trial's are.
- The parent gets, per confirmed member and objective, ``confirm/<trial id>/<metric>_mean`` and
  ``..._std``, ``confirm/<trial id>/survives`` (1 or 0) and ``confirm/<trial id>/seeds`` (step: the
  member's number of confirmed seeds), the tag ``confirm_survivors`` and the artifact
  ``confirm/confirmation.json``.

Everything is idempotent (runs found by their tags, metrics with deterministic timestamps), so a
re-run of ``search confirm`` logs only what is missing. While trials run, a tracking store that goes
away is warned about once and skipped; the records stay in the run folder and the next
``search confirm`` logs them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Run, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from search.errors import UserError
from search.results.confirmation import Confirmation
from search.results.records import TrialRecord
from search.tracking import runs
from search.tracking.names import mlflow_key, tag_value
from search.tracking.state import TrackingState
from search.tracking.store import check_reachable, make_client, quick_http, resolve_tracking_uri, short_reason

log = logging.getLogger("search.tracking")

CONFIRM_ROLE = "confirm"  # the value of runs.ROLE on a confirmation run
CONFIRM_OF = "confirm_of"  # the front member's trial id
CONFIRM_SEED = "confirm_seed"
CONFIRM_TRIAL_ID = "confirm_trial_id"  # the Ray trial that retrained it
CONFIRM_ARTIFACTS = "confirm"  # artifact folder on the parent: confirmation.json
SURVIVORS_TAG = "confirm_survivors"

Job = tuple[str, int]  # (member trial id, seed)


def confirm_run_name(member_run_name: str, seed: int) -> str:
    return f"confirm {member_run_name} seed {seed}"


class ConfirmTracker:
    """Logs a search's confirmation trials under its parent run (see the module docstring).

    Args:
        run_folder: the search's run folder.
        experiment: the MLflow experiment (the space's name).
        tracking_uri: as ``search run`` takes it (default: ``$MLFLOW_TRACKING_URI``, else the folder's store).
        job_of: the (member, seed) a confirmation record retrains (None: not one of this confirmation's).
        run_names: each member's run name (what its trial's run is called).
    """

    def __init__(self, run_folder: str | os.PathLike, experiment: str, tracking_uri: str | None,
                 job_of: Callable[[TrialRecord], Job | None], run_names: dict[str, str]) -> None:
        self.run_folder = Path(run_folder)
        self.experiment = experiment
        self.uri = resolve_tracking_uri(self.run_folder, tracking_uri)
        self.job_of = job_of
        self.run_names = dict(run_names)
        self._client: Any = None
        self._parent: Run | None = None
        self._runs: dict[Job, Run] = {}
        self._warned = False

    @property
    def parent_run_id(self) -> str | None:
        return self._parent.info.run_id if self._parent is not None else None

    def connect(self) -> None:
        """Find the search's parent run and the confirmation runs already logged; a store that does not
        answer, or holds no parent run of this search, is a :class:`UserError` (before any training)."""
        check_reachable(self.uri)
        with quick_http():
            client = make_client(self.uri)
            experiment = client.get_experiment_by_name(self.experiment)
            state = TrackingState.load(self.run_folder)
            parent = runs.find_parent(client, experiment.experiment_id, state.search_id) if experiment else None
            if parent is None:
                raise UserError(f"{self.run_folder}: MLflow at {self.uri} holds no parent run of this search "
                                f"(experiment {self.experiment!r}); run `search sync {self.run_folder}` first")
            found = runs.search_all(client, experiment.experiment_id,
                                    f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent.info.run_id}' "
                                    f"and tags.`{runs.ROLE}` = '{CONFIRM_ROLE}'")
        self._client, self._parent = client, parent
        self._runs = {}
        for run in found:  # the oldest one when a job was logged twice
            tags = run.data.tags
            if CONFIRM_OF in tags and tags.get(CONFIRM_SEED, "").lstrip("-").isdigit():
                self._runs.setdefault((tags[CONFIRM_OF], int(tags[CONFIRM_SEED])), run)

    # ---- the RecordWriter's listener (search.tune.recorder.RecordListener) ------------------------
    def start(self) -> None:
        """Connected already (:meth:`connect`, before the trials)."""

    def log_record(self, record: TrialRecord, ray_error: str | None = None) -> None:
        """Log a confirmation trial once it has ended (a store that went away: warned once, skipped)."""
        if record.status not in ("finished", "failed"):
            return
        try:
            with quick_http():
                self._log(record)
        except Exception as err:  # the trials go on: their records stay in the run folder
            self._warn(err)

    def _warn(self, err: BaseException) -> None:
        if not self._warned:
            log.warning("MLflow at %s failed while logging the confirmation (%s); the results stay in %s "
                        "and the next `search confirm %s` logs them", self.uri, short_reason(err),
                        self.run_folder, self.run_folder)
        self._warned = True

    def _log(self, record: TrialRecord) -> None:
        job = self.job_of(record)
        if job is None or self._parent is None:
            return
        run = self._runs.get(job)
        if run is not None and run.info.status != "RUNNING":
            return  # logged to its end already (an ended job is never retrained)
        member, seed = job
        client = self._client
        name = confirm_run_name(self.run_names.get(member, member), seed)
        tags = [RunTag(CONFIRM_TRIAL_ID, record.trial_id), RunTag(runs.TRIAL_STATUS, record.status),
                RunTag(MLFLOW_RUN_NAME, name)]
        if run is None:
            parent = self._parent
            run = client.create_run(parent.info.experiment_id, run_name=name, tags={
                MLFLOW_PARENT_RUN_ID: parent.info.run_id,
                runs.SEARCH_ID: parent.data.tags.get(runs.SEARCH_ID, ""),
                runs.ROLE: CONFIRM_ROLE,
                CONFIRM_OF: member,
                CONFIRM_SEED: str(seed),
            })
            self._runs[job] = run
        if record.error:
            tags.append(RunTag(runs.FAILURE_REASON, tag_value(record.error)))
        run_id, start_ms = run.info.run_id, run.info.start_time
        runs.log_params(client, run_id, record.params, run.data.params)
        runs.log_metric_rows(client, run_id, runs.history_rows(record, start_ms))
        if record.final:
            runs.log_metric_rows(client, run_id, [runs.final_row(record, start_ms)])
        client.log_batch(run_id, tags=tags)
        client.set_terminated(run_id, status=runs.RUN_STATUS[record.status])
        self._runs[job] = client.get_run(run_id)

    # ---- the end -------------------------------------------------------------------------------
    def finish(self, records: list[TrialRecord], confirmation: Confirmation, path: Path) -> bool:
        """Log every ended record still missing, then the confirmed means and the file on the parent.
        Returns False when MLflow failed (warned; the next ``search confirm`` logs it)."""
        try:
            with quick_http():
                for record in records:
                    if record.status in ("finished", "failed"):
                        self._log(record)
                self._log_summary(confirmation, path)
        except Exception as err:
            self._warn(err)
            return False
        return True

    def _log_summary(self, confirmation: Confirmation, path: Path) -> None:
        client, parent = self._client, self._parent
        survivors = set(confirmation.survivors())
        metrics = []
        for member in confirmation.members:
            step = len(member.runs)
            stamp = parent.info.start_time + step  # deterministic: the same values again are the same rows
            prefix = f"confirm/{member.trial_id}"
            values = {f"{prefix}/seeds": float(step), f"{prefix}/survives": float(member.trial_id in survivors)}
            for i, (metric, _) in enumerate(confirmation.objectives):
                mean, std = member.mean(i), member.std(i)
                if mean is not None:
                    values[f"{prefix}/{metric}_mean"] = mean
                if std is not None:
                    values[f"{prefix}/{metric}_std"] = std
            metrics += [Metric(mlflow_key(k), v, stamp, step) for k, v in values.items()]
        for start in range(0, len(metrics), 1000):
            client.log_batch(parent.info.run_id, metrics=metrics[start : start + 1000])
        client.log_batch(parent.info.run_id, tags=[RunTag(SURVIVORS_TAG, tag_value(json.dumps(sorted(survivors))))])
        client.log_artifact(parent.info.run_id, str(path), CONFIRM_ARTIFACTS)
