"""End to end: a real search (real Ray, real Optuna, real models and corruptions) on a tiny budget.

One local Ray serves the whole module. The space mixes configurations that train and judge with
one whose loss diverges (a learning rate of 1e30: the loss is NaN by the second step), so
one search shows finished trials, a failed trial with its reason, and the search going on.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import optuna
import pytest
import torch

from search.results.records import load_records
from search.space import load_space
from search.tune.runner import run_search

pytestmark = pytest.mark.slow

SPACE = """\
name: e2e
data: {{dataset: digits, image_size: 16, train_subset: 160, test_subset: 60}}
model:
  patch_size: 2
  embed_dim: 16
  depth: 1
  num_heads: {{choice: [1, 2]}}
  mlp_ratio: 1.0
  mixer: {{choice: [mlp, fan]}}
  tap: {{choice: [false, true]}}
  tap_dilations: [1, 2]
train: {{epochs: 1, batch_size: 64, lr: {{choice: [0.003, 1.0e+30]}}, adl_weight: {{choice: [0.0, 1.0]}}, augmentation: randaug_lite}}
eval: {{corruptions: [gaussian_noise, fog], severities: [1, 3], subset: 24, cache_dir: {cache}, batch_size: 64}}
search: {{sampler: random, num_trials: 4, concurrency: 2, seed: 1}}
resources: {{cpus_per_trial: 1}}
storage: {storage}
"""


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def finished_search(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    path = root / "e2e.yaml"
    path.write_text(textwrap.dedent(SPACE.format(cache=root / "cache", storage=root / "runs")))
    space = load_space(path)
    out = io.StringIO()
    result = run_search(space, stream=out)
    return space, result, out.getvalue()


def _dominated(p, q, directions) -> bool:
    """q dominates p (brute force, written independently of search.results.pareto)."""
    better_or_equal = all((b >= a) if d == "max" else (b <= a) for a, b, d in zip(p, q, directions, strict=True))
    strictly = any((b > a) if d == "max" else (b < a) for a, b, d in zip(p, q, directions, strict=True))
    return better_or_equal and strictly


def test_trials_run_and_report_every_objective(finished_search):
    space, result, out = finished_search
    assert result.status == "finished" and not result.resumed
    records = load_records(result.run_folder)
    assert len(records) == 4 and {r.trial_id for r in records} == {r.trial_id for r in result.records}
    for r in records:
        if r.params["lr"] > 1:  # diverges: fails with its reason, and the search goes on
            assert r.status == "failed" and "TrialDiverged" in r.error and "nan" in r.error.lower()
            continue
        assert r.status == "finished" and r.full_budget and r.error is None
        for metric in ("clean_accuracy", "mce", "retention", "ce/fog", "error/gaussian_noise/3", "params_m"):
            assert math.isfinite(r.final[metric]), metric
        assert 0.0 <= r.final["clean_accuracy"] <= 100.0
        assert [h["epoch"] for h in r.history] == [1.0]
        assert r.params.get("tap_dilations") == ([1, 2] if r.params["tap"] else None)  # only what applies
    assert {r.status for r in records} == {"finished", "failed"}  # seed 1 draws both kinds
    assert "Pareto front" in out and "done" in out  # the live view and the table went to the stream
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in out  # and where to look next
    # When the trials ran, within Tuner.fit: the first one started, the last one ended.
    timings = result.timings
    assert 0 < timings["first_trial_s"] and 0 < timings["trials_span_s"]
    assert timings["first_trial_s"] + timings["trials_span_s"] <= timings["fit_s"]
    assert timings["trials_span_s"] >= max(r.final["trial_time_s"] for r in records if r.status == "finished")


def test_pareto_front_is_exactly_the_non_dominated_finished_trials(finished_search):
    space, result, out = finished_search
    finished = [r for r in load_records(result.run_folder) if r.status == "finished" and r.full_budget]
    points = {r.trial_id: [r.final[m] for m in space.metrics] for r in finished}
    expected = {
        t for t, p in points.items()
        if not any(_dominated(p, q, space.directions) for u, q in points.items() if u != t)
    }
    assert {r.trial_id for r in result.front} == expected and expected
    for r in result.front:
        assert r.trial_id in out


def test_optuna_study_holds_every_trial_with_its_state_and_values(finished_search):
    space, result, _ = finished_search
    study = optuna.load_study(study_name=space.name, storage=f"sqlite:///{result.run_folder / 'optuna.db'}")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    real = [t for t in study.trials if "duplicate_of" not in t.user_attrs]
    assert len(real) == 4
    values = sorted(tuple(t.values) for t in real if t.state == optuna.trial.TrialState.COMPLETE)
    records = load_records(result.run_folder)
    assert values == sorted((r.final["clean_accuracy"], r.final["mce"]) for r in records if r.status == "finished")
    failed = [t for t in real if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == sum(r.status == "failed" for r in records)


def test_a_checkpoint_rebuilds_its_model_alone(finished_search):
    from search.trial.checkpoint import TENSORS_FILE, load_trial_checkpoint

    space, result, _ = finished_search
    finished = next(r for r in load_records(result.run_folder) if r.status == "finished")
    files = list(Path(space.experiment_path).glob(f"*{finished.trial_id}*/checkpoint_*/{TENSORS_FILE}"))
    assert len(files) == 1  # CheckpointConfig(num_to_keep=1): the last one, made after judging
    spec, model, meta = load_trial_checkpoint(files[0].parent)
    assert spec.to_flat_dict() == finished.params and meta["final"]["mce"] == finished.final["mce"]
    logits = model.eval()(torch.rand(2, 3, spec.model.img_size, spec.model.img_size))
    assert logits.shape == (2, 10)


def test_running_a_finished_search_again_keeps_everything(finished_search):
    space, result, _ = finished_search
    before = {r.trial_id: r for r in load_records(result.run_folder)}
    again = run_search(space, stream=io.StringIO())
    assert again.resumed and again.status == "finished"
    after = {r.trial_id: r for r in load_records(result.run_folder)}
    assert after.keys() == before.keys()
    assert all(after[t].final == before[t].final and after[t].history == before[t].history for t in before)


ASHA_SPACE = """\
name: asha
data: {{dataset: digits, image_size: 16, train_subset: 160, test_subset: 60}}
model: {{patch_size: 4, embed_dim: 16, depth: 1, num_heads: {{choice: [1, 2]}}, mixer: {{choice: [mlp, se]}}}}
train: {{epochs: 3, batch_size: 32, lr: {{choice: [1.0e-7, 0.01]}}, scheduler: none}}
objectives: [{{metric: train_loss, direction: min}}, {{metric: mce, direction: min}}]
eval: {{corruptions: [contrast], severities: [2], subset: 16, cache_dir: {cache}}}
search: {{sampler: random, num_trials: 4, concurrency: 1, seed: 2, scheduler: {{type: asha, grace_period: 1, reduction_factor: 2}}}}
storage: {storage}
"""


def test_asha_stops_weak_trials_before_judging_them(ray_local, tmp_path):
    """ASHA ranks on the first objective, the training loss: a learning rate of 1e-7 cannot keep
    up with 0.01, and a trial stopped at a rung is recorded as stopped, pruned in Optuna and off
    the front."""
    path = tmp_path / "asha.yaml"
    path.write_text(textwrap.dedent(ASHA_SPACE.format(cache=tmp_path / "cache", storage=tmp_path / "runs")))
    space = load_space(path)
    result = run_search(space, stream=io.StringIO())
    records = load_records(result.run_folder)
    assert result.status == "finished" and len(records) == 4
    stopped = [r for r in records if r.status == "stopped"]
    assert stopped, [(r.params["lr"], r.status, r.history) for r in records]
    for r in stopped:
        assert not r.full_budget and not r.final and len(r.history) < 3
    assert all(r.status == "finished" and r.full_budget for r in records if r not in stopped)
    assert not {r.trial_id for r in stopped} & {r.trial_id for r in result.front}
    study = optuna.load_study(study_name="asha", storage=f"sqlite:///{result.run_folder / 'optuna.db'}")
    states = [t.state.name for t in study.trials if "duplicate_of" not in t.user_attrs]
    assert states.count("PRUNED") == len(stopped) and states.count("COMPLETE") == 4 - len(stopped)
