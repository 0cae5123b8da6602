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

:func:`install` makes ``tune.Tuner`` use the fixed controller (``ray.tune.tune.TuneController``
is the class that ``Tuner.fit`` instantiates); ``tests/search/test_distributed.py`` kills a node
right after its trial finished, which without the fix leaves a trial failed.
"""

from __future__ import annotations

import functools
from typing import Any

_HANDLED = "_search_reuse_handled"  # set on an exception the actor-failure callback has dealt with


def install() -> None:
    """Make Ray Tune's ``run`` (behind ``Tuner.fit``) use the fixed controller; a Ray Tune whose
    controller lacks the two methods it overrides is left as it is."""
    import ray.tune.tune as tune_module

    stock = tune_module.TuneController
    if all(hasattr(stock, name) for name in ("_actor_failed", "_trial_task_failure")):
        tune_module.TuneController = _controller_class()


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
