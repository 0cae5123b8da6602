"""The rung-vs-final rank correlations on a search's MLflow parent run (``search pareto`` reads them back).

The parent gets, per objective, a metric ``rung_spearman/<metric>`` whose step is the rung epoch
(MLflow draws it as a curve over the rungs), the whole table as ``rungs/rung_correlations.json``
and, compactly, as the tag :data:`TAG` (what ``search pareto`` prints without downloading artifacts).
Metric rows carry a deterministic timestamp (the parent's start plus the epoch), so logging the same
numbers again adds no point (see :mod:`search.tracking.runs`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mlflow.entities import Metric, RunTag

from search.results.rung_truth import RungCorrelation
from search.tracking.names import mlflow_key, tag_value

TAG = "rung_correlations"
METRIC_PREFIX = "rung_spearman/"
ARTIFACT = "rungs/rung_correlations.json"


def log_rung_correlations(client: Any, parent: Any, correlations: Sequence[RungCorrelation]) -> None:
    """Log ``correlations`` on the ``parent`` run (nothing when there are none)."""
    if not correlations:
        return
    run_id, start = parent.info.run_id, parent.info.start_time
    metrics = [Metric(mlflow_key(METRIC_PREFIX + c.metric), c.rho, start + c.epoch, c.epoch)
               for c in correlations if c.rho is not None]
    rows = [c.to_dict() for c in correlations]
    client.log_batch(run_id, metrics=metrics, tags=[RunTag(TAG, tag_value(json.dumps(rows, separators=(",", ":"))))])
    client.log_dict(run_id, rows, ARTIFACT)


def read_rung_correlations(parent: Any) -> list[dict[str, Any]]:
    """The correlations a parent run carries (its tag), empty when it has none."""
    text = parent.data.tags.get(TAG)
    try:
        return list(json.loads(text)) if text else []
    except ValueError:
        return []
