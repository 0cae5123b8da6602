"""How much each searched parameter matters for each objective (Optuna's importance, per objective).

From the search's own Optuna study (``<run folder>/optuna.db``) when it can be opened and matches
the objectives; otherwise from the TrialRecords, by loading the finished trials into an in-memory
study (numbers as float ranges, anything else as categories). Either way the numbers come from
``optuna.importance.get_param_importances(study, target=lambda t: t.values[i])``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from search.results.front import Objective, rankable
from search.results.records import TrialRecord
from search.results.run_folder import STUDY_DB

log = logging.getLogger(__name__)


def _study_from_storage(run_folder: str | os.PathLike, objectives: Sequence[Objective]) -> Any | None:
    """The search's study from its RDB storage, or ``None`` (no file, no study, other objectives)."""
    import optuna

    path = Path(run_folder) / STUDY_DB
    if not path.exists():
        return None
    storage = f"sqlite:///{path.resolve()}"
    try:
        names = optuna.get_all_study_names(storage)
        for name in names:
            study = optuna.load_study(study_name=name, storage=storage)
            if len(study.directions) == len(objectives):
                return study
    except Exception as err:  # a locked or foreign database: fall back to the records
        log.debug("cannot open the Optuna study in %s: %s", path, err)
    return None


def _category(value: Any) -> Any:
    """Optuna categories must be None, bool, int, float or str: lists and dicts become JSON text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def _study_from_records(records: Sequence[TrialRecord], objectives: Sequence[Objective]) -> Any | None:
    """An in-memory study holding one completed trial per rankable record (searched params only)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    usable = [r for r in records if rankable(r, objectives)]
    if len(usable) < 2:
        return None
    keys = sorted({k for r in usable for k in r.params})
    distributions = {}
    for key in keys:
        values = [r.params.get(key) for r in usable if key in r.params]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric and min(values) < max(values):
            distributions[key] = FloatDistribution(float(min(values)), float(max(values)))
        elif not numeric:
            choices = sorted({_category(v) for v in values}, key=repr)
            if len(choices) > 1:
                distributions[key] = CategoricalDistribution(choices)
    if not distributions:
        return None
    study = optuna.create_study(directions=["maximize" if d == "max" else "minimize" for _, d in objectives])
    for record in usable:
        params, dists = {}, {}
        for key, dist in distributions.items():
            if key in record.params:
                value = record.params[key]
                params[key] = float(value) if isinstance(dist, FloatDistribution) else _category(value)
                dists[key] = dist
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions=dists, values=[float(record.final[m]) for m, _ in objectives]
            )
        )
    return study


def param_importances(
    run_folder: str | os.PathLike, records: Sequence[TrialRecord], objectives: Sequence[Objective]
) -> tuple[dict[str, dict[str, float]], str]:
    """``{objective metric: {param: importance}}`` and where it came from (``"optuna.db"`` / ``"records"``).

    Empty when fewer than two trials finished or nothing varied.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = (
        ("optuna.db", lambda: _study_from_storage(run_folder, objectives)),
        ("records", lambda: _study_from_records(records, objectives)),
    )
    for source, open_study in studies:
        study = open_study()
        if study is None:
            continue
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) < 2:
            continue
        result: dict[str, dict[str, float]] = {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # experimental-feature and small-sample warnings
                for i, (metric, _) in enumerate(objectives):
                    result[metric] = {
                        k: float(v)
                        for k, v in optuna.importance.get_param_importances(
                            study, target=lambda t, i=i: t.values[i]
                        ).items()
                    }
        except (ValueError, RuntimeError) as err:  # e.g. no parameter varied among complete trials
            log.debug("importance from %s failed: %s", source, err)
            continue
        return result, source
    return {}, "none"


def importance_csv(importances: dict[str, dict[str, float]]) -> str:
    """One row per (objective, param), most important first within each objective."""
    lines = ["objective,param,importance"]
    for metric, values in importances.items():
        for param, value in sorted(values.items(), key=lambda kv: -kv[1]):
            lines.append(f"{metric},{param},{value:.6g}")
    return "\n".join(lines) + "\n"
