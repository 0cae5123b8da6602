"""The concise live view of a running search: one line per trial event, instead of Ray's tables.

    [  41s] 3/8 done, 2 running, 0 failed | a91f_00003 finished  clean_accuracy 92.8  mce 61.2 | best clean_accuracy 94.1 (max), mce 58.0 (min)

Lines go to a stream (stdout by default) and are flushed at once, so the view is live in a pipe too.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from search.trial import protocol


class LiveView(Callback):
    """Prints trial starts, epochs, ends and failures, with running counts and the best objectives.

    Args:
        objectives: ``(metric, "max" | "min")`` pairs.
        searched: the names of the searched parameters (shown when a trial starts).
        num_trials: the search's budget of trials.
        epochs: epochs per trial.
    """

    def __init__(self, objectives, searched, num_trials: int, epochs: int, stream: TextIO | None = None) -> None:
        self.objectives = list(objectives)
        self.searched = list(searched)
        self.num_trials = num_trials
        self.epochs = epochs
        self.stream = stream
        self.start = time.monotonic()
        self.best: dict[str, float] = {}
        # When the first trial of this call started and the last one ended (``time.monotonic()``).
        self.first_start: float | None = None
        self.last_end: float | None = None

    def seed(self, records) -> None:
        """Start from the best values of earlier records (a resumed search)."""
        for record in records:
            if record.status == "finished":
                self._update_best(record.final)

    def _update_best(self, values: dict[str, Any]) -> None:
        for metric, direction in self.objectives:
            v = values.get(metric)
            if isinstance(v, int | float) and math.isfinite(v):
                old = self.best.get(metric)
                better = old is None or (v > old if direction == "max" else v < old)
                self.best[metric] = v if better else old

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["stream"] = None  # a stream cannot be pickled into the experiment state
        return state

    # ---- output ---------------------------------------------------------------------------------
    def _print(self, trials: list, text: str) -> None:
        done = sum(t.status == "TERMINATED" for t in trials)
        running = sum(t.status == "RUNNING" for t in trials)
        failed = sum(t.status == "ERROR" for t in trials) + sum(
            bool((t.last_result or {}).get(protocol.FAILED)) for t in trials if t.status == "TERMINATED"
        )
        done -= sum(bool((t.last_result or {}).get(protocol.FAILED)) for t in trials if t.status == "TERMINATED")
        line = f"[{time.monotonic() - self.start:5.0f}s] {done}/{self.num_trials} done, {running} running, {failed} failed | {text}"
        if self.best:
            line += " | best " + ", ".join(f"{m} {self.best[m]:.4g} ({d})" for m, d in self.objectives if m in self.best)
        print(line, file=self.stream or sys.stdout, flush=True)

    @staticmethod
    def _values(values: dict[str, Any], keys: list[str]) -> str:
        parts = []
        for k in keys:
            v = values.get(k)
            if isinstance(v, float):
                parts.append(f"{k} {v:.4g}")
            elif v is not None:
                parts.append(f"{k}={v}")
        return "  ".join(parts)

    # ---- Ray Tune events --------------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.first_start is None:
            self.first_start = time.monotonic()
        params = "  ".join(f"{k}={_shown(trial.config.get(k))}" for k in self.searched if k in trial.config)
        self._print(trials, f"{trial.trial_id} started   {params}")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get(protocol.FAILED) or result.get(protocol.JUDGED):
            return
        epoch = int(result.get(protocol.EPOCH, 0))
        text = self._values(result, ["train_loss", "clean_accuracy"])
        self._print(trials, f"{trial.trial_id} epoch {epoch}/{self.epochs}  {text}")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.last_end = time.monotonic()
        result = trial.last_result or {}
        ended = protocol.outcome(result)
        if ended.status == "failed":
            self._print(trials, f"{trial.trial_id} failed: {ended.reason}")
            return
        if ended.status == "stopped":
            self._print(trials, f"{trial.trial_id} stopped early at epoch {ended.epoch}")
            return
        self._update_best(result)
        text = self._values(result, [m for m, _ in self.objectives])
        self._print(trials, f"{trial.trial_id} finished  {text}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.last_end = time.monotonic()
        self._print(trials, f"{trial.trial_id} errored (Ray): see its error file in {trial.path}")


def _shown(value: Any) -> str:
    """A parameter as the space file writes it: a sequence as ``[1, 2]``, whether the trial's config
    holds a tuple (a new trial's sample) or a list (a resumed trial's config, read back)."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)
