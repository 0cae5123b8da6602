"""SearchTracker: a search's story in MLflow, logged from its TrialRecords, exactly once.

The run folder is the source of truth (``trials/<trial_id>.json``, written by the trials and the
runner); the tracker copies it into MLflow: a parent run per search, a nested child run per trial,
the Pareto front (tags, CSV, PNG, HTML), the hypervolume history and the param importances.
Everything it logs is idempotent, so the live callback, a resumed search and ``search sync`` can all
log the same records without duplicating a run, a param or a point of a curve.

During a search a tracking server may go away: the tracker then warns once, skips logging (the
trials go on; their records stay in the run folder), tries again every ``retry_interval_s`` and,
once the server answers, logs everything that is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mlflow.entities import Metric, Run, RunTag

from search.errors import UserError
from search.results.front import rank_trials, rankable, table_csv
from search.results.pareto import default_reference, hypervolume, non_dominated
from search.results.records import TrialRecord, load_record, load_records
from search.results.run_folder import space_copy, trials_dir
from search.results.rung_truth import rung_correlations
from search.tracking import runs
from search.tracking.importance import importance_csv, param_importances
from search.tracking.names import flatten, mlflow_key, tag_value
from search.tracking.plots import write_html, write_png
from search.tracking.reproducibility import reproducibility_tags
from search.tracking.rung_truth import log_rung_correlations
from search.tracking.state import TrackingState
from search.tracking.store import (
    check_reachable,
    get_or_create_experiment,
    make_client,
    quick_http,
    resolve_tracking_uri,
    short_reason,
)
from search.tracking.trial_models import MODEL_TAG, log_trial_model
from search.tracking.ui import LOCAL_UI, local_ui_command, runs_url
from search.trial.rungs import scheduler_rung_epochs

log = logging.getLogger("search.tracking")
T = TypeVar("T")

# How a search ended -> (MLflow run status of the parent, the word in its ``search_status`` tag).
SEARCH_END = {
    "finished": ("FINISHED", "finished"),
    "interrupted": ("KILLED", "interrupted"),
    "killed": ("KILLED", "interrupted"),
    "failed": ("FAILED", "failed"),
}
PARETO_ARTIFACTS = "pareto"  # artifact folder on the parent: pareto_front.csv / .png / .html
IMPORTANCE_ARTIFACTS = "importance"


@dataclass
class _Sent:
    """What this process already sent for one trial (a cache: after a failure it is dropped and
    everything is sent again, which the idempotent logging makes harmless)."""

    params: int = 0
    epochs: int = 0
    final: str = ""
    tags: tuple = ()
    status: str = "RUNNING"
    rank: int | None = None
    model: str = ""  # the run's model/ artifacts: "pointer" | "exported" (search.tracking.trial_models)


@dataclass
class SyncSummary:
    """What a sync did: trials read from the run folder, child runs created, front size."""

    trials: int = 0
    created: int = 0
    front: list[str] = field(default_factory=list)


def _load_run_space(run_folder: Path) -> Any:
    """The space a run folder was made from (its ``space.yaml`` copy)."""
    from search.space import load_space

    path = space_copy(run_folder)
    if not path.exists():
        raise UserError(f"{run_folder}: not a run folder of a search (no space.yaml in it)")
    return load_space(path)


class SearchTracker:
    """Logs one search (a run folder) to MLflow; see the module docstring.

    Args:
        run_folder: the search's run folder (``<storage>/<space name>``).
        space: the loaded :class:`search.space.SearchSpace`; read from ``run_folder/space.yaml``
            when omitted.
        tracking_uri: an MLflow tracking URI; default ``$MLFLOW_TRACKING_URI``, else
            ``sqlite:///<run folder>/mlflow.db``.
    """

    retry_interval_s: float = 30.0
    # While trials run, the front's table and pictures are redrawn at most this often (and always at
    # the end): drawing them takes the driver a second of the CPU that the trials need.
    report_interval_s: float = 60.0

    def __init__(self, run_folder: str | os.PathLike, space: Any = None, tracking_uri: str | None = None) -> None:
        self.run_folder = Path(run_folder).resolve()
        self.uri = resolve_tracking_uri(self.run_folder, tracking_uri)
        self.space = space if space is not None else _load_run_space(self.run_folder)
        self.objectives: list[tuple[str, str]] = [(str(m), str(d)) for m, d in self.space.objectives]
        self.state = TrackingState.load(self.run_folder)
        self._offline = False
        self._last_try = 0.0
        self._forget()

    # ---- pickling (Ray Tune may pickle its callbacks): connections are rebuilt on demand ----------
    def __getstate__(self) -> dict[str, Any]:
        keep = ("run_folder", "uri", "space", "objectives", "state", "retry_interval_s", "report_interval_s")
        return {k: self.__dict__[k] for k in keep if k in self.__dict__}

    def __setstate__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)
        self.state = TrackingState.load(self.run_folder)  # the folder's, not the pickled copy's
        self._offline = False
        self._last_try = 0.0
        self._forget()

    def _forget(self) -> None:
        """Drop the connection and every cache (after a failure, everything is looked up again)."""
        self._client: Any = None
        self._experiment_id: str | None = None
        self._parent: Run | None = None
        self._parent_tags: dict[str, str] = {}
        self._children: dict[str, Run] = {}
        self._sent: dict[str, _Sent] = {}
        self._ranks: dict[str, int] | None = None
        self._records: dict[str, TrialRecord] = {}  # every record, read once when connecting
        self._hypervolume_sent = 0  # steps of the hypervolume history this connection has sent
        self._report_due = time.monotonic() + self.report_interval_s  # the front's next live drawing
        self._report_stale = False  # the front changed since it was drawn

    # ---- public API ---------------------------------------------------------------------------
    @property
    def experiment_name(self) -> str:
        """The MLflow experiment: the space's name (one experiment holds every search of a space)."""
        return str(self.space.name)

    @property
    def parent_run_id(self) -> str | None:
        """The parent run's id once connected, else ``None``."""
        return self._parent.info.run_id if self._parent is not None else None

    def run_id_of(self, trial_id: str) -> str | None:
        """The MLflow run id of a trial once its run exists (None before, or while MLflow is away)."""
        run = self._children.get(trial_id)
        return run.info.run_id if run is not None else None

    def ui_hint(self) -> str:
        """One line telling the user where to look: the ``mlflow ui`` command for a local store,
        the parent run's page on a server."""
        if self.uri.startswith("sqlite:"):
            where = runs_url(LOCAL_UI, self._experiment_id) if self._experiment_id else LOCAL_UI
            return f"MLflow: {local_ui_command(str(self.run_folder))}, then open {where}"
        if self._parent is not None and self.uri.startswith(("http://", "https://")):
            run = self._parent.info
            return f"MLflow: {runs_url(self.uri, run.experiment_id, run.run_id)}"
        return f"MLflow: {self.uri} (experiment {self.experiment_name!r})"

    def check_reachable(self) -> None:
        """Raise :class:`UserError` (one line) when the tracking store cannot be reached; call it
        before any trial starts."""
        check_reachable(self.uri)

    def start(self) -> str | None:
        """Open (or, on resume, reopen) the parent run and log the search's settings; returns its id
        (``None`` when the tracking store is away: the search goes on)."""
        self.state.search_status = "running"
        self.state.save(self.run_folder)

        def open_parent() -> str | None:
            self._connect(reopen=True)
            return self.parent_run_id

        return self._safely("opening the parent run", open_parent)

    def log_record(self, record: TrialRecord, ray_error: str | None = None) -> None:
        """Log one trial's record as it was just written (the search's record writer calls this)."""
        self._safely(f"logging trial {record.trial_id}", lambda: self._log_record(record, ray_error, update_front=True))

    def log_trial(self, trial_id: str, ray_error: str | None = None) -> None:
        """Log what the run folder holds about one trial (for trainables that write their own records)."""
        record = load_record(self.run_folder, trial_id)
        if record is not None:  # None: the trial has not written anything yet
            self.log_record(record, ray_error)

    def tune_callback(self) -> Any:
        """A ``ray.tune.Callback`` that logs each trial live; give it to ``RunConfig(callbacks=[...])``."""
        from search.tracking.callback import TrackingCallback

        return TrackingCallback(self)

    def finish(self, status: str = "finished", records: Sequence[TrialRecord] | None = None) -> bool:
        """Log everything missing, the final front, importances, and close the parent run with
        ``status`` ("finished", "interrupted" or "failed"). Returns False when MLflow was away
        (then ``search sync RUN_FOLDER`` logs the rest later)."""
        if status.lower() not in SEARCH_END:
            raise ValueError(f"search status {status!r} is not valid; expected one of {sorted(SEARCH_END)}")
        self.state.search_status = SEARCH_END[status.lower()][1]
        self.state.save(self.run_folder)
        all_records = list(records) if records is not None else load_records(self.run_folder)
        done = self._safely("finishing the search", lambda: self._finish(all_records), force=True)
        if done is None:
            log.warning(
                "MLflow at %s could not be updated at the end of the search; the results are in %s; "
                "run `search sync %s` to log them",
                self.uri,
                trials_dir(self.run_folder),
                self.run_folder,
            )
            return False
        return True

    def drop_trials(self, trial_ids: Sequence[str]) -> None:
        """Delete the child runs of trials whose records the runner dropped (lost to a SIGKILL: the
        resumed search ran another trial in their place), so that MLflow holds each trial once."""

        def drop() -> None:
            self._connect(reopen=False)
            for trial_id in trial_ids:
                run = self._children.pop(trial_id, None)
                self._sent.pop(trial_id, None)
                if run is not None:
                    self._client.delete_run(run.info.run_id)

        if trial_ids:
            self._safely("removing the runs of lost trials", drop, force=True)

    def sync(self) -> SyncSummary:
        """Log whatever MLflow lacks from the run folder's records, never duplicating (errors raise)."""
        records = load_records(self.run_folder)
        with quick_http(retries=2):
            self._connect(reopen=False)
            before = set(self._children)
            self._finish(records)
        ranks = self._ranks or {}
        return SyncSummary(
            trials=len(records),
            created=len(set(self._children) - before),
            front=sorted(t for t, r in ranks.items() if r == 1),
        )

    # ---- failure handling ------------------------------------------------------------------------
    def _safely(self, action: str, fn: Callable[[], T], force: bool = False) -> T | None:
        """Run ``fn`` against MLflow; on any failure warn (once per outage) and carry on. While the
        store is away, calls are skipped except every ``retry_interval_s`` (or when ``force``)."""
        now = time.monotonic()
        if self._offline and not force and now - self._last_try < self.retry_interval_s:
            return None
        self._last_try = now
        try:
            with quick_http():
                if self._offline:
                    self._catch_up()
                result = fn()
        except Exception as err:  # the search must never die because MLflow did
            if not self._offline:
                reason = short_reason(err)
                log.warning(
                    "MLflow tracking at %s failed while %s (%s); the search goes on, results stay in %s "
                    "and are logged when MLflow is back (or run `search sync %s`)",
                    self.uri,
                    action,
                    reason,
                    trials_dir(self.run_folder),
                    self.run_folder,
                )
            self._offline = True
            self._forget()
            return None
        if self._offline:
            log.warning("MLflow tracking at %s is back; the missing results were logged", self.uri)
            self._offline = False
        return result

    def _catch_up(self) -> None:
        """After an outage: reconnect and log every record (what was sent already is not repeated)."""
        self._forget()
        self._connect(reopen=self.state.search_status == "running")  # start() may have missed it
        records = load_records(self.run_folder)
        for record in records:
            self._log_record(record, None, update_front=False)
        self._update_front(records)

    # ---- parent ----------------------------------------------------------------------------------
    def _connect(self, reopen: bool) -> None:
        """Find or create the experiment, the parent run and the known children (cached)."""
        if self._parent is not None:
            if reopen:
                self._reopen_parent()
            return
        client = make_client(self.uri)
        experiment_id = get_or_create_experiment(client, self.experiment_name, self.run_folder, self.uri)
        # The search id is saved before the parent is created: a driver killed in between finds no
        # parent next time and creates one; it can never leave two parents for one search.
        self.state.save(self.run_folder)
        parent = runs.find_parent(client, experiment_id, self.state.search_id)
        if parent is None:
            run_name = f"{self.experiment_name}-{self.state.search_id[:8]}"  # searches of a space apart
            parent = runs.create_parent(client, experiment_id, self.state.search_id, run_name, self._initial_parent_tags())
        self._client, self._experiment_id, self._parent = client, experiment_id, parent
        self._parent_tags = dict(parent.data.tags)
        self._children = runs.find_children(client, experiment_id, parent.info.run_id)
        self._records = {r.trial_id: r for r in load_records(self.run_folder)}
        self._sent = {tid: _Sent(status=run.info.status, model=run.data.tags.get(MODEL_TAG, ""))
                      for tid, run in self._children.items()}
        self._log_parent_settings()  # idempotent: also completes a parent whose driver died early
        if reopen:
            self._reopen_parent()

    def _initial_parent_tags(self) -> dict[str, str]:
        front_text = (
            "The Pareto front of this search: artifacts `pareto/pareto_front.png` (static), "
            "`pareto/pareto_front.html` (interactive) and `pareto/pareto_front.csv` (every trial with "
            "its rank). Trials on the front are tagged `pareto = true`; filter the nested runs with "
            "`tags.pareto = 'true'`. Metric `hypervolume` tracks the front after each finished trial."
        )
        return {
            "space": self.experiment_name,
            "sampler": str(getattr(getattr(self.space, "search", None), "sampler", "")),
            "run_folder": str(self.run_folder),
            "objectives": json.dumps([{"metric": m, "direction": d} for m, d in self.objectives]),
            "search_status": "running",
            "mlflow.note.content": front_text,
        }

    def _log_parent_settings(self) -> None:
        """The space file as an artifact and its resolved settings as params (only missing params
        are sent; the small space file is written again)."""
        client, run_id = self._client, self._parent.info.run_id
        missing = {k: v for k, v in reproducibility_tags(self.space).items() if k not in self._parent_tags}
        if missing:  # recorded by the search's first start (a resume keeps them)
            self._set_parent_tags(missing)
        resolved = self.space.resolved() if hasattr(self.space, "resolved") else {}
        runs.log_params(client, run_id, flatten(resolved), self._parent.data.params)
        text = getattr(self.space, "text", None)
        if text is None and space_copy(self.run_folder).exists():
            text = space_copy(self.run_folder).read_text()
        if text:
            client.log_text(run_id, text, "space/space.yaml")

    def _reopen_parent(self) -> None:
        """A resumed search: the same parent run becomes RUNNING again."""
        if self._parent.info.status != "RUNNING":
            self._client.update_run(self._parent.info.run_id, status="RUNNING")
            self._set_parent_tags({"search_status": "running"})
            self._parent = self._client.get_run(self._parent.info.run_id)

    # ---- children ----------------------------------------------------------------------------------
    def _child(self, trial_id: str, params: dict | None = None) -> tuple[Run, _Sent]:
        run = self._children.get(trial_id)
        if run is None:
            run = runs.create_child(
                self._client, self._experiment_id, self._parent.info.run_id, self.state.search_id, trial_id, params
            )
            self._children[trial_id] = run
            self._sent[trial_id] = _Sent()
        return run, self._sent.setdefault(trial_id, _Sent(status=run.info.status))

    def _log_record(self, record: TrialRecord, ray_error: str | None, update_front: bool) -> None:
        """Bring one trial's child run up to date with its record (only what is missing is sent)."""
        self._connect(reopen=False)
        self._records[record.trial_id] = record
        client = self._client
        run, sent = self._child(record.trial_id, record.params)
        run_id, start_ms = run.info.run_id, run.info.start_time
        if len(record.params) > sent.params:  # the first record of a trial may come before its params
            runs.log_params(client, run_id, record.params, run.data.params)
            sent.params = len(record.params)
        if len(record.history) > sent.epochs:
            runs.log_metric_rows(client, run_id, runs.history_rows(record, start_ms, sent.epochs))
            sent.epochs = len(record.history)
        final_key = json.dumps(record.final, sort_keys=True) if record.final else ""
        if final_key and final_key != sent.final:
            runs.log_metric_rows(client, run_id, [runs.final_row(record, start_ms)])
            sent.final = final_key
        tags = runs.trial_tags(record)
        end = runs.end_status(record)
        if ray_error and record.status == "running":  # Ray ended it before the trial could say so
            tags += [RunTag(runs.TRIAL_STATUS, "failed"), RunTag(runs.FAILURE_REASON, tag_value(ray_error))]
            end = "FAILED"
        tag_key = tuple((t.key, t.value) for t in tags)
        if tag_key != sent.tags:
            client.log_batch(run_id, tags=tags)
            sent.tags = tag_key
        if record.status == "finished" and not sent.model:  # the way from the run to its weights
            sent.model = log_trial_model(client, run_id, self.run_folder, record, self.objectives, export=False)
        if end and sent.status != end:
            client.set_terminated(run_id, status=end)
            sent.status = end
        elif end is None and sent.status != "RUNNING":  # a resumed (or retried) trial runs again
            client.update_run(run_id, status="RUNNING")
            sent.status = "RUNNING"
        if rankable(record, self.objectives):
            if record.trial_id not in self.state.finish_order:
                self.state.finish_order.append(record.trial_id)
                self.state.save(self.run_folder)
            if update_front and sent.rank is None:  # a new full-budget result: the front may move
                self._update_front(list(self._records.values()))

    # ---- Pareto front ------------------------------------------------------------------------------
    def _update_front(self, records: Sequence[TrialRecord], force: bool = False) -> None:
        """When the ranks changed since last time (or ``force``): tag the ranked children and log the
        hypervolume history; when the front itself changed (or ``force``): the front's table and plots
        (while trials run, at most every ``report_interval_s``)."""
        points = rank_trials(records, self.objectives)
        ranks = {p.trial_id: p.rank for p in points if p.ranked}
        if not ranks:
            return
        client, parent_id = self._client, self._parent.info.run_id
        for trial_id, rank in sorted(ranks.items()):  # only what differs is sent
            if trial_id not in self._children:
                continue  # its record is not logged yet (its own call comes next)
            sent = self._sent.setdefault(trial_id, _Sent())
            if sent.rank != rank:
                tags = [RunTag(runs.PARETO, "true" if rank == 1 else "false"), RunTag(runs.PARETO_RANK, str(rank))]
                client.log_batch(self._children[trial_id].info.run_id, tags=tags)
                sent.rank = rank
        if ranks == self._ranks and not force:
            return
        self._log_hypervolume(records)
        front = sorted(t for t, r in ranks.items() if r == 1)
        previous = sorted(t for t, r in (self._ranks or {}).items() if r == 1)
        self._ranks = ranks
        if front == previous and not self._report_stale and not force:
            return  # a dominated trial was added: same front, same pictures
        if not force and time.monotonic() < self._report_due:
            self._report_stale = True  # drawn with a later result, or at the end
            return
        self._report_due, self._report_stale = time.monotonic() + self.report_interval_s, False
        table = table_csv(points, self.objectives)
        digest = hashlib.sha1(table.encode()).hexdigest()[:16]
        if self._parent_tags.get("pareto_report") == digest:
            return  # the parent already shows exactly this table and its plots (a repeated sync)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "pareto_front.csv").write_text(table)
            write_png(points, self.objectives, folder / "pareto_front.png")
            write_html(points, self.objectives, folder / "pareto_front.html")
            client.log_artifacts(parent_id, str(folder), PARETO_ARTIFACTS)
        self._set_parent_tags(
            {"pareto_front": tag_value(json.dumps(front)), "pareto_front_size": str(len(front)), "pareto_report": digest}
        )

    def _set_parent_tags(self, tags: dict[str, str]) -> None:
        self._client.log_batch(self._parent.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self._parent_tags.update(tags)

    def _log_hypervolume(self, records: Sequence[TrialRecord]) -> None:
        """Metrics ``hypervolume`` and ``pareto_front_size`` at step n = n finished full-budget trials,
        with a reference point fixed at the first finished trial (kept in the run folder's tracking state).

        The history is updated, not recomputed: a step once computed is kept in the tracking state and
        only the steps of newly finished trials are computed and sent."""
        by_id = {r.trial_id: r for r in records}
        for record in records:  # records never seen finishing (e.g. synced later): by trial id
            if rankable(record, self.objectives) and record.trial_id not in self.state.finish_order:
                self.state.finish_order.append(record.trial_id)
        ordered = [by_id[t] for t in self.state.finish_order if t in by_id and rankable(by_id[t], self.objectives)]
        if not ordered:
            return
        directions = [d for _, d in self.objectives]
        values = [[float(r.final[m]) for m, _ in self.objectives] for r in ordered]
        if self.state.reference is None:
            self.state.reference = default_reference(values, directions)
        history = self.state.hypervolume
        for n in range(len(history) + 1, len(values) + 1):
            history.append([hypervolume(values[:n], directions, self.state.reference),
                            float(len(non_dominated(values[:n], directions)))])
        self.state.save(self.run_folder)
        base = self._parent.info.start_time
        metrics = []
        for n in range(self._hypervolume_sent + 1, len(history) + 1):
            volume, size = history[n - 1]
            metrics += [Metric("hypervolume", volume, base + n, n), Metric("pareto_front_size", size, base + n, n)]
        for start in range(0, len(metrics), 1000):
            self._client.log_batch(self._parent.info.run_id, metrics=metrics[start : start + 1000])
        self._hypervolume_sent = len(history)
        reference = json.dumps(self.state.reference)
        if self._parent_tags.get("hypervolume_reference") != reference:
            self._set_parent_tags({"hypervolume_reference": reference})

    # ---- the end ----------------------------------------------------------------------------------
    def _finish(self, records: Sequence[TrialRecord]) -> bool:
        """Everything missing, the final front, importances, children and parent closed."""
        self._connect(reopen=False)
        for record in records:
            self._log_record(record, None, update_front=False)
        self._update_front(records, force=True)
        self._export_front()
        self._log_importance(records)
        # Does the rung tell the truth? (a search with a scheduler; none without one)
        log_rung_correlations(self._client, self._parent,
                              rung_correlations(records, self.objectives, scheduler_rung_epochs(self.space)))
        mlflow_status, word = SEARCH_END[self.state.search_status] if self.state.search_status in SEARCH_END else ("RUNNING", "running")
        if word != "running":
            for trial_id, sent in self._sent.items():
                if sent.status == "RUNNING" and trial_id in self._children:
                    # A trial still running when the search stopped: its run ends as KILLED.
                    self._client.set_terminated(self._children[trial_id].info.run_id, status="KILLED")
                    sent.status = "KILLED"
            self._set_parent_tags({"search_status": word})
            if self._parent.info.status != mlflow_status:
                self._client.set_terminated(self._parent.info.run_id, status=mlflow_status)
                self._parent = self._client.get_run(self._parent.info.run_id)
        return True

    def _export_front(self) -> None:
        """The Pareto trials' runs get their exported model folder (the others keep a pointer)."""
        for trial_id, rank in sorted((self._ranks or {}).items()):
            sent, run = self._sent.get(trial_id), self._children.get(trial_id)
            if rank == 1 and run is not None and sent is not None and sent.model != "exported":
                sent.model = log_trial_model(self._client, run.info.run_id, self.run_folder,
                                             self._records[trial_id], self.objectives, export=True)

    def _log_importance(self, records: Sequence[TrialRecord]) -> None:
        """Param importance per objective: CSV + JSON artifacts and ``importance/<metric>/<param>`` metrics."""
        used = sorted(r.trial_id for r in records if rankable(r, self.objectives))
        digest = hashlib.sha1(json.dumps(used).encode()).hexdigest()[:16]
        if self._parent_tags.get("importance_report") == digest:
            return  # computed from these very trials already
        importances, source = param_importances(self.run_folder, records, self.objectives)
        if not importances:
            return
        client, parent_id = self._client, self._parent.info.run_id
        step = len(used)
        stamp = self._parent.info.start_time + step
        metrics = [
            Metric(mlflow_key(f"importance/{metric}/{param}"), value, stamp, step)
            for metric, values in importances.items()
            for param, value in values.items()
        ]
        for start in range(0, len(metrics), 1000):
            client.log_batch(parent_id, metrics=metrics[start : start + 1000])
        client.log_text(parent_id, importance_csv(importances), f"{IMPORTANCE_ARTIFACTS}/param_importance.csv")
        client.log_dict(parent_id, {"source": source, "importance": importances}, f"{IMPORTANCE_ARTIFACTS}/param_importance.json")
        self._set_parent_tags({"importance_source": source, "importance_report": digest})
