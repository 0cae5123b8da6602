"""The MLflow runs of a search: one parent run, one nested child run per trial, logged idempotently.

Exactly once, even when the same records are logged again (a resumed search, ``search sync`` after
an outage, a driver killed between two calls):
- the parent is found by its ``search_id`` tag (kept in the run folder), a child by its ``trial_id``
  tag under that parent; both are created only when the look-up finds nothing;
- params are written once (only missing keys are sent);
- every metric gets a deterministic timestamp (the child's start time plus the step), so sending the
  same value again is the very same row, which MLflow's SQL store (also behind ``mlflow server``)
  drops as a duplicate instead of adding a second point to the curve.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunTag, ViewType
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from search.results.records import TrialRecord
from search.tracking.names import finite_metrics, mlflow_key, param_value, tag_value
from search.tracking.run_names import trial_run_name

# Tag keys written by this package (constants so that the reader in ``search pareto`` agrees).
SEARCH_ID = "search_id"
ROLE = "search.role"  # "parent" | "trial"
TRIAL_ID = "trial_id"
TRIAL_STATUS = "trial_status"
FULL_BUDGET = "full_budget"
FAILURE_REASON = "failure_reason"
STOP_EPOCH = "stop_epoch"
PARETO = "pareto"
PARETO_RANK = "pareto_rank"

# TrialRecord.status -> the MLflow run status it ends in ("running" stays RUNNING).
RUN_STATUS = {"finished": "FINISHED", "stopped": "FINISHED", "failed": "FAILED"}
# Offset of the final report's timestamps after the epochs' (keeps them apart and deterministic).
FINAL_TIMESTAMP_OFFSET_MS = 1_000_000
_BATCH = 100  # MLflow's limit of params + tags per log_batch call (metrics: 1000)


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "\\'") + "'"


def search_all(client: MlflowClient, experiment_id: str, filter_string: str) -> list[Run]:
    """Every active run of the experiment matching ``filter_string`` (all pages), oldest first."""
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=filter_string,
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def find_parent(client: MlflowClient, experiment_id: str, search_id: str) -> Run | None:
    """The parent run of search ``search_id`` (the oldest when, against all odds, there are two)."""
    runs = search_all(client, experiment_id, f"tags.{SEARCH_ID} = {_quote(search_id)} and tags.`{ROLE}` = 'parent'")
    return runs[0] if runs else None


def create_parent(client: MlflowClient, experiment_id: str, search_id: str, run_name: str, tags: dict[str, str]) -> Run:
    """A new parent run carrying its identity tags from the very first write."""
    all_tags = {**tags, SEARCH_ID: search_id, ROLE: "parent", MLFLOW_RUN_NAME: run_name}
    return client.create_run(experiment_id, tags=all_tags, run_name=run_name)


def find_children(client: MlflowClient, experiment_id: str, parent_id: str) -> dict[str, Run]:
    """The child runs of a parent by trial id (the oldest one when a trial id appears twice)."""
    children: dict[str, Run] = {}
    for run in search_all(client, experiment_id, f"tags.`{MLFLOW_PARENT_RUN_ID}` = {_quote(parent_id)}"):
        trial_id = run.data.tags.get(TRIAL_ID)
        if trial_id is not None:
            children.setdefault(trial_id, run)
    return children


def create_child(client: MlflowClient, experiment_id: str, parent_id: str, search_id: str, trial_id: str,
                 params: Mapping[str, Any] | None = None) -> Run:
    """A child run nested under ``parent_id`` (the ``mlflow.parentRunId`` tag is what the UI nests by),
    named by what the trial is (:func:`search.tracking.run_names.trial_run_name`)."""
    tags = {
        MLFLOW_PARENT_RUN_ID: parent_id,
        SEARCH_ID: search_id,
        ROLE: "trial",
        TRIAL_ID: trial_id,
        TRIAL_STATUS: "running",
    }
    return client.create_run(experiment_id, tags=tags, run_name=trial_run_name(params or {}, trial_id))


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, Any], have: Mapping[str, str]) -> list[str]:
    """Log the entries of ``params`` whose names are not in ``have`` (MLflow refuses to change a
    param, and sending an unchanged one again costs a request); returns the names logged."""
    missing: dict[str, Param] = {}
    for key, value in sorted(params.items()):
        name = mlflow_key(key)
        if name not in have and name not in missing:  # two keys may map to one name: first wins
            missing[name] = Param(name, param_value(value))
    batch = list(missing.values())
    for start in range(0, len(batch), _BATCH):
        client.log_batch(run_id, params=batch[start : start + _BATCH])
    return list(missing)


def log_metric_rows(client: MlflowClient, run_id: str, rows: Iterable[tuple[int, int, dict[str, Any]]]) -> int:
    """Log ``(step, timestamp_ms, metrics)`` rows in batches of at most 1000 metrics; returns the count."""
    metrics = [
        Metric(key, value, timestamp, step) for step, timestamp, values in rows for key, value in finite_metrics(values).items()
    ]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    return len(metrics)


def history_rows(record: TrialRecord, start_time_ms: int, first: int = 0) -> list[tuple[int, int, dict[str, Any]]]:
    """The per-epoch curves from epoch index ``first`` on, with step = epoch (1-based unless recorded)."""
    rows = []
    for index, entry in enumerate(record.history[first:], start=first):
        step = int(entry["epoch"]) if isinstance(entry.get("epoch"), int | float) else index + 1
        values = {k: v for k, v in entry.items() if k != "epoch"}
        rows.append((step, start_time_ms + step, values))
    return rows


def final_row(record: TrialRecord, start_time_ms: int) -> tuple[int, int, dict[str, Any]]:
    """The final report as one row at the last epoch's step, stamped after it (so it is the latest
    value). Values the last epoch already logged under the same name (training totals such as
    ``train_loss``) are left out: the curve would otherwise get a second, identical point."""
    rows = history_rows(record, start_time_ms, max(len(record.history) - 1, 0))
    step, last = (rows[-1][0], rows[-1][2]) if rows else (0, {})
    final = {k: v for k, v in record.final.items() if not (k in last and last[k] == v)}
    return (step, start_time_ms + FINAL_TIMESTAMP_OFFSET_MS + step, final)


def trial_tags(record: TrialRecord) -> list[RunTag]:
    """Status tags of a trial; the failure reason only when there is one."""
    tags = [RunTag(TRIAL_STATUS, record.status), RunTag(FULL_BUDGET, str(bool(record.full_budget)).lower()),
            RunTag(MLFLOW_RUN_NAME, trial_run_name(record.params, record.trial_id))]  # once its params are known
    if record.stop_epoch is not None:  # stopped by the scheduler after this epoch
        tags.append(RunTag(STOP_EPOCH, str(record.stop_epoch)))
    if record.error:
        tags.append(RunTag(FAILURE_REASON, tag_value(record.error)))
    return tags


def end_status(record: TrialRecord) -> str | None:
    """The MLflow status a child run ends in, ``None`` while the trial runs."""
    return RUN_STATUS.get(record.status)
