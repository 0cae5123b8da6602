"""A real (tiny) Ray Tune search logged live through the tracker's Tune callback while the real
``mlflow server`` goes away mid-run: the trials go on, the records stay in the run folder, and after
the server is back ``sync`` (and the tracker's own catch-up) log what is missing, exactly once."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import ray
from mlflow import MlflowClient
from ray import tune
from tracking_support import MlflowServer, make_record, search_runs, write_space

from search.results.pareto import non_dominated
from search.tracking import SearchTracker, sync

pytestmark = pytest.mark.slow

# (clean accuracy, mCE) of each trial; trial 1 fails after its first epoch. Few trials: on two shared
# cores each one costs Ray a worker start.
RESULTS = [(90.0, 80.0), (0.0, 0.0), (70.0, 60.0)]
FAILING = 1
_SERVERS: dict[str, MlflowServer] = {}  # callbacks are pickled by Tune: they look the server up by key


def trivial_trainable(config: dict) -> None:
    """Writes its TrialRecord after each epoch (as search/trial/train.py does) and reports to Tune."""
    trial_id = tune.get_context().get_trial_id()
    index = config["index"]
    acc, mce = RESULTS[index]
    epochs = 1 if index == FAILING else 2
    full = make_record(trial_id, acc, mce, epochs=epochs, mixer=["mlp", "se", "fan"][index % 3])
    for epoch in range(1, epochs + 1):
        running = type(full)(trial_id, "running", full.params, full.history[:epoch])
        running.save(config["run_folder"])
        tune.report({"epoch": epoch, "train_loss": full.history[epoch - 1]["train_loss"]})
    if index == FAILING:
        failed = type(full)(trial_id, "failed", full.params, full.history, {}, "RuntimeError: loss is NaN", False)
        failed.save(config["run_folder"])
        raise RuntimeError("loss is NaN")
    full.save(config["run_folder"])
    tune.report({"epoch": epochs, "clean_accuracy": acc, "mce": mce})


class StopServerAfterFirstTrial(tune.Callback):
    """Stops the tracking server once the first trial has completed (and been logged)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.completed = 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.completed += 1
        if self.completed == 1:
            _SERVERS[self.key].stop()


@pytest.fixture
def ray_one_cpu(monkeypatch):
    # Ray's workers import this module (the trainable lives here): they inherit PYTHONPATH.
    here, root = Path(__file__).resolve().parent, Path(__file__).resolve().parents[2]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(here), str(root), os.environ.get("PYTHONPATH")])))
    # address="local": always a fresh cluster of our own, never one another test left running.
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def server(tmp_path):
    srv = MlflowServer(tmp_path / "server").start()  # before Ray: the two starts do not compete
    yield srv
    srv.stop()


def test_outage_mid_search_then_sync_logs_every_trial_exactly_once(tmp_path, server, ray_one_cpu, caplog):
    _SERVERS["outage"] = server
    try:
        run_folder = tmp_path / "runs" / "outage"
        space = write_space(run_folder, "outage")
        tracker = SearchTracker(run_folder, space, server.url)
        tracker.retry_interval_s = 0.0  # try at every event: each try must fail fast, not hang
        tracker.check_reachable()

        tuner = tune.Tuner(
            trivial_trainable,
            param_space={"index": tune.grid_search(list(range(len(RESULTS)))), "run_folder": str(run_folder)},
            tune_config=tune.TuneConfig(max_concurrent_trials=1),
            run_config=tune.RunConfig(
                name="outage",
                storage_path=str(tmp_path / "ray"),
                callbacks=[tracker.tune_callback(), StopServerAfterFirstTrial("outage")],
                failure_config=tune.FailureConfig(max_failures=0),
                verbose=0,
            ),
        )
        with caplog.at_level(logging.WARNING, logger="search.tracking"):
            results = tuner.fit()
            assert tracker.finish("finished") is False  # the server is still away
        assert len(results) == len(RESULTS) and sum(r.error is not None for r in results) == 1
        warnings = [r for r in caplog.records if r.name == "search.tracking" and "failed while" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]  # warned once for the whole outage
        assert "search sync" in warnings[0].getMessage()

        # Only the first trial reached MLflow before the outage.
        server.start()
        _, before = search_runs(server.url, "outage")
        assert len(before) == 1

        summary = sync(run_folder, server.url)
        assert summary.trials == len(RESULTS) and summary.created == len(RESULTS) - 1
        # The live tracker notices the server is back and catches up too: still nothing twice.
        tracker.log_trial(before[0].data.tags["trial_id"])
        assert sync(run_folder, server.url).created == 0

        client = MlflowClient(server.url)
        parents, children = search_runs(server.url, "outage")
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        assert parents[0].data.tags["search_status"] == "finished"
        trial_ids = sorted(r.metrics["trial_id"] for r in results)
        assert sorted(c.data.tags["trial_id"] for c in children) == trial_ids
        assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
        for child in children:
            steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "train_loss"))
            failed = child.data.tags["trial_status"] == "failed"
            assert steps == ([1] if failed else [1, 2]), child.data.tags["trial_id"]
            assert len(client.get_metric_history(child.info.run_id, "clean_accuracy")) == (0 if failed else 1)
            assert child.info.status == ("FAILED" if failed else "FINISHED")

        ok = [c for c in children if c.data.tags["trial_status"] == "finished"]
        points = [[c.data.metrics["clean_accuracy"], c.data.metrics["mce"]] for c in ok]
        front = sorted(ok[i].data.tags["trial_id"] for i in non_dominated(points, ["max", "min"]))
        assert sorted(c.data.tags["trial_id"] for c in children if c.data.tags.get("pareto") == "true") == front
        assert len(front) == 2
        assert [m.step for m in client.get_metric_history(parents[0].info.run_id, "hypervolume")] == [1, 2]
    finally:
        _SERVERS.pop("outage", None)
