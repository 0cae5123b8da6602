"""SpaceSearch: repeats of finished configurations are told from their twin and asked again, until
every configuration of a finite space has finished (then asking again is a wasted round trip); a
configuration that failed deterministically is not run again, one lost to Ray may be."""

from __future__ import annotations

import itertools
import pickle

import optuna
import pytest
import yaml

from search.space import parse_space
from search.space.sampling import SpaceSampler
from search.trial import protocol
from search.tune.searcher import DUPLICATE_ATTR, FAILED_ATTR, MAX_ASKS, REPEAT_VALUES_ATTR, SpaceSearch

SPACE = """
name: two
model: {name: robust_vit, mixer: {choice: [mlp, se]}}
search: {sampler: random, num_trials: 5, seed: 0}
"""


@pytest.fixture
def space():
    return parse_space(yaml.safe_load(SPACE), source="two.yaml")


class Scripted(optuna.samplers.RandomSampler):
    """Proposes the mixers it is given, in order."""

    def __init__(self, mixers) -> None:
        super().__init__(seed=0)
        self.mixers = iter(mixers)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return next(self.mixers)


def _searcher(space, tmp_path, mixers, space_size):
    return SpaceSearch(
        SpaceSampler.for_space(space, num_classes=10), metric=space.metrics, mode=space.directions,
        sampler=Scripted(mixers), study_name=space.name,
        storage=optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}"), space_size=space_size,
    )


def _run(searcher, space, trials: int) -> tuple[list[str], list[int]]:
    """Suggest and finish ``trials`` trials one after another; the mixers run and, for each
    suggestion, how many Optuna trials it asked for."""
    mixers, asks = [], []
    for i in range(trials):
        before = len(searcher.study.trials)
        config = searcher.suggest(f"t{i}")
        asks.append(len(searcher.study.trials) - before)
        mixers.append(config["mixer"])
        result = {m: (90.0 if config["mixer"] == "mlp" else 80.0) + i for m in space.metrics}
        result |= {protocol.JUDGED: True, protocol.FULL_BUDGET: True}  # a final result (not a rung's)
        searcher.on_trial_complete(f"t{i}", result=result)
    return mixers, asks


def test_a_finished_configuration_is_not_run_again_while_others_remain(space, tmp_path):
    assert space.size() == 2
    mixers, asks = _run(_searcher(space, tmp_path, ["mlp", "mlp", "mlp", "se"], space.size()), space, 2)
    assert mixers == ["mlp", "se"] and asks == [1, 3]
    study = optuna.load_study(study_name="two", storage=f"sqlite:///{tmp_path / 'study.db'}")
    repeats = [t for t in study.trials if DUPLICATE_ATTR in t.user_attrs]
    assert [t.number for t in repeats] == [1, 2]  # kept, with the values of trial 0, their twin, as an attr
    assert all(t.user_attrs[DUPLICATE_ATTR] == 0 and t.user_attrs[REPEAT_VALUES_ATTR] == study.trials[0].values
               for t in repeats)
    # ... but not as trials of their own: the study's front holds each result once (no second "best").
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in repeats)
    assert [t.number for t in study.best_trials] == [0, 3]


def test_an_exhausted_space_takes_the_first_suggestion(space, tmp_path):
    mixers, asks = _run(_searcher(space, tmp_path, ["mlp", "se"] + ["mlp"] * 3, space.size()), space, 5)
    assert mixers == ["mlp", "se", "mlp", "mlp", "mlp"]
    assert asks == [1, 1, 1, 1, 1]  # both configurations had finished: a repeat is all there is


def test_without_its_size_an_exhausted_space_asks_up_to_the_limit(space, tmp_path):
    _, asks = _run(_searcher(space, tmp_path, itertools.cycle(["mlp", "se"]), None), space, 3)
    assert asks == [1, 1, MAX_ASKS]


