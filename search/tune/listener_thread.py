"""The record writer's listeners on a thread of their own: Tune's event loop never waits for MLflow.

Ray Tune's driver takes one trial result at a time, and a function trainable waits after each
report until the driver has taken it. The listeners of :class:`search.tune.recorder.RecordWriter`
(the MLflow tracker, the Optuna study links) write to SQLite or over HTTP; on Tune's loop every
trial waited for them at every epoch. :class:`ListenerThread` runs them on one daemon thread
instead, in the order the records were written, each record a copy taken when it was handed over.

The listeners are built on that thread too: the tracker's first connection imports MLflow and
creates (and migrates) the run folder's SQLite store, seconds of the driver's time that the
search's setup no longer waits for. A tracking server given by the user was already checked
reachable before Ray started (:mod:`search.tune.preflight`). :meth:`ListenerThread.close` waits
until every record handed over has been logged and returns the listeners, for the search's end.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from search.results.records import TrialRecord

log = logging.getLogger("search.tune")

_STOP = None  # the queue's last item


class ListenerThread:
    """A :class:`~search.tune.recorder.RecordListener` that hands each record to the listeners
    ``build()`` makes, on a thread of its own (see the module docstring).

    Args:
        build: makes the listeners, on the thread, before the first record; called once.
    """

    def __init__(self, build: Callable[[], Sequence[Any]]) -> None:
        self._build = build
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._listeners: list[Any] | None = None

    # Ray may pickle the record writer with its listeners: the builder travels, not the thread.
    def __getstate__(self) -> dict[str, Any]:
        return {"_build": self._build}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._build = state["_build"]
        self._init_runtime()

    # ---- RecordListener ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread (it builds the listeners and starts them); idempotent."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="record-listeners", daemon=True)
            self._thread.start()

    def log_record(self, record: TrialRecord, ray_error: str | None = None) -> None:
        """Queue a copy of ``record`` (the writer changes its own object at the trial's next event)."""
        self.start()
        self._queue.put((copy.deepcopy(record), ray_error))

    # ---- the end ------------------------------------------------------------------------------------
    def close(self, timeout_s: float | None = None) -> list[Any]:
        """Wait (at most ``timeout_s``) until every queued record has been logged; returns the
        listeners (built here if the thread never started)."""
        if self._thread is None:
            return self._built()
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("the MLflow logging did not finish within %.0f s; `search sync` logs the rest", timeout_s)
        return self._listeners or []

    def _built(self) -> list[Any]:
        if self._listeners is None:
            self._listeners = list(self._build())
        return self._listeners

    def _run(self) -> None:
        try:
            listeners = self._built()
        except Exception as err:  # noqa: BLE001  the search goes on; `search sync` logs it later
            log.warning("the record listeners could not be set up (%s); the records stay in the run folder", err)
            listeners = self._listeners = []
        for listener in listeners:
            _safely(listener.start)
        while (item := self._queue.get()) is not _STOP:
            for listener in listeners:
                _safely(listener.log_record, *item)


def _safely(fn: Callable[..., Any], *args: Any) -> None:
    # The tracker handles its own outages; anything else must not end the thread (the records stay
    # in the run folder, and `search sync` logs them).
    try:
        fn(*args)
    except Exception as err:  # noqa: BLE001
        log.warning("a record listener failed: %s", err)
