"""Reading a search's Pareto front back from MLflow (what ``search pareto`` prints).

The front is what the tracker tagged: child runs with ``pareto = 'true'`` under the search's parent
run; the objectives come from the parent's ``objectives`` tag. With several searches of one space in
an experiment, the most recent parent is read unless a parent run id is given.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Run
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from search.errors import UserError
from search.results.run_folder import DEFAULT_STORAGE, MLFLOW_DB, space_name
from search.tracking import runs
from search.tracking.names import mlflow_key
from search.tracking.rung_truth import read_rung_correlations
from search.tracking.store import check_reachable, make_client


@dataclass
class FrontTable:
    """The front of one search: objectives, one row per front trial (best first objective first)."""

    experiment: str
    parent_run_id: str
    objectives: list[tuple[str, str]]
    params: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    rung_correlations: list[dict[str, Any]] = field(default_factory=list)  # search.results.rung_truth

    def columns(self) -> list[str]:
        return ["trial_id", "pareto_rank", *[m for m, _ in self.objectives], *self.params, "run_id"]


def locate(experiment: str, tracking_uri: str | None) -> tuple[str, str]:
    """(tracking URI, experiment name) for ``search pareto EXPERIMENT``.

    EXPERIMENT is an experiment name, or a run folder (its ``mlflow.db`` is then the store). Without
    ``--tracking-uri`` / ``MLFLOW_TRACKING_URI`` the default store ``runs/<EXPERIMENT>/mlflow.db`` is used.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    folder = Path(experiment)
    if folder.is_dir() and (folder / MLFLOW_DB).exists():
        # The experiment is the space's name, kept in the folder's space copy: a moved or copied
        # run folder (another folder name) still finds it.
        name = space_name(folder) or folder.resolve().name
        return uri or f"sqlite:///{(folder / MLFLOW_DB).resolve()}", name
    if uri:
        return uri, experiment
    default = Path(DEFAULT_STORAGE) / experiment / MLFLOW_DB
    if default.exists():
        return f"sqlite:///{default.resolve()}", experiment
    raise UserError(
        f"no MLflow store for experiment {experiment!r}: {default} does not exist; pass the run folder, "
        "--tracking-uri URI or set MLFLOW_TRACKING_URI"
    )


def _latest_parent(client: Any, experiment_id: str) -> Run | None:
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{runs.ROLE}` = 'parent'", max_results=1, order_by=["attributes.start_time DESC"]
    )
    return found[0] if found else None


def read_front(experiment: str, tracking_uri: str | None = None, parent_run_id: str | None = None) -> FrontTable:
    """The front of the latest search of ``experiment`` (or of parent ``parent_run_id``) from MLflow."""
    uri, name = locate(experiment, tracking_uri)
    check_reachable(uri)
    client = make_client(uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise UserError(f"no MLflow experiment named {name!r} at {uri}; experiments there: {', '.join(names) or 'none'}")
    if parent_run_id:
        try:
            parent = client.get_run(parent_run_id)
        except Exception:
            raise UserError(f"no run {parent_run_id!r} at {uri}") from None
    else:
        parent = _latest_parent(client, exp.experiment_id)
    if parent is None or parent.data.tags.get(runs.ROLE) != "parent":
        raise UserError(f"experiment {name!r} at {uri} holds no search (no parent run tagged {runs.ROLE}=parent)")
    objectives = [(o["metric"], o["direction"]) for o in json.loads(parent.data.tags.get("objectives", "[]"))]
    children = runs.search_all(
        client, exp.experiment_id, f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent.info.run_id}'"
    )
    children = [c for c in children if c.data.tags.get(runs.ROLE) == "trial"]  # not `search confirm`'s retrainings
    keys = sorted({k for c in children for k in c.data.params})
    varied = [k for k in keys if len({c.data.params.get(k) for c in children}) > 1]
    table = FrontTable(name, parent.info.run_id, objectives, varied,
                       rung_correlations=read_rung_correlations(parent))
    for child in children:
        if child.data.tags.get(runs.PARETO) != "true":
            continue
        row: dict[str, Any] = {
            "trial_id": child.data.tags.get(runs.TRIAL_ID, child.info.run_name),
            "pareto_rank": int(child.data.tags.get(runs.PARETO_RANK, "1")),
            "run_id": child.info.run_id,
        }
        for metric, _ in objectives:
            row[metric] = child.data.metrics.get(mlflow_key(metric))
        for key in varied:
            row[key] = child.data.params.get(key)
        table.rows.append(row)
    if objectives:
        first, direction = objectives[0]
        sign = -1.0 if direction == "max" else 1.0
        table.rows.sort(key=lambda r: (sign * r[first] if r[first] is not None else float("inf"), r["trial_id"]))
    return table