def _study(tmp_path) -> optuna.Study:
    return optuna.load_study(study_name="two", storage=f"sqlite:///{tmp_path / 'study.db'}")


def test_a_configuration_that_failed_deterministically_is_not_run_again(space, tmp_path):
    # Duplicates used to be matched against finished trials only: a build error or a divergence was
    # trained again (and failed again) each time the sampler proposed it.
    searcher = _searcher(space, tmp_path, ["mlp", "mlp", "se"], space.size())
    assert searcher.suggest("t0")["mixer"] == "mlp"
    searcher.on_trial_complete("t0", result={protocol.FAILED: 1, protocol.ERROR: "TrialDiverged: the loss is nan"})
    assert searcher.suggest("t1")["mixer"] == "se"  # the repeat of the failure was not handed to Ray
    failed, repeat, _ = _study(tmp_path).trials
    assert failed.state == repeat.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs[FAILED_ATTR] == repeat.user_attrs[FAILED_ATTR] == "TrialDiverged: the loss is nan"
    assert repeat.user_attrs[DUPLICATE_ATTR] == failed.number and DUPLICATE_ATTR not in failed.user_attrs


def test_a_configuration_lost_to_ray_may_run_again(space, tmp_path):
    searcher = _searcher(space, tmp_path, ["mlp", "mlp"], space.size())
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", error=True)  # the trial errored in Ray (a lost node): no verdict
    assert searcher.suggest("t1")["mixer"] == "mlp"
    errored, again = _study(tmp_path).trials
    assert errored.state == optuna.trial.TrialState.FAIL and FAILED_ATTR not in errored.user_attrs
    assert DUPLICATE_ATTR not in again.user_attrs


def test_a_stopped_trial_is_pruned_with_its_rung_values_even_when_they_cover_every_objective(space, tmp_path):
    from search.trial.rungs import rung_key
    from search.tune.searcher import RUNG_VALUES_ATTR, STOP_EPOCH_ATTR

    # Its last result is a rung result: every objective under rung/..., and clean_accuracy (an
    # objective) as every epoch reports it. Told as COMPLETE, its rung values would pass for final ones.
    searcher = _searcher(space, tmp_path, ["mlp", "mlp", "se", "se"], space.size())
    searcher.suggest("t0")
    last = {protocol.EPOCH: 1, "clean_accuracy": 61.0, "mce": 88.0, rung_key("clean_accuracy"): 61.0,
            rung_key("mce"): 88.0}
    searcher.on_trial_complete("t0", result=last)
    # Its repeat is not run: PRUNED like its twin, with the twin's stop epoch and rung values.
    assert searcher.suggest("t1")["mixer"] == "se"
    stopped, repeat, _ = _study(tmp_path).trials
    assert stopped.state == repeat.state == optuna.trial.TrialState.PRUNED and stopped.values is None
    assert stopped.user_attrs[STOP_EPOCH_ATTR] == repeat.user_attrs[STOP_EPOCH_ATTR] == 1
    assert stopped.user_attrs[RUNG_VALUES_ATTR] == repeat.user_attrs[RUNG_VALUES_ATTR] == [61.0, 88.0]
    assert repeat.user_attrs[DUPLICATE_ATTR] == stopped.number
    # A finished trial is still told its final values; best_trials (the study's front) holds only it.
    searcher.on_trial_complete("t1", result={protocol.JUDGED: 1, protocol.EPOCH: 2, "clean_accuracy": 70.0, "mce": 80.0})
    assert [t.values for t in _study(tmp_path).best_trials] == [[70.0, 80.0]]


