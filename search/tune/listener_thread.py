"""The record writer's listeners on a thread of their own: Tune's event loop never waits for MLflow.

Ray Tune's driver takes one trial result at a time, and a function trainable waits after each
report until the driver has taken it. The listeners of :class:`search.tune.recorder.RecordWriter`
(the MLflow tracker, the Optuna study links) write to SQLite or over HTTP; on Tune's loop every
trial waited for them at every epoch. :class:`ListenerThread` runs them on one daemon thread
instead, in the order the records were written, each record a copy taken when it was handed over.

The listeners are built on that thread too, when the trials begin (:meth:`ListenerThread.start`,
from the writer's ``setup``): the tracker's first connection imports MLflow and creates the run
folder's SQLite store, seconds of pure Python that run while the first trials' worker processes
start, not while the driver builds the corrupted set. A tracking server given by
the user was already checked reachable before Ray started (:mod:`search.tune.preflight`).
:meth:`ListenerThread.close` waits until every record handed over has been logged and returns the
listeners, for the search's end.

With ``coalesce_s``, the thread gathers what arrives within that many seconds of a first record and
hands over only the latest record of each trial (a record holds the trial's whole state, every
epoch so far, and the tracker logs what MLflow lacks of it): a trial's epochs then reach MLflow at
most that late, in a fraction of the calls (each a SQLite transaction or an HTTP request). A trial's
first record is never held back: its MLflow run is created at once, so that the study links can
name it on the Optuna trial while that trial is still running (Optuna refuses attributes on a
finished trial). :meth:`ListenerThread.wait_handed` waits until a trial's first record has been
handed over: the searcher's last chance to link a trial that ended before the thread got to it.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
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
        coalesce_s: gather records for this long and hand over each trial's latest only (None:
            every record, as it comes).
    """

    def __init__(self, build: Callable[[], Sequence[Any]], coalesce_s: float | None = None) -> None:
        self._build = build
        self.coalesce_s = coalesce_s
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._listeners: list[Any] | None = None
        self._handed: set[str] = set()  # trials with a record handed over to every listener
        self._handed_changed = threading.Condition()
        self._ended = False  # the thread has handed over its last record

    # Ray may pickle the record writer with its listeners: the builder travels, not the thread.
    def __getstate__(self) -> dict[str, Any]:
        return {"_build": self._build, "coalesce_s": self.coalesce_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._build, self.coalesce_s = state["_build"], state["coalesce_s"]
        self._init_runtime()

    # ---- RecordListener ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread, which builds and starts the listeners; idempotent."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="record-listeners", daemon=True)
            self._thread.start()

    @property
    def started(self) -> bool:
        """The thread was started (the search's trials began)."""
        return self._thread is not None

    def wait_handed(self, trial_id: str, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until a record of ``trial_id`` has been handed over to every
        listener; False on timeout, or when the thread has ended (or never began) without one."""
        if not self.started:
            return False
        with self._handed_changed:
            self._handed_changed.wait_for(lambda: trial_id in self._handed or self._ended, timeout_s)
            return trial_id in self._handed

    @property
    def listeners(self) -> list[Any]:
        """The listeners once built (empty before, or when they could not be set up)."""
        return list(self._listeners or [])

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
            self._hand_over_all()
        finally:
            with self._handed_changed:
                self._ended = True
                self._handed_changed.notify_all()

    def _hand_over_all(self) -> None:
        try:
            listeners = self._built()
        except Exception as err:  # noqa: BLE001  the search goes on; `search sync` logs it later
            log.warning("the record listeners could not be set up (%s); the records stay in the run folder", err)
            listeners = self._listeners = []
        for listener in listeners:
            _safely(listener.start)
        stopping = False
        seen: set[str] = set()  # trials whose first record was handed over
        while not stopping:
            batch = [self._queue.get()]
            stopping = batch[0] is _STOP
            if self.coalesce_s is not None and not stopping and batch[0][0].trial_id in seen:
                stopping = self._gather(batch, seen)
            seen.update(item[0].trial_id for item in batch if item is not _STOP)
            for record, ray_error in _latest_per_trial([item for item in batch if item is not _STOP]):
                for listener in listeners:
                    _safely(listener.log_record, record, ray_error)
                if record.trial_id not in self._handed:
                    with self._handed_changed:
                        self._handed.add(record.trial_id)
                        self._handed_changed.notify_all()

    def _gather(self, batch: list, seen: set[str]) -> bool:
        """Add to ``batch`` what arrives within ``coalesce_s``, or until a trial's first record
        arrives (it goes at once); True when the end came with it."""
        deadline = time.monotonic() + float(self.coalesce_s or 0.0)
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if item is _STOP:
                return True
            batch.append(item)
            if item[0].trial_id not in seen:
                break
        return False


def _latest_per_trial(batch: list[tuple[TrialRecord, str | None]]) -> list[tuple[TrialRecord, str | None]]:
    """The last record of each trial in ``batch`` (in the order the trials first appear), with the
    last Ray error any of its records carried."""
    latest: dict[str, tuple[TrialRecord, str | None]] = {}
    for record, ray_error in batch:
        before = latest.get(record.trial_id)
        latest[record.trial_id] = (record, ray_error or (before[1] if before else None))
    return list(latest.values())


def _safely(fn: Callable[..., Any], *args: Any) -> None:
    # The tracker handles its own outages; anything else must not end the thread (the records stay
    # in the run folder, and `search sync` logs them).
    try:
        fn(*args)
    except Exception as err:  # noqa: BLE001
        log.warning("a record listener failed: %s", err)
