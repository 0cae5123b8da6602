"""Artifacts of a local store that survive moving or copying the run folder.

MLflow stores an absolute artifact location per experiment (a relative one is made absolute at
creation), so a run folder that is moved or copied would show the old folder's artifacts, or none.
A local store therefore gives its experiments the location ``mlflow-artifacts:/<space name>``:
MLflow's own proxied-artifact scheme, which ``mlflow ui`` / ``mlflow server`` resolve against
their ``--artifacts-destination`` (default ``./mlartifacts``). From the run folder (wherever it is)::

    mlflow ui --backend-store-uri sqlite:///mlflow.db --artifacts-destination mlartifacts

serves the folder's own artifacts, and a plain ``cd RUN_FOLDER && mlflow ui`` does too.

A client on the SQLite file itself has no server to proxy through: :func:`bind_run_folder` gives
it the run folder's ``mlartifacts/`` for such runs, so ``log_artifact(s)``, ``log_text``,
``log_dict``, ``list_artifacts`` and ``download_artifacts`` keep working on the store as it is now
(use :func:`search.tracking.store.make_client`, which binds it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

PROXY_SCHEME = "mlflow-artifacts"
ARTIFACTS_DIR = "mlartifacts"


def experiment_location(name: str) -> str:
    """The artifact location of a local store's experiment ``name`` (a folder-safe space name)."""
    return f"{PROXY_SCHEME}:/{name}"


def local_path(run_folder: str | os.PathLike, artifact_uri: str) -> Path | None:
    """Where a proxied artifact URI lies in ``run_folder`` (None for any other URI)."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme != PROXY_SCHEME:
        return None
    return Path(run_folder).resolve() / ARTIFACTS_DIR / parsed.path.lstrip("/")


def bind_run_folder(client: Any, run_folder: str | os.PathLike) -> Any:
    """Make ``client`` (an ``MlflowClient`` on the run folder's SQLite store) read and write the
    artifacts of proxied runs in ``run_folder/mlartifacts``; returns the client."""
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    service = client._tracking_client  # MlflowClient's delegate: every artifact call asks its repo
    original = service._get_artifact_repo

    def get_repo(resource_id: str, *, resource: str = "run") -> Any:
        if resource == "run":
            path = local_path(run_folder, service.get_run(resource_id).info.artifact_uri)
            if path is not None:
                path.mkdir(parents=True, exist_ok=True)
                return LocalArtifactRepository(str(path))
        return original(resource_id, resource=resource)

    def list_artifacts(run_id: str, path: str | None = None) -> list:
        return get_repo(run_id).list_artifacts(path)

    def download_artifacts(run_id: str, path: str, dst_path: str | None = None) -> str:
        if dst_path is not None:
            Path(dst_path).mkdir(parents=True, exist_ok=True)
        return get_repo(run_id).download_artifacts(path, dst_path)

    # Writing asks the repo; listing and downloading would go through a runs:/ URI and refuse the
    # proxied scheme without a server.
    service._get_artifact_repo = get_repo
    service.list_artifacts = list_artifacts
    service.download_artifacts = download_artifacts
    return client


def download(client: Any, run_id: str, path: str, dst: str | os.PathLike) -> str:
    """``client.download_artifacts`` into ``dst`` (created when missing)."""
    Path(dst).mkdir(parents=True, exist_ok=True)
    return client.download_artifacts(run_id, path, str(dst))
