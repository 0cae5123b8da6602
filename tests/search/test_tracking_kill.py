"""A driver SIGKILLed while it logs to MLflow, then the same search resumed: every trial is in MLflow
exactly once (one parent, one child per trial, each curve point and final value once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from tracking_support import make_record, search_runs, write_space

from search.tracking import SearchTracker

pytestmark = pytest.mark.slow

TRIALS = [(f"t_{i:05d}", 60.0 + 5 * i, 90.0 - 3 * i - (i % 2) * 10) for i in range(6)]

# The "driver": logs each trial epoch by epoch, as the Tune callback would, and says how far it got.
DRIVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path[:0] = [{here!r}, {root!r}]
    from tracking_support import make_record
    from search.space import load_space
    from search.tracking import SearchTracker

    run_folder = Path({run_folder!r})
    tracker = SearchTracker(run_folder, load_space(run_folder / "space.yaml"))
    tracker.start()
    for trial_id, acc, mce in {trials!r}:
        full = make_record(trial_id, acc, mce)
        for epoch in (1, 2):
            type(full)(trial_id, "running", full.params, full.history[:epoch]).save(run_folder)
            tracker.log_trial(trial_id)
            print("logged", trial_id, epoch, flush=True)
        full.save(run_folder)
        tracker.log_trial(trial_id)
        print("finished", trial_id, flush=True)
    """
)


def test_driver_killed_mid_logging_then_resumed_keeps_every_trial_once(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_folder = tmp_path / "runs" / "killed"
    space = write_space(run_folder, "killed")
    here, root = Path(__file__).resolve().parent, Path(__file__).resolve().parents[2]
    script = DRIVER.format(here=str(here), root=str(root), run_folder=str(run_folder), trials=TRIALS)
    driver = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    seen = []
    deadline = time.monotonic() + 240
    try:
        for line in driver.stdout:
            seen.append(line.split())
            if line.startswith("logged t_00002 2") or time.monotonic() > deadline:
                break
        os.kill(driver.pid, signal.SIGKILL)  # in the middle of the search, right after a log call
    finally:
        driver.wait(timeout=30)
    assert ["finished", "t_00001"] in seen, seen
    assert ["finished", "t_00002"] not in seen

    # The same search again (the resumed Tune experiment reports every trial once more).
    tracker = SearchTracker(run_folder, space)
    parent_id = tracker.start()
    for trial_id, acc, mce in TRIALS:
        make_record(trial_id, acc, mce).save(run_folder)
        tracker.log_trial(trial_id)
    assert tracker.finish("finished")

    client = MlflowClient(tracker.uri)
    parents, children = search_runs(tracker.uri, "killed")
    assert [p.info.run_id for p in parents] == [parent_id] and parents[0].info.status == "FINISHED"
    assert sorted(c.data.tags["trial_id"] for c in children) == [t for t, _, _ in TRIALS]
    for child in children:
        assert sorted(m.step for m in client.get_metric_history(child.info.run_id, "train_loss")) == [1, 2]
        assert len(client.get_metric_history(child.info.run_id, "mce")) == 1
        assert child.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(parent_id, "hypervolume")] == [1, 2, 3, 4, 5, 6]
