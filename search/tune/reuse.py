"""Actor reuse that survives a lost node: Ray Tune's ``TuneController`` with one bug fixed.

With ``reuse_actors=True`` Tune keeps a finished trial's actor (its worker process, with torch,
timm and Ray Tune imported) and hands it to the next trial, which then starts in milliseconds
instead of seconds. If that actor's node is lost while the actor waits, the next trial's ``reset``
call fails with a ``RayActorError``, and Tune 2.60 handles that one failure twice: the actor-failure
callback requeues the trial for a retry (as it does when a new actor fails to start), then the
reset task's own error callback fails the now-pending trial for good, and the trial stays marked as
resetting, so a retry could never get an actor anyway. Here the trial is no longer resetting once
its actor is lost, and the second report of the same failure is ignored: the trial is retried on a
new actor, counted against ``search.max_failures`` like any infrastructure failure.

:func:`installed` makes ``Tuner.fit`` use the fixed controller (``ray.tune.tune.TuneController``
is the class that ``Tuner.fit`` instantiates) for the duration of a ``with`` block, and only on the
Ray versions it was verified on (:data:`VERIFIED_RAY`); elsewhere Ray Tune is left as it is.
``tests/search/test_distributed.py`` kills a node right after its trial finished, which without the
fix leaves a trial failed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_HANDLED = "_search_reuse_handled"  # set on an exception the actor-failure callback has dealt with


# Ray versions (major.minor) whose TuneController has the double handling, fixed and tested here.
VERIFIED_RAY = ("2.60",)


def applies(version: str) -> bool:
    """Whether the fix is for this Ray version."""
    return ".".join(version.split(".")[:2]) in VERIFIED_RAY


@contextmanager
def installed() -> Iterator[bool]:
    """Within the block, Ray Tune's ``run`` (behind ``Tuner.fit``) uses the fixed controller; yields
    whether it does (False on an unverified Ray version, or a controller without the two methods)."""
    import ray
    import ray.tune.tune as tune_module

    stock = tune_module.TuneController
    if not applies(ray.__version__) or not all(hasattr(stock, n) for n in ("_actor_failed", "_trial_task_failure")):
        yield False
        return
    tune_module.TuneController = _controller_class()
    try:
        yield True
    finally:
        tune_module.TuneController = stock


@functools.cache
def _controller_class() -> type:
    """The subclass, made on first use (importing Ray Tune costs a second)."""
    from ray.tune.execution.tune_controller import TuneController

    class ReuseSafeController(TuneController):
        def _actor_failed(self, tracked_actor: Any, exception: Exception) -> None:
            trial = self._actor_to_trial.get(tracked_actor)
            resetting_trials = getattr(self, "_resetting_trials", set())
            resetting = trial is not None and trial in resetting_trials
            if resetting:
                resetting_trials.discard(trial)  # else its retry waits for this actor for ever
            super()._actor_failed(tracked_actor, exception)  # requeues the trial (or fails it)
            if resetting:
                setattr(exception, _HANDLED, True)

        def _trial_task_failure(self, trial: Any, exception: Exception) -> None:
            if getattr(exception, _HANDLED, False):
                return  # the reset's own report of the actor loss handled just above
            super()._trial_task_failure(trial, exception)

    return ReuseSafeController
