"""``search confirm``: the front of a finished search retrained with new seeds (issue 16).

One tiny real search (digits, 1 epoch, 3 trials, local Ray) serves the module; ``search confirm``
then retrains its front with two new seeds through the CLI, as a user would.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from search_support import run_tiny_search, tiny_space

from search import cli
from search.results.confirmation import read_confirmation
from search.results.front import rank_trials, sort_points
from search.results.records import TrialRecord, load_records
from search.results.run_folder import confirm_dir, confirmation_file, space_copy
from search.tracking import read_front, runs
from search.tracking.confirm_runs import CONFIRM_OF, CONFIRM_ROLE, CONFIRM_SEED, CONFIRM_TRIAL_ID
from search.tracking.run_names import trial_run_name
from search.tracking.state import TrackingState
from search.tracking.store import make_client
from search.tune.confirm import build_confirmation, confirm_front, job, new_seeds

pytestmark = pytest.mark.slow

SPACE = tiny_space("confirming")
ROOT = Path(__file__).resolve().parents[2]
SEEDS = [1003, 2003]  # the search's seed (3) + 1000 k


def _front_ids(records, objectives):
    return [p.trial_id for p in sort_points(rank_trials(records, objectives), objectives) if p.on_front]


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory):
    """The tiny search, then `search confirm RUN_FOLDER --seeds 2` on it (its exit code and output)."""
    import io
    from contextlib import redirect_stdout

    space, result = run_tiny_search(tmp_path_factory.mktemp("confirm"), "confirming", SPACE)
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        # The local Ray that `search confirm` starts runs its workers' setup hook from this package.
        env.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        with redirect_stdout(out):
            code = cli.main(["confirm", str(result.run_folder), "--seeds", "2"])
        yield space, result, code, out.getvalue()


def test_the_front_is_retrained_with_new_seeds_and_recorded(confirmed):
    space, result, code, output = confirmed
    assert code == 0, output
    confirmation = read_confirmation(result.run_folder)
    front = _front_ids(result.records, space.objectives)
    assert front and [m.trial_id for m in confirmation.members] == front
    assert list(confirmation.seeds) == SEEDS and space.search.seed not in SEEDS
    by_id = {r.trial_id: r for r in result.records}
    confirm_records = {r.trial_id: r for r in load_records(confirm_dir(result.run_folder))}
    for member in confirmation.members:
        original = by_id[member.trial_id]
        assert [r.seed for r in member.runs] == SEEDS
        assert member.search_values == tuple(original.final[m] for m, _ in space.objectives)
        assert member.params == {k: v for k, v in original.params.items() if k != "seed"}
        for run in member.runs:
            assert all(math.isfinite(v) for v in run.values)
            record = confirm_records[run.trial_id]  # the confirmation trial's own record
            assert record.status == "finished" and record.full_budget
            assert record.params == {**original.params, "seed": run.seed}  # only the seed changed
            assert run.values == tuple(record.final[m] for m, _ in space.objectives)
        for i in range(len(space.objectives)):
            values = [r.values[i] for r in member.runs]
            assert member.mean(i) == pytest.approx(sum(values) / 2)
    # The table names every member, the search's value and the seeds' mean ± std, and who survives.
    survivors = confirmation.survivors()
    assert survivors and set(survivors) <= set(front)
    for member in confirmation.members:
        line = next(line for line in output.splitlines() if line.startswith(member.trial_id))
        assert f"{member.search_values[0]:.4g}" in line and f"{member.mean(0):.4g} ± " in line
        assert line.rstrip().endswith("yes" if member.trial_id in survivors else "no")
    assert f"{len(survivors)} of {len(front)} member(s) survive" in output


def test_each_retraining_is_a_child_run_of_the_search_and_the_means_are_on_the_parent(confirmed, tmp_path):
    space, result, _, _ = confirmed
    confirmation = read_confirmation(result.run_folder)
    client = make_client(f"sqlite:///{result.run_folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("confirming")
    parent = runs.find_parent(client, experiment.experiment_id, TrackingState.load(result.run_folder).search_id)
    children = runs.search_all(client, experiment.experiment_id,
                               f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`search.role` = '{CONFIRM_ROLE}'")
    by_id = {r.trial_id: r for r in result.records}
    logged = {(c.data.tags[CONFIRM_TRIAL_ID], int(c.data.tags[CONFIRM_SEED])): c for c in children}
    trained = {(r.trial_id, r.seed) for m in confirmation.members for r in m.runs}
    assert set(logged) == trained  # each training once (a front twin shares its twin's)
    for member in confirmation.members:
        for run in member.runs:
            child = logged[(run.trial_id, run.seed)]
            of = child.data.tags[CONFIRM_OF]
            assert run.trial_id in {r.trial_id for m in confirmation.members if m.trial_id == of for r in m.runs}
            assert child.info.run_name == f"confirm {trial_run_name(by_id[of].params, of)} seed {run.seed}"
            assert child.info.status == "FINISHED" and "trial_id" not in child.data.tags
            assert child.data.params["seed"] == str(run.seed)
            assert child.data.metrics["clean_accuracy"] == pytest.approx(run.values[0])
    # The search's own trials are untouched: `search pareto` reads the same front, with the same columns.
    front = read_front(str(result.run_folder))
    assert sorted(r["trial_id"] for r in front.rows) == sorted(_front_ids(result.records, space.objectives))
    assert "seed" not in front.params  # the retrainings' seeds are not a searched parameter
    metrics = client.get_run(parent.info.run_id).data.metrics
    for member in confirmation.members:
        for i, (metric, _) in enumerate(space.objectives):
            assert metrics[f"confirm/{member.trial_id}/{metric}_mean"] == pytest.approx(member.mean(i))
            assert metrics[f"confirm/{member.trial_id}/{metric}_std"] == pytest.approx(member.std(i))
        assert metrics[f"confirm/{member.trial_id}/survives"] == float(member.trial_id in confirmation.survivors())
    assert "confirm/confirmation.json" in {a.path for a in client.list_artifacts(parent.info.run_id, "confirm")}


def test_running_it_again_trains_nothing_and_keeps_the_file(confirmed, capsys, monkeypatch):
    import search.tune.confirm

    def no_training(*args, **kwargs):
        raise AssertionError("a done confirmation was trained again")

    monkeypatch.setattr(search.tune.confirm, "_train", no_training)  # nor is Ray started
    _, result, _, _ = confirmed
    path = confirmation_file(result.run_folder)
    before, records = path.read_bytes(), sorted(p.name for p in (confirm_dir(result.run_folder) / "trials").iterdir())
    client = make_client(f"sqlite:///{result.run_folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("confirming")
    count = len(client.search_runs([experiment.experiment_id]))
    assert cli.main(["confirm", str(result.run_folder), "--seeds", "2"]) == 0
    assert "0 to train" in capsys.readouterr().out
    assert path.read_bytes() == before
    assert sorted(p.name for p in (confirm_dir(result.run_folder) / "trials").iterdir()) == records
    assert len(client.search_runs([experiment.experiment_id])) == count


def test_more_seeds_add_to_the_done_ones_and_the_original_seed_reproduces_the_trial(confirmed, tmp_path):
    """On a copy of the run folder: seeds already done are not trained again, a trial left running by
    an interruption is trained again from its start, and the search's own seed gives exactly the
    search's values (the trainer is deterministic on the CPU)."""
    space, result, _, _ = confirmed
    copy = tmp_path / "copy"
    shutil.copytree(result.run_folder, copy)
    done = read_confirmation(copy).members[0]
    original = {r.trial_id: r for r in result.records}[done.trial_id]
    own_seed = space.search.seed
    stale = TrialRecord("stale0001", params=job(original, own_seed).params)  # "running" when Ctrl-C came
    stale.save(confirm_dir(copy))
    found = confirm_front(copy, members=1, seed_values=[*SEEDS, own_seed], stream=_Sink())
    assert found.status == "finished" and found.trained == 1
    member = found.confirmation.members[0]
    assert [r.seed for r in member.runs] == [*SEEDS, own_seed]
    assert member.runs[:2] == done.runs  # the same trials, not trained again
    assert not (confirm_dir(copy) / "trials" / "stale0001.json").exists()
    retrained = {r.trial_id: r for r in load_records(confirm_dir(copy))}[member.runs[2].trial_id]
    for metric in ("clean_accuracy", "mce", "corrupted_accuracy", "error/fog/3"):
        assert retrained.final[metric] == pytest.approx(original.final[metric], abs=1e-9), metric