def test_tpe_takes_stopped_trials_as_the_bad_group_and_nsga2_ignores_them(space, tmp_path):
    """The consequences docs/spaces.md states: TPE splits COMPLETE trials first, PRUNED ones (no
    intermediate values in a multi-objective study) fill the 'above' (bad) group; NSGA-II's
    population is made of COMPLETE trials only."""
    from optuna.samplers._tpe.sampler import _split_trials

    study = optuna.create_study(directions=["maximize", "minimize"])
    dist = optuna.distributions.CategoricalDistribution(["mlp", "se"])
    for i, state in enumerate([optuna.trial.TrialState.COMPLETE] * 3 + [optuna.trial.TrialState.PRUNED] * 3):
        study.add_trial(optuna.trial.create_trial(
            params={"mixer": "mlp"}, distributions={"mixer": dist}, state=state,
            values=[70.0 + i, 80.0 - i] if state == optuna.trial.TrialState.COMPLETE else None))
    below, above = _split_trials(study, study.trials, n_below=2)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in below)
    assert sum(t.state == optuna.trial.TrialState.PRUNED for t in above) == 3
    # NSGA-II (population 2): two stopped trials do not make a generation, two finished ones do.
    nsga = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.NSGAIISampler(
        population_size=2, seed=0))
    for _ in range(2):
        t = nsga.ask({"mixer": dist})
        nsga.tell(t, state=optuna.trial.TrialState.PRUNED)
    generation = nsga.sampler._get_generation_key()
    nsga.tell(nsga.ask({"mixer": dist}), [70.0, 80.0])
    assert nsga.trials[-1].system_attrs[generation] == 0
    nsga.tell(nsga.ask({"mixer": dist}), [71.0, 79.0])
    nsga.ask({"mixer": dist})
    assert [t.system_attrs[generation] for t in nsga.trials] == [0, 0, 0, 0, 1]


def test_before_tell_sets_its_attrs_while_the_trial_still_runs_and_is_no_part_of_the_saved_state(space, tmp_path):
    # The record listeners may link a short trial to its MLflow run only after it ended, when Optuna
    # refuses attributes: the searcher sets them itself, from before_tell, just before it tells.
    asked: list[str] = []

    def link(trial_id: str) -> dict[str, str]:
        asked.append(trial_id)
        return {"mlflow_run_id": f"run-of-{trial_id}"}

    searcher = _searcher(space, tmp_path, ["mlp", "se"], space.size())
    searcher.before_tell = link
    _run(searcher, space, 1)
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", error=True)  # a trial Ray lost is linked as well
    first, second = _study(tmp_path).trials
    assert asked == ["t0", "t1"]
    assert first.state == optuna.trial.TrialState.COMPLETE and first.user_attrs["mlflow_run_id"] == "run-of-t0"
    assert second.state == optuna.trial.TrialState.FAIL and second.user_attrs["mlflow_run_id"] == "run-of-t1"

    # A closure cannot be pickled: Tune's snapshot of the searcher goes without it, and a restore
    # keeps this process's hook.
    searcher.save(str(tmp_path / "searcher.pkl"))
    restored = _searcher(space, tmp_path, [], space.size())
    restored.before_tell = link
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.before_tell is link and "before_tell" not in pickle.loads(pickle.dumps(searcher)).__dict__


def test_a_trial_failed_on_restore_after_its_stop_epoch_was_set_may_run_again(space, tmp_path):
    # A driver killed between the stop epoch's attr and Optuna's tell leaves a RUNNING trial with a
    # stop epoch; the restore tells it FAIL. It is no verdict on its configuration (it crashed the
    # resumed search once: the FAIL twin had no failure reason).
    from search.tune.searcher import STOP_EPOCH_ATTR

    searcher = _searcher(space, tmp_path, ["mlp", "mlp"], space.size())
    searcher.suggest("t0")
    ot_trial = searcher._ot_trials["t0"]
    ot_trial.set_user_attr(STOP_EPOCH_ATTR, 1)
    searcher.study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)  # what restore() does to it
    del searcher._ot_trials["t0"]
    assert searcher.suggest("t1")["mixer"] == "mlp"  # run again, not told from a twin
    lost, again = _study(tmp_path).trials
    assert DUPLICATE_ATTR not in again.user_attrs and again.state == optuna.trial.TrialState.RUNNING
