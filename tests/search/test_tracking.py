"""MLflow tracking of a search against a real ``mlflow server`` on 127.0.0.1 and the local SQLite store:
nesting, tags, params, curves, artifacts, the Pareto front, resume and sync without duplicates."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import pytest
from mlflow import MlflowClient
from tracking_support import free_port, make_record, search_runs, shared_server, write_space

from search.cli import main
from search.errors import UserError
from search.results.pareto import hypervolume, non_dominated
from search.tracking import SearchTracker, read_front, resolve_tracking_uri, sync
from search.tracking.store import make_client

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    return shared_server(tmp_path_factory.getbasetemp() / "mlflow-server")


def _records():
    """Six trials: a front of three, a dominated one, a failed one and an early-stopped one."""
    return [
        make_record("t_00000", 90.0, 80.0, mixer="mlp", num_heads=2, adl_weight=0.0),
        make_record("t_00001", 85.0, 70.0, mixer="se", num_heads=4, adl_weight=0.1),
        make_record("t_00002", 80.0, 75.0, mixer="fan", num_heads=2, adl_weight=0.1),
        make_record("t_00003", 70.0, 60.0, mixer="fan", num_heads=4, adl_weight=0.0),
        make_record("t_00004", 0.0, 0.0, status="failed", epochs=1, full_budget=False, mixer="se",
                    error="RuntimeError: loss is NaN at epoch 1"),
        make_record("t_00005", 95.0, 50.0, status="stopped", epochs=1, full_budget=False, mixer="mlp"),
    ]


def _log_live(tracker: SearchTracker, run_folder, records) -> None:
    """What the Tune callback does: the trial saves its record after every epoch, the tracker logs it."""
    for record in records:
        final, status, full = record.final, record.status, record.full_budget
        for epochs in range(1, len(record.history) + 1):
            partial = type(record)(record.trial_id, "running", record.params, record.history[:epochs])
            partial.save(run_folder)
            tracker.log_trial(record.trial_id)
        record.final, record.status, record.full_budget = final, status, full
        record.save(run_folder)
        tracker.log_trial(record.trial_id)


def _history_lengths(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_tracking_uri_default_and_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert resolve_tracking_uri(tmp_path) == "http://127.0.0.1:1"
    assert resolve_tracking_uri(tmp_path, "http://example.invalid:5000") == "http://example.invalid:5000"


def test_unreachable_server_is_one_clear_line_and_fast(tmp_path):
    space = write_space(tmp_path / "run", "unreachable")
    tracker = SearchTracker(tmp_path / "run", space, f"http://127.0.0.1:{free_port()}")
    start = time.monotonic()
    with pytest.raises(UserError) as info:
        tracker.check_reachable()
    assert time.monotonic() - start < 15  # no minutes of retries before the search can report it
    message = str(info.value)
    assert "cannot reach the MLflow tracking store 'http://127.0.0.1:" in message and "\n" not in message
    assert not (tmp_path / "run" / "trials").exists()


def test_search_is_nested_tagged_and_has_its_pareto_report(tmp_path, server):
    run_folder = tmp_path / "nested"
    space = write_space(run_folder, "nested")
    tracker = SearchTracker(run_folder, space, server.url)
    tracker.check_reachable()
    parent_id = tracker.start()
    records = _records()
    _log_live(tracker, run_folder, records)
    assert tracker.finish("finished") is True
    assert tracker.ui_hint() == (f"MLflow: {server.url}/#/experiments/{tracker._experiment_id}/runs/{parent_id}"
                                 "?workflowType=machine_learning")  # the runs, not MLflow's GenAI pages

    client = MlflowClient(server.url)
    parents, children = search_runs(server.url, "nested")
    assert [p.info.run_id for p in parents] == [parent_id]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["space"] == "nested" and tags["sampler"] == "nsga2" and tags["search_status"] == "finished"
    assert json.loads(tags["objectives"]) == [
        {"metric": "clean_accuracy", "direction": "max"}, {"metric": "mce", "direction": "min"}]
    assert parent.data.params["search.sampler"] == "nsga2" and parent.data.params["train.epochs"] == "2"
    copy = client.download_artifacts(parent_id, "space/space.yaml", str(tmp_path))
    assert open(copy).read() == (run_folder / "space.yaml").read_text()

    # One child per trial, nested under the parent, keyed by trial id.
    by_trial = {c.data.tags["trial_id"]: c for c in children}
    assert sorted(by_trial) == [r.trial_id for r in records]
    assert all(c.data.tags["mlflow.parentRunId"] == parent_id for c in children)
    first = by_trial["t_00000"]
    assert first.data.params["mixer"] == "mlp" and first.data.params["tap_dilations"] == "[1, 2]"
    assert _history_lengths(client, first.info.run_id, "train_loss") == [1, 2]  # step = epoch, once each
    assert first.data.metrics["error/gaussian_noise/3"] == pytest.approx(13.0)
    assert first.data.metrics["clean_accuracy"] == 90.0 and first.data.metrics["ce/fog"] == 81.0
    failed = by_trial["t_00004"]
    assert failed.info.status == "FAILED" and failed.data.tags["trial_status"] == "failed"
    assert "loss is NaN" in failed.data.tags["failure_reason"]
    stopped = by_trial["t_00005"]
    assert stopped.data.tags["full_budget"] == "false" and "pareto" not in stopped.data.tags

    # The front: what search.results.pareto says about the full-budget trials, tagged on their runs.
    ranked = [r for r in records if r.status == "finished" and r.full_budget]
    points = [[r.final["clean_accuracy"], r.final["mce"]] for r in ranked]
    expected = sorted(ranked[i].trial_id for i in non_dominated(points, ["max", "min"]))
    assert expected == ["t_00000", "t_00001", "t_00003"]
    assert sorted(t for t, c in by_trial.items() if c.data.tags.get("pareto") == "true") == expected
    assert by_trial["t_00002"].data.tags["pareto"] == "false" and by_trial["t_00002"].data.tags["pareto_rank"] == "2"
    assert json.loads(tags["pareto_front"]) == expected

    # Hypervolume after each finished full-budget trial, with the reference fixed at the first.
    reference = json.loads(tags["hypervolume_reference"])
    assert reference == [0.0, 160.0]
    history = client.get_metric_history(parent_id, "hypervolume")
    assert [m.step for m in history] == [1, 2, 3, 4]
    assert history[-1].value == pytest.approx(hypervolume(points, ["max", "min"], reference))

    # Artifacts: CSV of every placed trial, PNG, self-contained HTML, importances.
    paths = {a.path for a in client.list_artifacts(parent_id, "pareto")}
    assert paths == {"pareto/pareto_front.csv", "pareto/pareto_front.png", "pareto/pareto_front.html"}
    local = client.download_artifacts(parent_id, "pareto", str(tmp_path / "dl"))
    rows = list(csv.DictReader(io.StringIO(open(f"{local}/pareto_front.csv").read())))
    assert [r["trial_id"] for r in rows if r["on_front"] == "True"] == ["t_00000", "t_00001", "t_00003"]
    assert {r["trial_id"] for r in rows} == {"t_00000", "t_00001", "t_00002", "t_00003", "t_00005"}
    assert open(f"{local}/pareto_front.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    html = open(f"{local}/pareto_front.html").read()
    assert not re.search(r"<script[^>]*\ssrc=", html) and len(html) > 1_000_000  # plotly.js inlined, nothing fetched
    imp = json.loads(open(client.download_artifacts(parent_id, "importance/param_importance.json", str(tmp_path))).read())
    assert set(imp["importance"]) == {"clean_accuracy", "mce"}
    assert set(imp["importance"]["mce"]) <= {"mixer", "num_heads", "adl_weight"}
    assert any(k.startswith("importance/mce/") for k in parent.data.metrics)

    # `search pareto` reads the same front back from MLflow.
    front = read_front("nested", tracking_uri=server.url)
    assert [r["trial_id"] for r in front.rows] == ["t_00000", "t_00001", "t_00003"]
    assert front.parent_run_id == parent_id


def test_resume_and_sync_never_duplicate(tmp_path, server):
    run_folder = tmp_path / "resume"
    space = write_space(run_folder, "resume")
    records = _records()[:3]
    first = SearchTracker(run_folder, space, server.url)
    parent_id = first.start()
    _log_live(first, run_folder, records)
    # The driver is SIGKILLed here: no finish(). The same command runs again with a new tracker.
    second = SearchTracker(run_folder, space, server.url)
    assert second.start() == parent_id
    assert MlflowClient(server.url).get_run(parent_id).info.status == "RUNNING"
    extra = make_record("t_00009", 60.0, 40.0, mixer="se")
    _log_live(second, run_folder, [*records, extra])  # Ray reports the kept trials again
    assert second.finish("finished")
    summary = sync(run_folder, server.url)  # and a sync on top, twice
    summary = sync(run_folder, server.url)
    assert summary.created == 0 and summary.trials == 4

    client = MlflowClient(server.url)
    parents, children = search_runs(server.url, "resume")
    assert [p.info.run_id for p in parents] == [parent_id] and parents[0].info.status == "FINISHED"
    assert sorted(c.data.tags["trial_id"] for c in children) == ["t_00000", "t_00001", "t_00002", "t_00009"]
    for child in children:
        assert _history_lengths(client, child.info.run_id, "train_loss") == [1, 2]
        assert len(client.get_metric_history(child.info.run_id, "clean_accuracy")) == 1
    steps = [m.step for m in client.get_metric_history(parent_id, "hypervolume")]
    assert steps == [1, 2, 3, 4]
    assert sorted(summary.front) == ["t_00000", "t_00001", "t_00009"]


def test_interrupted_search_ends_killed_and_resumes_on_the_local_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_folder = tmp_path / "local"
    space = write_space(run_folder, "local")
    tracker = SearchTracker(run_folder, space)
    assert tracker.uri == f"sqlite:///{run_folder.resolve()}/mlflow.db"
    assert f"cd {run_folder.resolve()} && mlflow ui --backend-store-uri sqlite:///mlflow.db" in tracker.ui_hint()
    parent_id = tracker.start()
    done = make_record("t_00000", 80.0, 70.0)
    running = make_record("t_00001", 0.0, 0.0, status="running", epochs=1)
    _log_live(tracker, run_folder, [done, running])
    assert tracker.finish("interrupted")

    client = MlflowClient(tracker.uri)
    parent = client.get_run(parent_id)
    assert parent.info.status == "KILLED" and parent.data.tags["search_status"] == "interrupted"
    _, children = search_runs(tracker.uri, "local")
    status = {c.data.tags["trial_id"]: c.info.status for c in children}
    assert status == {"t_00000": "FINISHED", "t_00001": "KILLED"}
    # Artifacts of the local store live in the run folder, beside mlflow.db.
    assert (run_folder / "mlartifacts").is_dir()
    assert list((run_folder / "mlartifacts").rglob("pareto_front.png"))

    resumed = SearchTracker(run_folder, space)
    assert resumed.start() == parent_id
    finished = make_record("t_00001", 75.0, 60.0)
    finished.save(run_folder)
    resumed.log_trial("t_00001")
    assert resumed.finish("finished")
    assert client.get_run(parent_id).info.status == "FINISHED"
    _, children = search_runs(tracker.uri, "local")
    assert len(children) == 2
    assert {c.data.tags["trial_id"]: c.info.status for c in children} == {"t_00000": "FINISHED", "t_00001": "FINISHED"}


def test_cli_sync_then_pareto_in_every_format(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_folder = tmp_path / "runs" / "clisync"
    write_space(run_folder, "clisync")
    for record in _records():
        record.save(run_folder)
    assert main(["sync", str(run_folder)]) == 0
    out = capsys.readouterr().out
    assert "6 trial record(s), 6 new child run(s)" in out and "t_00000, t_00001, t_00003" in out
    assert main(["sync", str(run_folder)]) == 0
    assert "0 new child run(s)" in capsys.readouterr().out
    _, children = search_runs(f"sqlite:///{run_folder.resolve()}/mlflow.db", "clisync")
    assert len(children) == 6

    assert main(["pareto", str(run_folder), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["trial_id"] for r in data["front"]] == ["t_00000", "t_00001", "t_00003"]
    assert [r["mce"] for r in data["front"]] == [80.0, 70.0, 60.0]
    monkeypatch.chdir(tmp_path)  # the default store runs/<EXPERIMENT>/mlflow.db
    assert main(["pareto", "clisync", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("trial_id,pareto_rank,clean_accuracy,mce") and len(lines) == 4
    assert main(["pareto", "clisync"]) == 0
    table = capsys.readouterr().out
    assert "3 trial(s)" in table and "t_00003" in table and "t_00002" not in table

    assert main(["pareto", "no_such_space"]) == 2
    assert "no MLflow store for experiment 'no_such_space'" in capsys.readouterr().err
    assert main(["sync", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["sync", str(tmp_path / "empty")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_importance_comes_from_the_search_optuna_study(tmp_path, monkeypatch):
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_folder = tmp_path / "study"
    space = write_space(run_folder, "study")
    study = optuna.create_study(study_name="study", storage=f"sqlite:///{run_folder / 'optuna.db'}",
                                directions=["maximize", "minimize"])
    dists = {"mixer": CategoricalDistribution(["mlp", "se", "fan"]), "lr": FloatDistribution(1e-4, 1e-2)}
    for i, (mixer, acc, mce) in enumerate([("mlp", 90, 80), ("se", 60, 70), ("fan", 91, 79), ("se", 62, 71)]):
        study.add_trial(optuna.trial.create_trial(params={"mixer": mixer, "lr": 1e-3 * (i + 1)},
                                                  distributions=dists, values=[acc, mce]))
        make_record(f"t_{i}", acc, mce, mixer=mixer).save(run_folder)
    tracker = SearchTracker(run_folder, space)
    assert tracker.finish("finished")
    parent = MlflowClient(tracker.uri).get_run(tracker.parent_run_id)
    assert parent.data.tags["importance_source"] == "optuna.db"
    # The study's own parameter names (lr is not a TrialRecord param): read from optuna.db indeed.
    assert {"importance/clean_accuracy/lr", "importance/mce/mixer"} <= set(parent.data.metrics)


def test_mlflow_names_are_valid_and_stable():
    from mlflow.utils.validation import _validate_metric_name

    from search.tracking.names import mlflow_key

    assert mlflow_key("error/gaussian_noise/3") == "error/gaussian_noise/3"  # valid already: unchanged
    for key in ("acc@1 (top)", "a//b", "../up", "x/./y", "trailing/", "ünïcode/ε", "a" * 300):
        name = mlflow_key(key)
        _validate_metric_name(name)  # raises when MLflow would refuse the name
        assert mlflow_key(name) == name


def test_front_pictures_are_drawn_live_at_most_every_interval_and_always_at_the_end(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    records = _records()[:4]

    # Within the first interval: the ranks are tagged live, the table and pictures wait for the end.
    slow = SearchTracker(tmp_path / "slow", write_space(tmp_path / "slow", "slow"))
    parent_id = slow.start()
    _log_live(slow, tmp_path / "slow", records)
    client = make_client(slow.uri)  # artifacts of a local store are the run folder's own (tracking/artifacts.py)
    assert client.list_artifacts(parent_id, "pareto") == []
    _, children = search_runs(slow.uri, "slow")
    assert sorted(c.data.tags["trial_id"] for c in children if c.data.tags.get("pareto") == "true") == [
        "t_00000", "t_00001", "t_00003"]
    assert slow.finish("finished")
    paths = {a.path for a in client.list_artifacts(parent_id, "pareto")}
    assert paths == {"pareto/pareto_front.csv", "pareto/pareto_front.png", "pareto/pareto_front.html"}

    # Once the interval has passed, a new front is drawn while the search runs.
    monkeypatch.setattr(SearchTracker, "report_interval_s", 0.0)
    live = SearchTracker(tmp_path / "live", write_space(tmp_path / "live", "live"))
    parent_id = live.start()
    _log_live(live, tmp_path / "live", records[:1])
    assert {a.path for a in make_client(live.uri).list_artifacts(parent_id, "pareto")} == paths
