"""Searches across nodes, on Ray's multi-node test cluster on this one machine.

Each worker node of :class:`support.local_cluster.LocalCluster` declares one GPU and has its own
loopback address; every trial asks for one GPU (it trains on the CPU: there is no CUDA device), so
Ray must spread the trials over the nodes, and a node's loss takes its trial with it. Shown here:

- a search with one GPU per trial spreads its trials over the nodes and finishes;
- a node killed while its trial runs: the trial is retried on the other node from its last
  checkpoint (``search.max_failures``), the search finishes, no finished trial is lost;
- a node killed as its trial ends, with the worker process Tune keeps for the node's next trial:
  the search finishes on the other node;
- the driver (``search run ... --address``) killed with SIGKILL mid-search: the same command again
  resumes it, and every finished trial is in the results and in MLflow exactly once.

Select with ``python -m pytest -m distributed``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.local_cluster import LocalCluster, trial_nodes

from search.results.records import load_records
from search.space import load_space

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 3


def _space_file(tmp_path: Path, name: str, num_trials: int, train_subset: int = 256, epochs: int = EPOCHS) -> Path:
    """A tiny space: one GPU per trial, a 16 px one-block model, a few hundred digits, two
    corruptions at two severities; every trial checkpoints after each of its epochs."""
    text = f"""
name: {name}
data: {{dataset: digits, image_size: 16, train_subset: {train_subset}, test_subset: 64}}
model:
  name: robust_vit
  patch_size: 4
  embed_dim: 16
  depth: 1
  num_heads: {{choice: [1, 2]}}
  mlp_ratio: {{choice: [1.0, 2.0]}}
  mixer: {{choice: [mlp, se]}}
train: {{epochs: {epochs}, batch_size: 64, lr: 0.003, augmentation: none}}
eval:
  corruptions: [gaussian_noise, contrast]
  severities: [1, 3]
  subset: 32
  cache_dir: {tmp_path / "cache"}
search: {{sampler: random, num_trials: {num_trials}, concurrency: 2, seed: 0, max_failures: 2}}
resources: {{cpus_per_trial: 1, gpus_per_trial: 1}}
storage: {tmp_path / "runs"}
"""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def cluster():
    """A head and two worker nodes of one GPU each; no Ray of an earlier test left connected."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    local = LocalCluster(gpu_nodes=2).start()
    try:
        yield local
    finally:
        local.shutdown()


def _epochs_on(rows: list[tuple[str, int | None]], ip: str) -> list[int]:
    return [e for node, e in rows if node == ip and e is not None]


def test_trials_spread_over_the_nodes(cluster: LocalCluster, tmp_path: Path) -> None:
    from search.tune.runner import run_search

    space = load_space(_space_file(tmp_path, "spread", num_trials=4))
    result = run_search(space, address=cluster.address)

    assert result.status == "finished"
    assert len(result.records) == 4
    assert all(r.status == "finished" and r.full_budget for r in result.records)
    nodes = trial_nodes(space.experiment_path)
    assert set(nodes) == {r.trial_id for r in result.records}
    # Each trial ran on one worker node from start to end; together they used both, never the head.
    used = {rows[0][0] for rows in nodes.values()}
    assert all(len({ip for ip, _ in rows}) == 1 for rows in nodes.values())
    assert used == set(cluster.worker_ips), f"trials ran on {used}, workers are {cluster.worker_ips}"
    # One worker process per node, reused by the node's next trials (Tune's reuse_actors).
    pids = _worker_pids(space.experiment_path)
    assert len(set(pids.values())) == 2, pids


def _worker_pids(experiment_path) -> dict[str, int]:
    """The process each trial ran in (Ray Tune stamps ``pid`` on every result)."""
    pids = {}
    for path in Path(experiment_path).glob("*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        pids[rows[0]["trial_id"]] = rows[-1]["pid"]
    return pids


def _search_killing_a_node(cluster: LocalCluster, space, when, seen: dict):
    """Run the search of ``space`` while a thread watches its records: at the first running or
    ended trial for which ``when(record)`` holds, the node it ran on is killed. ``seen`` gets that
    trial, its node's address and the finals of the trials finished by then."""
    from search.tune.runner import run_search

    run_folder, experiment = space.run_folder, space.experiment_path

    def kill_a_node() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not seen:
            for record in load_records(run_folder) if run_folder.exists() else []:
                rows = trial_nodes(experiment).get(record.trial_id, [])
                if rows and when(record):
                    seen["finished"] = {r.trial_id: r.final for r in load_records(run_folder) if r.status == "finished"}
                    seen["trial"], seen["ip"] = record.trial_id, rows[-1][0]
                    cluster.remove_node(seen["ip"])
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_node, daemon=True)
    killer.start()
    result = run_search(space, address=cluster.address)
    killer.join(timeout=5)
    return result


