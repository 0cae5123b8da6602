"""In a trial: torch's threads follow the trial's share of the machine's idle CPUs.

The driver's :class:`search.tune.cores.SpareCores` writes ``{trial_id: threads}`` to a share file
once no trial is left to start; :class:`TrialThreads` reads it between two training steps. Two
pieces, one on each side, so that the trial never imports the driver.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

POLL_S = 0.5  # how often a trial looks at its share (a stat of one small file)


class TrialThreads:
    """In a trial: sets torch's threads to the trial's share of the CPUs (see :class:`search.tune.cores.SpareCores`).

    Args:
        path: the share file, or None (no sharing: clusters, trials outside a search).
        trial_id: this trial's id in the file.
        own: the trial's own threads (``cpus_per_trial``).
    """

    def __init__(self, path: str | None, trial_id: str | None, own: int) -> None:
        self.path, self.trial_id, self.own = path, trial_id, own
        self._mtime: int | None = None
        self._next = 0.0

    def poll(self, force: bool = False) -> None:
        """Look at the share file (at most every :data:`POLL_S` unless ``force``) and apply it."""
        if self.path is None or self.trial_id is None:
            return
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + POLL_S
        try:
            mtime = os.stat(self.path).st_mtime_ns
            if mtime == self._mtime:
                return
            wanted = json.loads(Path(self.path).read_text()).get(self.trial_id, self.own)
        except (OSError, ValueError):
            return  # not written yet (or being replaced): keep the threads we have
        self._mtime = mtime
        threads = max(self.own, int(wanted))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
