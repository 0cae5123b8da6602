"""MO-ASHA in a real search (local Ray, Optuna, MLflow SQLite): judged at rungs, stopped, recorded.

One search of 6 tiny trials (digits at 16 px, 3 epochs, rungs at epochs 1 and 2, one trial at a
time so that the order of rung results is the order of the trials) serves every test of the module.
"""

from __future__ import annotations

import faulthandler
import io
import math
import textwrap

import optuna
import pytest

from search import cli
from search.results.records import load_records
from search.space import load_space
from search.trial.rungs import RUNG_TIME, RUNG_TOTAL_TIME, rung_key
from search.tune.runner import run_search
from search.tune.schedulers.mo_asha import CONTINUE, STOP, MOASHARule
from search.tune.searcher import RUNG_VALUES_ATTR, STOP_EPOCH_ATTR

pytestmark = pytest.mark.slow
HANG_S = 420  # the search takes about a minute on 2 shared cores: past this, it hangs

SPACE = """\
name: moasha
data: {{dataset: digits, image_size: 16, train_subset: 160, test_subset: 60}}
model: {{patch_size: 4, embed_dim: 16, depth: 1, num_heads: {{choice: [1, 2]}}, mixer: {{choice: [mlp, se, fan]}}}}
train: {{epochs: 3, batch_size: 32, lr: {{choice: [1.0e-6, 0.003, 0.01]}}, scheduler: none}}
eval: {{corruptions: [contrast, gaussian_noise], severities: [2, 4], subset: 30, rung_subset: 12, cache_dir: {cache}}}
search: {{sampler: random, num_trials: 6, concurrency: 1, seed: 3, scheduler: {{type: mo_asha, grace_period: 1, reduction_factor: 2}}}}
resources: {{cpus_per_trial: 1, num_cpus: 1}}
storage: {storage}
"""
RUNGS = (1, 2)


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    root = tmp_path_factory.mktemp("moasha")
    path = root / "moasha.yaml"
    path.write_text(textwrap.dedent(SPACE.format(cache=root / "cache", storage=root / "runs")))
    space = load_space(path)
    out = io.StringIO()
    faulthandler.dump_traceback_later(HANG_S, exit=True)  # a hang ends the test run with every stack
    try:
        result = run_search(space, stream=out)
    finally:
        faulthandler.cancel_dump_traceback_later()
    return space, result, out.getvalue()


def test_trials_are_judged_at_every_rung_and_the_stopped_ones_recorded(search):
    space, result, out = search
    records = load_records(result.run_folder)
    assert result.status == "finished" and len(records) == 6
    stopped = [r for r in records if r.status == "stopped"]
    assert stopped and len(stopped) < 6, [(r.trial_id, r.status) for r in records]
    for r in records:
        for h in r.history:
            rung = h["epoch"] in RUNGS
            assert (rung_key("mce") in h) == rung and (rung_key("clean_accuracy") in h) == rung
            if rung:
                assert math.isfinite(h[rung_key("mce")]) and h[RUNG_TIME] > 0
                # judge() measures clean accuracy on the judged set's own images: the 12 of the rung set
                assert h[rung_key("clean_accuracy")] * 12 / 100 == pytest.approx(round(h[rung_key("clean_accuracy")] * 12 / 100))
    for r in stopped:
        assert r.stop_epoch in RUNGS and [h["epoch"] for h in r.history][-1] == r.stop_epoch
        assert not r.final and not r.full_budget
    for r in records:
        if r.status == "finished":
            assert r.full_budget and r.final[RUNG_TOTAL_TIME] > 0 and r.stop_epoch is None
    assert not {r.trial_id for r in stopped} & {r.trial_id for r in result.front}
    assert f"{len(stopped)} stopped early" in out and f"stopped early: {len(stopped)} trial(s)" in out
    assert "rung vs final rank correlation" in out and "epoch 1: clean_accuracy" in out


def test_the_decisions_are_the_rule_replayed_in_the_order_of_the_trials(search):
    from mlflow import MlflowClient

    space, result, _ = search
    # One trial at a time: the order the trials started in (their MLflow runs') is the order of results.
    client = MlflowClient(f"sqlite:///{result.run_folder / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(space.name).experiment_id],
                              filter_string="tags.`search.role` = 'trial'", order_by=["attributes.start_time ASC"])
    started = [run.data.tags["trial_id"] for run in runs]
    rule = MOASHARule(space.directions, 1, 2, 3)
    for r in sorted(load_records(result.run_folder), key=lambda r: started.index(r.trial_id)):
        for h in r.history:
            if h["epoch"] in RUNGS:
                decision = rule.decide(r.trial_id, int(h["epoch"]), [h[rung_key(m)] for m in space.metrics])
                assert decision == (STOP if r.stop_epoch == h["epoch"] else CONTINUE), (r.trial_id, h["epoch"])


def test_optuna_is_told_pruned_with_the_stop_epoch_and_rung_values(search):
    space, result, _ = search
    study = optuna.load_study(study_name=space.name, storage=f"sqlite:///{result.run_folder / 'optuna.db'}")
    records = load_records(result.run_folder)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    stopped = [t for t in pruned if STOP_EPOCH_ATTR in t.user_attrs]
    assert len([t for t in stopped if "duplicate_of" not in t.user_attrs]) == sum(r.status == "stopped" for r in records)
    for t in stopped:
        assert t.values is None and t.user_attrs[STOP_EPOCH_ATTR] in RUNGS and len(t.user_attrs[RUNG_VALUES_ATTR]) == 2
    assert all("duplicate_of" in t.user_attrs for t in pruned if t not in stopped)  # repeats of finished ones
    assert {tuple(t.values) for t in study.best_trials} <= {
        (r.final["clean_accuracy"], r.final["mce"]) for r in records if r.status == "finished"}


def test_mlflow_shows_status_stop_epoch_rung_metrics_and_the_correlations(search, capsys):
    from mlflow import MlflowClient

    space, result, _ = search
    client = MlflowClient(f"sqlite:///{result.run_folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name(space.name)
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("search.role") == "parent")
    children = {r.data.tags["trial_id"]: r for r in runs if r.data.tags.get("search.role") == "trial"}
    for record in load_records(result.run_folder):
        run = children[record.trial_id]
        assert run.data.tags["trial_status"] == record.status
        history = client.get_metric_history(run.info.run_id, "rung/mce")
        assert sorted(m.step for m in history) == [e for e in RUNGS if e <= (record.stop_epoch or 3)]
        if record.status == "stopped":
            assert run.data.tags["stop_epoch"] == str(record.stop_epoch)
            assert run.data.tags.get("pareto") != "true"
    assert "rung_correlations" in parent.data.tags
    steps = client.get_metric_history(parent.info.run_id, "rung_spearman/mce")
    assert {m.step for m in steps} <= set(RUNGS)
    assert cli.main(["pareto", str(result.run_folder)]) == 0
    out = capsys.readouterr().out
    assert "rung vs final rank correlation" in out and "epoch" in out
