"""Idle CPUs at the end of a local search go to the trials still running (search.tune.cores)."""

from __future__ import annotations

import io
import json
import textwrap
from dataclasses import dataclass

import pytest
import torch

from search.trial.threads import TrialThreads
from search.tune.cores import SpareCores, shares


@dataclass
class _Trial:
    trial_id: str
    status: str


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "total, running, own, expected",
    [
        (2, ["a"], 1, {"a": 2}),
        (2, ["a", "b"], 1, {"a": 1, "b": 1}),
        (8, ["a", "b", "c"], 2, {"a": 3, "b": 3, "c": 2}),
        (2, ["a", "b", "c"], 1, {"a": 1, "b": 1, "c": 1}),  # never fewer than a trial's own
        (4, [], 1, {}),
    ],
)
def test_shares_split_the_cpus_evenly(total, running, own, expected):
    assert shares(total, running, own) == expected


def test_cores_are_shared_only_once_no_trial_is_left_to_start(tmp_path):
    path = tmp_path / "threads.json"
    spare = SpareCores(path, total_cpus=2, cpus_per_trial=1, num_trials=3)

    def step(*trials):
        spare.on_step_end(iteration=0, trials=[_Trial(t, s) for t, s in trials])
        return json.loads(path.read_text())

    assert step(("a", "TERMINATED"), ("b", "RUNNING")) == {}  # a third trial is still to come
    assert step(("a", "TERMINATED"), ("b", "RUNNING"), ("c", "PENDING")) == {}  # c waits for cores
    assert step(("a", "TERMINATED"), ("b", "RUNNING"), ("c", "RUNNING")) == {}  # both busy: own threads
    assert step(("a", "TERMINATED"), ("b", "TERMINATED"), ("c", "RUNNING")) == {"c": 2}
    assert step(("a", "TERMINATED"), ("b", "PENDING"), ("c", "RUNNING")) == {}  # b is retried: taken back


def test_a_trial_takes_its_share_and_gives_it_back(tmp_path, torch_threads):
    path = tmp_path / "threads.json"
    threads = TrialThreads(str(path), "c", own=1)
    torch.set_num_threads(1)
    threads.poll(force=True)  # no file yet: nothing changes
    assert torch.get_num_threads() == 1
    path.write_text(json.dumps({"c": 2}))
    threads.poll(force=True)
    assert torch.get_num_threads() == 2
    path.write_text(json.dumps({"other": 2}))
    threads.poll()  # within the poll interval: not looked at yet
    assert torch.get_num_threads() == 2
    threads.poll(force=True)
    assert torch.get_num_threads() == 1
    TrialThreads(None, "c", own=1).poll(force=True)  # no share file (a cluster): a no-op
    assert torch.get_num_threads() == 1


@pytest.mark.slow
def test_a_lone_trial_of_a_local_search_judges_with_every_core(tmp_path):
    """One trial on a local Ray of two CPUs: nothing else will start, so it gets both."""
    import ray

    from search.space import load_space
    from search.tune.runner import run_search

    if ray.is_initialized():
        ray.shutdown()
    path = tmp_path / "lone.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: lone
        data: {{dataset: digits, image_size: 16, train_subset: 128, test_subset: 32}}
        model: {{patch_size: 4, embed_dim: 16, depth: 1, num_heads: 1, mixer: {{choice: [mlp, se]}}}}
        train: {{epochs: 1, batch_size: 32}}
        eval: {{corruptions: [contrast], severities: [1], subset: 16, cache_dir: {tmp_path / "cache"}}}
        search: {{sampler: random, num_trials: 1, concurrency: 2}}
        resources: {{cpus_per_trial: 1}}
        storage: {tmp_path / "runs"}
        """))
    result = run_search(load_space(path), stream=io.StringIO())
    assert result.status == "finished" and not ray.is_initialized()
    (record,) = result.records
    assert record.final["judge_threads"] == 2
