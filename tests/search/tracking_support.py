"""Shared pieces of the MLflow tracking tests: a real ``mlflow server`` process, a real search space
file, TrialRecords shaped like the ones trials write, and read-back helpers.

Imported by ``test_tracking*.py`` and ``test_mlflow_ui.py`` (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run

from search.results.records import TrialRecord
from search.space import SearchSpace, load_space

SPACE_TEXT = """\
name: {name}
description: tracking test space
model:
  mixer: {{choice: [mlp, se, fan]}}
  num_heads: {{choice: [2, 4]}}
train:
  epochs: 2
  adl_weight: {{choice: [0.0, 0.1]}}
search:
  sampler: nsga2
  num_trials: 6
"""

CORRUPTIONS = ("gaussian_noise", "fog")


def write_space(run_folder: Path, name: str) -> SearchSpace:
    """Write ``space.yaml`` into the run folder (as the runner does) and load it for real."""
    run_folder.mkdir(parents=True, exist_ok=True)
    path = run_folder / "space.yaml"
    path.write_text(SPACE_TEXT.format(name=name))
    return load_space(path)


def make_record(
    trial_id: str,
    clean_accuracy: float,
    mce: float,
    *,
    status: str = "finished",
    epochs: int = 2,
    full_budget: bool = True,
    mixer: str = "mlp",
    num_heads: int = 2,
    adl_weight: float = 0.0,
    error: str | None = None,
) -> TrialRecord:
    """A record like a trial writes: flat params, per-epoch history and the flat report."""
    history = [
        {"epoch": e, "train_loss": round(2.0 / e + clean_accuracy / 1000, 6), "train_accuracy": clean_accuracy - 10 / e}
        for e in range(1, epochs + 1)
    ]
    final: dict[str, float] = {}
    if status != "failed" and status != "running":
        final = {
            "clean_accuracy": clean_accuracy,
            "mce": mce,
            "relative_mce": mce * 1.1,
            "retention": 0.8,
            "attention_stability": 0.9,
            "head_diversity": 0.5,
            "train_loss": history[-1]["train_loss"],  # trials also report their training totals
        }
        for i, name in enumerate(CORRUPTIONS):
            final[f"ce/{name}"] = mce + i
            for severity in (1, 3):
                final[f"error/{name}/{severity}"] = 100 - clean_accuracy + severity + i
    params = {"model_name": "robust_vit", "mixer": mixer, "num_heads": num_heads, "adl_weight": adl_weight,
              "tap_dilations": [1, 2], "epochs": epochs}
    return TrialRecord(trial_id, status, params, history, final, error, full_budget)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 with a SQLite backend in ``folder``; can be stopped and started
    again on the same port and store (a tracking server outage)."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self, timeout_s: float = 120.0) -> MlflowServer:
        mlflow_exe = shutil.which("mlflow") or str(Path(sys.executable).parent / "mlflow")
        command = [
            mlflow_exe, "server",
            "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
            "--artifacts-destination", str(self.folder / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]
        env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
        self.log = open(self.folder / "server.log", "ab")  # noqa: SIM115 (closed in stop)
        # Its own process group, so that stop() ends the server and its uvicorn worker together.
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.folder / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer within {timeout_s} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None


_SHARED: dict[str, MlflowServer] = {}


def shared_server(base: Path) -> MlflowServer:
    """One server for every test module of this process that only reads and writes through it (a
    server start costs 10-40 s on two busy cores); stopped when the process exits. Tests that stop
    their server (an outage) start their own."""
    if "server" not in _SHARED:
        _SHARED["server"] = MlflowServer(base).start()
        atexit.register(_SHARED["server"].stop)
    return _SHARED["server"]


def search_runs(uri: str, experiment: str) -> tuple[list[Run], list[Run]]:
    """(parent runs, child runs) of an experiment, read back from MLflow."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} at {uri}"
    all_runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in all_runs if r.data.tags.get("search.role") == "parent"]
    children = [r for r in all_runs if r.data.tags.get("search.role") == "trial"]
    return parents, children
