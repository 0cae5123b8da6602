"""Early stopping for a search: Ray's single-objective ASHA, or MO-ASHA over every objective.

``search.scheduler: {type: asha | mo_asha | mo_hyperband, grace_period, reduction_factor, brackets}``:

- ``asha``: Ray's ``ASHAScheduler`` on the first objective (a metric reported every epoch);
- ``mo_asha``: :mod:`search.tune.schedulers.mo_asha`, every objective judged at the rungs on the
  rung set; ``brackets`` (default 1) as in Ray's asynchronous Hyperband;
- ``mo_hyperband``: MO-ASHA with every bracket (one per rung, plus the full-budget one) unless
  ``brackets`` says fewer.

In every case the rungs lie strictly before the last epoch (:func:`search.trial.rungs.rung_epochs`).
"""

from __future__ import annotations

import os
from typing import Any

from search.space.schema import MULTI_OBJECTIVE_STOPPERS as MULTI_OBJECTIVE
from search.trial.rungs import rung_epochs, trial_rung_epochs

__all__ = ["MULTI_OBJECTIVE", "make_scheduler", "num_brackets", "trial_rung_epochs"]


def num_brackets(spec: Any, epochs: int) -> int:
    """The brackets of a scheduler section: ``brackets``, or 1 (every bracket for ``mo_hyperband``)."""
    if spec.brackets is not None:
        return int(spec.brackets)
    if spec.type == "mo_hyperband":
        return len(rung_epochs(spec.grace_period, spec.reduction_factor, epochs)) + 1
    return 1


def make_scheduler(space: Any, run_folder: str | os.PathLike, resume: bool) -> Any:
    """The Ray Tune scheduler of ``space`` (None without one). MO-ASHA keeps its rungs in the run
    folder: a resumed search (``resume``) continues with them, a new one starts without."""
    spec = space.search.scheduler
    if spec is None:
        return None
    from search.trial import protocol

    epochs = space.train.epochs
    if spec.type in MULTI_OBJECTIVE:
        from search.results.run_folder import rungs_file
        from search.tune.schedulers.mo_asha import MOASHARule
        from search.tune.schedulers.ray_adapter import MOASHAScheduler

        state = rungs_file(run_folder)
        if not resume:
            state.unlink(missing_ok=True)  # the rungs of an experiment that is gone
        rule = MOASHARule(space.directions, spec.grace_period, spec.reduction_factor, epochs,
                          brackets=num_brackets(spec, epochs), seed=space.search.seed)
        return MOASHAScheduler(rule, space.metrics, state_path=state)
    from ray.tune.schedulers import ASHAScheduler

    metric, direction = space.objectives[0]
    # Rungs strictly before the last epoch: a trial that reaches its last epoch is judged, never cut
    # after paying for all of its training (ASHA puts a rung at max_t when max_t / grace_period is
    # a power of the reduction factor, and stop_last_trials would stop every trial there).
    return ASHAScheduler(
        time_attr=protocol.EPOCH, metric=metric, mode=direction, max_t=epochs - 0.5,
        grace_period=spec.grace_period, reduction_factor=spec.reduction_factor,
        brackets=num_brackets(spec, epochs), stop_last_trials=False,
    )
