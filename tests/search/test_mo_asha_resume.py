"""Resume with MO-ASHA: a search killed mid-way (SIGKILL to everything it started) and run again
continues with the same rungs: no trial judged twice at a rung, no rung result forgotten, the
trials that had ended before the kill (finished or stopped) kept as they were.

The helpers are the resume test's (tests/search/test_resume.py): the same subprocess drill.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import textwrap

import pytest
from test_resume import _command, _env, _start, _wait_for

from search.results.records import load_records
from search.results.run_folder import rungs_file
from search.space.schema import EPOCH_METRICS
from search.trial.rungs import rung_key

pytestmark = pytest.mark.slow

SPACE = """\
name: moresume
data: {{dataset: digits, image_size: 16, train_subset: 480, test_subset: 60}}
model: {{patch_size: 4, embed_dim: 16, depth: 1, num_heads: {{choice: [1, 2]}}, mixer: {{choice: [mlp, se, fan]}}}}
train: {{epochs: 3, batch_size: 32, lr: {{choice: [1.0e-6, 0.003, 0.01]}}, scheduler: none}}
eval: {{corruptions: [contrast], severities: [2, 4], subset: 24, rung_subset: 10, cache_dir: {cache}}}
search: {{sampler: random, num_trials: 6, concurrency: 1, seed: 3, scheduler: {{type: mo_asha, grace_period: 1, reduction_factor: 2}}}}
storage: {storage}
"""
METRICS = ("clean_accuracy", "mce")
RUNGS = (1, 2)


def _rungs(run_folder) -> list:
    """The rungs of bracket 0 as the scheduler keeps them in the run folder."""
    return json.loads(rungs_file(run_folder).read_text())["brackets"][0]


def test_killed_mo_asha_search_resumes_with_the_same_rungs(tmp_path):
    path = tmp_path / "moresume.yaml"
    path.write_text(textwrap.dedent(SPACE.format(cache=tmp_path / "cache", storage=tmp_path / "runs")))
    run_folder = tmp_path / "runs" / "moresume"

    # 1. Kill the search once two trials have ended while a third runs.
    first = _start(path, tmp_path)
    try:
        _wait_for(first, run_folder, lambda records: sum(r.status in ("finished", "stopped") for r in records) >= 2
                  and any(r.status == "running" for r in records), timeout_s=400)
    finally:
        with contextlib.suppress(ProcessLookupError):  # (it ended by itself: said below)
            os.killpg(first.pid, signal.SIGKILL)
        log = first.communicate()[0]
    assert first.returncode == -signal.SIGKILL, f"the search ended before it could be killed:\n{log}"
    before = {r.trial_id: r for r in load_records(run_folder)}
    ended_before = {t: r for t, r in before.items() if r.status in ("finished", "stopped")}
    assert len(ended_before) >= 2, log
    rungs_before = _rungs(run_folder)

    # 2. Again: it resumes with the snapshot's rungs and ends every trial once.
    second = subprocess.run(_command(path), cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=500)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resuming the search" in second.stdout
    records = {r.trial_id: r for r in load_records(run_folder)}
    assert len(records) == 6 and all(r.status in ("finished", "stopped") for r in records.values())
    for t, r in ended_before.items():  # kept as they were, not trained again
        after = records[t]
        assert (after.status, after.stop_epoch, after.history, after.final) == (r.status, r.stop_epoch, r.history, r.final)

    rungs = _rungs(run_folder)
    for rung_before, rung in zip(rungs_before, rungs, strict=True):
        # Nothing the rung had seen is forgotten or judged again with other values or another decision.
        # (A trial started after Ray's last snapshot is run again under another id: it is forgotten.)
        assert all(rung["values"][t] == v and rung["decisions"][t] == rung_before["decisions"][t]
                   for t, v in rung_before["values"].items() if t in records)
    for rung in rungs:
        epoch = rung["epoch"]
        reached = {t for t, r in records.items() if any(h["epoch"] == epoch for h in r.history)}
        assert set(rung["values"]) == reached  # every trial that reached the rung, each once
        for t in reached:
            entry = next(h for h in records[t].history if h["epoch"] == epoch)
            # what the scheduler ranks: the epoch's own value of an epoch metric, else the rung set's
            assert rung["values"][t] == [entry[m] if m in EPOCH_METRICS else entry[rung_key(m)] for m in METRICS]
            # Promoted once: a trial continued at a rung is never stopped there, a stopped one never trains on.
            assert rung["decisions"][t] == ("stop" if records[t].stop_epoch == epoch else "continue"), t
    assert any(r.status == "stopped" for r in records.values()), [(t, r.status) for t, r in records.items()]
