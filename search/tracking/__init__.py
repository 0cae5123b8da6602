"""MLflow tracking of a search: a parent run, one nested child run per trial, the Pareto front.

- :class:`SearchTracker` logs a run folder live (its :meth:`~SearchTracker.tune_callback` goes into
  Ray Tune's ``RunConfig``) and closes the parent run with :meth:`~SearchTracker.finish`.
- :func:`sync` logs whatever MLflow lacks from a run folder's TrialRecords (after an outage, or to
  another server), never duplicating.
- :func:`read_front` reads a search's front back from MLflow (``search pareto``).
"""

from __future__ import annotations

import os

from search.errors import UserError
from search.tracking.query import read_front
from search.tracking.store import resolve_tracking_uri, short_reason
from search.tracking.tracker import SearchTracker, SyncSummary

__all__ = ["SearchTracker", "SyncSummary", "read_front", "resolve_tracking_uri", "sync"]


def sync(run_folder: str | os.PathLike, tracking_uri: str | None = None) -> SyncSummary:
    """Log the run folder's records that MLflow lacks (raises :class:`search.errors.UserError` when
    the folder is not a run folder or the store cannot be reached)."""
    tracker = SearchTracker(run_folder, tracking_uri=tracking_uri)
    tracker.check_reachable()
    try:
        return tracker.sync()
    except Exception as err:  # the server went away mid-sync: what was logged stays, once
        reason = short_reason(err)
        raise UserError(
            f"MLflow at {tracker.uri} failed during the sync ({reason}); run `search sync {run_folder}` "
            "again when it is back (nothing is logged twice)"
        ) from None