class _Sink:
    def write(self, text):
        return len(text)

    def flush(self):
        pass


# ---- bad input: one line, exit 2 -------------------------------------------------------------------------
def _one_line_error(capsys, argv) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("search confirm: error: "), err
    return err


@pytest.mark.parametrize("seeds", ["0", "-2"])
def test_seeds_below_one_name_the_option(confirmed, capsys, seeds):
    _, result, _, _ = confirmed
    assert "--seeds: given " + seeds in _one_line_error(capsys, ["confirm", str(result.run_folder), "--seeds", seeds])


def test_members_below_one_name_the_option(confirmed, capsys):
    _, result, _, _ = confirmed
    assert "--members: given 0" in _one_line_error(capsys, ["confirm", str(result.run_folder), "--members", "0"])


def test_a_run_folder_without_a_finished_front_is_an_error(confirmed, capsys, tmp_path):
    _, result, _, _ = confirmed
    folder = tmp_path / "empty"
    folder.mkdir()
    shutil.copy(space_copy(result.run_folder), space_copy(folder))
    TrialRecord("failed01", status="failed", error="ValueError: nope").save(folder)
    assert "no finished trial on the Pareto front" in _one_line_error(capsys, ["confirm", str(folder)])
    assert not confirm_dir(folder).exists()
    assert "not a run folder" in _one_line_error(capsys, ["confirm", str(tmp_path / "nowhere")])


