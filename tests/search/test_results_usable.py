"""From a finished search to its models in MLflow and Optuna (issue 16): runs named by what they
are, each finished trial's way to its weights, reproducibility tags, only the params that apply, a
copied run folder that still works, Optuna's objective names and its links to Ray and MLflow.

One tiny real search (digits, 1 epoch, 4 trials, local Ray) serves the whole module.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path

import optuna
import pytest
from search_support import run_tiny_search, tiny_space
from tracking_support import free_port

from search.results.summary import pareto_front
from search.tracking import read_front
from search.tracking.artifacts import download
from search.tracking.store import make_client
from search.tracking.ui import local_ui_command

pytestmark = pytest.mark.slow

SPACE = tiny_space("usable", num_trials=4, train_extra=", adl_weight: {{choice: [0.0, 1.0]}}")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    space, result = run_tiny_search(tmp_path_factory.mktemp("usable"), "usable", SPACE)
    client = make_client(f"sqlite:///{result.run_folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("usable")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("search.role") == "parent")
    children = {r.data.tags["trial_id"]: r for r in runs if r.data.tags.get("search.role") == "trial"}
    return space, result, client, parent, children


def test_trial_runs_are_named_by_what_they_are_with_the_trial_id_as_a_tag(finished):
    _, result, _, _, children = finished
    assert sorted(children) == sorted(r.trial_id for r in result.records)
    for record in result.records:
        run, p = children[record.trial_id], record.params
        tap = f"tap[1,2]/{p['tap_blocks']}" if p["tap"] else "no-tap"
        assert run.info.run_name == f"robust_vit {p['mixer']} {tap} {p['num_heads']} heads adl {p['adl_weight']:g}"
        assert run.data.tags["trial_id"] == record.trial_id != run.info.run_name


def test_only_the_params_that_apply_are_logged(finished):
    _, result, _, _, children = finished
    for record in result.records:
        params = children[record.trial_id].data.params
        assert ("tap_dilations" in params) == bool(record.params["tap"])
        assert ("tap_blocks" not in params) or record.params["tap"]
        assert ("adl_threshold" in params) == (record.params["adl_weight"] > 0)
        assert set(params) == set(record.params)


def test_each_finished_trial_leads_to_its_weights_and_the_front_holds_them(finished, tmp_path):
    space, result, client, _, children = finished
    front = {r.trial_id for r in pareto_front(result.records, space.objectives)}
    assert front
    for record in result.records:
        run = client.get_run(children[record.trial_id].info.run_id)
        names = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
        assert {"model/checkpoint.json", "model/README.md"} <= names
        pointer = json.loads(Path(download(client, run.info.run_id, "model/checkpoint.json", tmp_path / record.trial_id)).read_text())
        assert (result.run_folder / pointer["checkpoint"] / "trial.pt").exists()  # relative to the run folder
        kind = "exported" if record.trial_id in front else "pointer"
        assert run.data.tags["model_artifact"] == kind
        assert ({"model/config.json", "model/model.safetensors"} <= names) == (kind == "exported")
    # The README's three lines load a front trial's weights with its preprocessing.
    trial_id = sorted(front)[0]
    folder = Path(download(client, children[trial_id].info.run_id, "model", tmp_path / "front"))
    readme = (folder / "README.md").read_text()
    lines = [line for line in readme.splitlines() if line.startswith(("import components", "model =", "transform ="))]
    code = "\n".join(lines) + "\nprint(type(model).__name__, transform.transforms[-1].mean.tolist())"
    out = subprocess.run([sys.executable, "-c", code], cwd=folder.parent, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("RobustViT [0.485")


def test_the_parent_records_what_reproduces_the_search(finished):
    space, _, _, parent, _ = finished
    tags = parent.data.tags
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert tags["repro.git_commit"] == commit and tags["repro.git_dirty"] in ("true", "false")
    for package in ("torch", "timm", "ray", "optuna", "mlflow"):
        assert tags[f"repro.{package}_version"] == metadata.version(package)
    assert tags["repro.device"] == "cpu" and tags["repro.seed"] == str(space.search.seed) == "3"


def test_a_copied_run_folder_keeps_its_artifacts_and_its_front(finished, tmp_path):
    _, result, client, parent, _ = finished
    copy = tmp_path / "elsewhere" / "copy-of-usable"
    shutil.copytree(result.run_folder, copy)
    original = read_front(str(result.run_folder))
    copied = read_front(str(copy))  # the experiment's name is the space's, not the folder's
    assert copied.experiment == "usable" and copied.rows == original.rows
    # MLflow itself holds no absolute path: a client on the copy reads the copy's files.
    copied_client = make_client(f"sqlite:///{copy / 'mlflow.db'}")
    (copy / "mlartifacts" / "usable" / parent.info.run_id / "artifacts" / "marker.txt").write_text("copy")
    paths = {a.path for a in copied_client.list_artifacts(parent.info.run_id)}
    assert "marker.txt" in paths and "space" in paths
    assert "marker.txt" not in {a.path for a in client.list_artifacts(parent.info.run_id)}
    # `mlflow ui` as the search prints it, run in the copy, serves the copy's files.
    shutil.rmtree(result.run_folder / "mlartifacts" / "usable" / parent.info.run_id / "artifacts" / "space")
    listed = _ui_artifacts(copy, parent.info.run_id)
    assert {"marker.txt", "space", "pareto"} <= {f["path"] for f in listed}


def _ui_artifacts(folder: Path, run_id: str) -> list[dict]:
    """The root artifacts of a run as ``mlflow ui`` (the search's command, in ``folder``) lists them."""
    port = free_port()
    command = local_ui_command(str(folder)).split("&& ", 1)[1] + f" --host 127.0.0.1 --port {port} --workers 1"
    env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
    ui = subprocess.Popen(command.split(), cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/artifacts/list?run_uuid={run_id}"
                with urllib.request.urlopen(url, timeout=5) as response:
                    return json.loads(response.read())["files"]
            except OSError:
                assert ui.poll() is None and time.monotonic() < deadline, "mlflow ui did not answer"
                time.sleep(0.5)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)


def test_the_study_names_its_objectives_and_links_ray_and_mlflow(finished):
    space, result, _, _, children = finished
    study = optuna.load_study(study_name="usable", storage=f"sqlite:///{result.run_folder / 'optuna.db'}")
    assert study.metric_names == ["clean_accuracy", "mce"]
    ran = [t for t in study.trials if "ray_trial_id" in t.user_attrs]
    assert sorted(t.user_attrs["ray_trial_id"] for t in ran) == sorted(children)
    for trial in ran:
        assert trial.user_attrs["mlflow_run_id"] == children[trial.user_attrs["ray_trial_id"]].info.run_id
    best = [tuple(t.values) for t in study.best_trials]
    assert len(best) == len(set(best))  # a repeat is never a second "best"
