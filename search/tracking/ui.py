"""Links into the MLflow UI that open on a search's training runs.

MLflow 3.17's UI decides between its GenAI views (traces, the overview page) and its model-training
views (the runs table) by a *workflow type*: the ``workflowType`` parameter of the page's address,
else the one last picked with the sidebar's "GenAI / Model training" switch (kept in the browser),
else GenAI. The experiment's ``mlflow.experimentKind`` tag, which earlier 3.x versions read, no longer
decides it. A link with ``workflowType=machine_learning`` opens on the runs table in any browser.
"""

from __future__ import annotations

import shlex

WORKFLOW_PARAM = "workflowType=machine_learning"
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` listens by default


def runs_url(base: str, experiment_id: str, run_id: str | None = None) -> str:
    """The experiment's runs table (or one run's page) in the model-training view."""
    page = f"#/experiments/{experiment_id}/runs" + (f"/{run_id}" if run_id else "")
    return f"{base.rstrip('/')}/{page}?{WORKFLOW_PARAM}"


def local_ui_command(run_folder: str) -> str:
    """The command that serves a run folder's own store and artifacts (wherever the folder lies)."""
    return f"cd {shlex.quote(run_folder)} && mlflow ui --backend-store-uri sqlite:///mlflow.db --artifacts-destination mlartifacts"