def test_a_store_without_the_search_is_an_error_before_any_training(confirmed, capsys, tmp_path):
    _, result, _, _ = confirmed
    copy = tmp_path / "untracked"
    shutil.copytree(result.run_folder, copy, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts", "confirm"))
    assert "holds no parent run of this search" in _one_line_error(capsys, ["confirm", str(copy), "--seeds", "1"])
    assert not confirm_dir(copy).exists()


# ---- the pieces ------------------------------------------------------------------------------------------
def test_new_seeds_skip_every_seed_the_search_trained_with():
    records = [TrialRecord("a", params={"seed": 3}), TrialRecord("b", params={"seed": 2003})]
    assert new_seeds(3, records, 3) == [1003, 3003, 4003]
    assert new_seeds(3, records, 2) == new_seeds(3, records, 3)[:2]  # more seeds extend the same list


def test_a_member_whose_seed_failed_has_no_value_there():
    objectives = [("clean_accuracy", "max"), ("mce", "min")]
    member = TrialRecord("m", status="finished", full_budget=True, params={"seed": 3, "lr": 0.1},
                         final={"clean_accuracy": 90.0, "mce": 50.0})
    ok = TrialRecord("c1", status="finished", full_budget=True, final={"clean_accuracy": 80.0, "mce": 60.0})
    failed = TrialRecord("c2", status="failed", error="TrialDiverged: nan")
    confirmation = build_confirmation(objectives, [1003, 2003], [member], {("m", 1003): ok, ("m", 2003): failed})
    (confirmed_member,) = confirmation.members
    assert [r.values for r in confirmed_member.runs] == [(80.0, 60.0), (None, None)]
    assert confirmed_member.mean(0) == 80.0 and confirmed_member.std(0) is None
    assert confirmed_member.params == {"lr": 0.1} and confirmation.survivors() == ["m"]
    assert json.loads(json.dumps(confirmation.to_dict()))["members"][0]["runs"][1]["values"] == [None, None]


def test_a_search_stored_at_a_uri_keeps_the_confirmation_checkpoints_there(tmp_path):
    import yaml

    from search.space import parse_space
    from search.tune.confirm import _ray_storage

    document = {"name": "remote", "data": {"dataset": "digits"}, "model": {"mixer": {"choice": ["mlp", "se"]}},
                "storage": {"path": "s3://bucket/runs", "local": str(tmp_path)}}
    space = parse_space(yaml.safe_load(yaml.safe_dump(document)), source="remote.yaml")
    assert _ray_storage(space, space.run_folder) == "s3://bucket/runs/remote/confirm"
    local = parse_space({**document, "storage": str(tmp_path / "runs")}, source="local.yaml")
    assert _ray_storage(local, tmp_path / "moved") == str(tmp_path / "moved" / "confirm")
