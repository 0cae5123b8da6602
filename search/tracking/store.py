"""Where a search is tracked: the tracking URI, the client, the experiment, and a reachability check.

Default: a SQLite store in the run folder (``sqlite:///<run folder>/mlflow.db``) with artifacts next
to it in ``<run folder>/mlartifacts``; ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` names a server
instead. Every call goes through :class:`mlflow.MlflowClient` with explicit ids (no fluent
``mlflow.start_run`` global state: Ray Tune calls our callback while other code may use MLflow).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from mlflow import MlflowClient

from search.errors import UserError
from search.results.run_folder import mlflow_db
from search.tracking.artifacts import bind_run_folder, experiment_location
from search.tracking.store_template import seed_new_store

# The MLflow 3 UI opens an experiment in its GenAI (traces) view unless told it is model training.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

# MLflow retries an HTTP request 7 times with exponential backoff (minutes) and waits 120 s for an
# answer. A search must not stall on a dead server: one try, a short timeout, then carry on.
CHECK_TIMEOUT_S = 5
LOG_TIMEOUT_S = 15


def resolve_tracking_uri(run_folder: str | os.PathLike, tracking_uri: str | None = None) -> str:
    """``tracking_uri`` if given, else ``$MLFLOW_TRACKING_URI``, else the run folder's SQLite store."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if uri.strip():
        return uri.strip()
    return f"sqlite:///{mlflow_db(run_folder).resolve()}"


def is_local_sqlite(uri: str) -> bool:
    """True for a ``sqlite:///path`` store (artifacts then go to a folder beside the database)."""
    return uri.startswith("sqlite:")


@contextlib.contextmanager
def quick_http(timeout_s: int = LOG_TIMEOUT_S, retries: int = 0) -> Iterator[None]:
    """Make MLflow's HTTP requests fail fast (and quiet) inside the block; MLflow reads these
    variables on every request, so the block applies to exactly the calls made inside it."""
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
        # set_terminated would print two "View run" lines per trial and fetch the run again.
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def make_client(uri: str) -> MlflowClient:
    """A client bound to ``uri`` (the SQLite file's folder is created when needed, and a new store
    copied from an empty one: :mod:`search.tracking.store_template`)."""
    if is_local_sqlite(uri):
        path = uri.removeprefix("sqlite:///")
        # "sqlite:////abs/mlflow.db" leaves "/abs/mlflow.db"; "sqlite:///rel.db" leaves "rel.db".
        if path and not path.startswith(":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            seed_new_store(path)  # a copy of an empty store: MLflow's migrations take seconds
            # The store's folder is the run folder: its artifacts are there, wherever it now lies.
            return bind_run_folder(MlflowClient(tracking_uri=uri), Path(path).parent)
    return MlflowClient(tracking_uri=uri)


def check_reachable(uri: str) -> None:
    """Raise :class:`UserError` with one clear line when the tracking store cannot be used."""
    try:
        with quick_http(timeout_s=CHECK_TIMEOUT_S, retries=0):
            make_client(uri).search_experiments(max_results=1)
    except Exception as err:  # requests, SQLAlchemy and MLflow errors all mean "cannot track here"
        reason = short_reason(err)
        raise UserError(
            f"cannot reach the MLflow tracking store {uri!r} ({reason}); start the server or fix "
            "--tracking-uri / MLFLOW_TRACKING_URI (without either, the search uses a local SQLite "
            "store in its run folder)"
        ) from None


def short_reason(err: BaseException) -> str:
    """The gist of a tracking error on one short line (the socket error when there is one, rather
    than urllib3's whole retry story)."""
    text = " ".join(str(err).split()) or type(err).__name__
    socket_error = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
    if socket_error:
        return socket_error.group(0).strip()
    if "timed out" in text.lower():
        return "timed out"
    return text if len(text) <= 200 else text[:200] + "..."


def get_or_create_experiment(client: MlflowClient, name: str, run_folder: str | os.PathLike, uri: str) -> str:
    """The id of experiment ``name``, created when missing (local stores keep artifacts in the run folder)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        if EXPERIMENT_KIND_TAG not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return experiment.experiment_id
    location = None
    if is_local_sqlite(uri):
        location = experiment_location(name)  # resolved in the run folder as it is now (artifacts.py)
    try:
        return client.create_experiment(name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    except Exception:
        # Another process created it between our look-up and our create: use theirs.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
