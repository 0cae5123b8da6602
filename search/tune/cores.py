"""Idle cores at the end of a local search go to the trials still running.

A local search runs ``concurrency`` trials of ``cpus_per_trial`` torch threads each. Once every trial
of the budget has started, each one that ends frees its cores for good: in the tail of a search the
last trials would run on one core while the others idle. :class:`SpareCores` (a Tune callback in the
driver) then shares the machine's CPUs among the trials still running, and
:class:`search.trial.threads.TrialThreads` (in each trial) raises the trial's torch threads to its share between two training steps.

Ray's own answer, ``ResourceChangingScheduler``, restarts a function trainable from its checkpoint
in a new actor with the new resources: a new worker process, its imports and the trial's set-up,
which cost more than the tail they would save here. The share is a file (the driver and the trials
of a local search run on one machine): ``{trial_id: threads}``, rewritten atomically when it changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ray.tune import Callback

WAITING = ("PENDING", "PAUSED")  # trials that will still need cores


def shares(total_cpus: int, running: list[str], cpus_per_trial: float) -> dict[str, int]:
    """Torch threads per running trial when nothing waits: the CPUs split evenly (the first ones get
    the remainder), never fewer than each trial's own."""
    if not running:
        return {}
    base, extra = divmod(int(total_cpus), len(running))
    own = max(1, int(cpus_per_trial))
    return {trial_id: max(own, base + (i < extra)) for i, trial_id in enumerate(running)}


class SpareCores(Callback):
    """Writes each running trial's share of the CPUs to ``path`` once no trial is left to start.

    Args:
        path: the share file (the trials read it).
        total_cpus: CPUs of the local Ray.
        cpus_per_trial: what each trial asks for (its torch threads when nothing is shared).
        num_trials: the search's budget: until that many trials exist, more may start.
    """

    def __init__(self, path: str | os.PathLike, total_cpus: int, cpus_per_trial: float, num_trials: int) -> None:
        self.path = Path(path)
        self.total_cpus = total_cpus
        self.cpus_per_trial = cpus_per_trial
        self.num_trials = num_trials
        self._written: dict[str, int] | None = None

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        running = [t.trial_id for t in trials if t.status == "RUNNING"]
        done_starting = len(trials) >= self.num_trials and not any(t.status in WAITING for t in trials)
        wanted = shares(self.total_cpus, running, self.cpus_per_trial) if done_starting else {}
        # Only shares above a trial's own threads are written: an empty file means "your own".
        own = max(1, int(self.cpus_per_trial))
        wanted = {t: n for t, n in wanted.items() if n > own}
        if wanted != self._written:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(wanted))
            os.replace(tmp, self.path)
            self._written = wanted