def test_lost_node_trial_resumes_elsewhere_from_its_checkpoint(cluster: LocalCluster, tmp_path: Path) -> None:
    # More epochs than the other tests: a wide window between a trial's first checkpoint and its
    # end, so the node can be caught busy however quiet the machine is, and the trial is still
    # running when its worker notices that its raylet is gone (Ray checks about once a second; the
    # driver talks to the worker directly, so a worker that finishes first finishes normally).
    epochs = 4 * EPOCHS
    space = load_space(_space_file(tmp_path, "lostnode", num_trials=3, train_subset=1024, epochs=epochs))
    experiment = space.experiment_path
    seen: dict = {}

    def busy(record) -> bool:
        """A trial that has checkpointed an epoch and has epochs to go: its node is killed."""
        return record.status == "running" and 1 <= len(record.history) < epochs - 1

    result = _search_killing_a_node(cluster, space, busy, seen)

    assert seen, "no trial was caught between its first checkpoint and its end"
    assert result.status == "finished"
    records = {r.trial_id: r for r in result.records}
    assert len(records) == 3 and all(r.status == "finished" and r.full_budget for r in records.values())
    # Nothing that had finished before the node went is lost or changed.
    for trial_id, final in seen["finished"].items():
        assert records[trial_id].final == final
    # The trial on the lost node went on elsewhere, from the epoch after its last checkpoint.
    rows = trial_nodes(experiment)[seen["trial"]]
    before = _epochs_on(rows, seen["ip"])
    others = {ip for ip, _ in rows} - {seen["ip"]}
    assert before and len(others) == 1, rows
    after = _epochs_on(rows, others.pop())
    assert 1 < after[0] <= before[-1] + 1, f"restarted at epoch {after[0]} after epochs {before}"
    assert [h["epoch"] for h in records[seen["trial"]].history] == list(range(1, epochs + 1))


def test_lost_node_as_its_trial_ends_the_search_goes_on_without_it(cluster: LocalCluster, tmp_path: Path) -> None:
    """The node goes as soon as its first trial has finished: the worker process that Tune kept
    for the node's next trial is gone with it, and that trial is retried on a new worker on the
    other node."""
    space = load_space(_space_file(tmp_path, "endnode", num_trials=5))
    seen: dict = {}
    result = _search_killing_a_node(cluster, space, lambda record: record.status == "finished", seen)

    assert seen, "no trial finished"
    assert result.status == "finished"
    assert len(result.records) == 5
    for record in result.records:
        assert record.status == "finished" and record.full_budget, (record.trial_id, record.status, record.error)
        assert [h["epoch"] for h in record.history] == list(range(1, EPOCHS + 1))


def _search_run(space_file: Path, address: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the run folder's own SQLite store
    return subprocess.Popen(
        [sys.executable, "-m", "search", "run", str(space_file), "--address", address],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_killed_driver_resumes_with_every_finished_trial_once(cluster: LocalCluster, tmp_path: Path) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    space_file = _space_file(tmp_path, "killed", num_trials=4)
    space = load_space(space_file)
    run_folder = space.run_folder

    first = _search_run(space_file, cluster.address, tmp_path)
    deadline = time.monotonic() + 240
    finished: dict = {}
    while time.monotonic() < deadline and first.poll() is None:
        if run_folder.exists():
            finished = {r.trial_id: r.final for r in load_records(run_folder) if r.status == "finished"}
            if finished:
                break
        time.sleep(0.1)
    assert finished, f"no trial finished before the first driver ended:\n{first.communicate()[0][-3000:]}"
    assert first.poll() is None, "the first driver ended before it could be killed"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert len(finished) < 4, "every trial finished before the driver was killed"

    second = _search_run(space_file, cluster.address, tmp_path)
    output = second.communicate(timeout=300)[0]
    assert second.returncode == 0, output[-3000:]
    assert "resuming" in output

    records = load_records(run_folder)
    assert sorted(r.trial_id for r in records) == sorted(set(trial_nodes(space.experiment_path)))
    assert len(records) == 4 and all(r.status == "finished" for r in records)
    by_id = {r.trial_id: r for r in records}
    for trial_id, final in finished.items():
        assert by_id[trial_id].final == final  # kept, not run again

    # The Optuna study holds each trial that ran once (no second `tell` after the resume; samples
    # that repeat an evaluated configuration are told from it and marked `duplicate_of`).
    study = optuna.load_study(study_name=space.name, storage=f"sqlite:///{run_folder / 'optuna.db'}")
    ran = [t for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)) if "duplicate_of" not in t.user_attrs]
    assert len(ran) == 4, [(t.number, t.params, t.user_attrs) for t in study.trials]

    client = MlflowClient(f"sqlite:///{run_folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(space.name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r.data.tags.get("trial_id") for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1, [r.info.run_id for r in parents]
    assert sorted(children) == sorted(by_id), "each trial has exactly one child run"
