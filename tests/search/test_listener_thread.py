"""The record listeners' thread: order, copies, waiting at the end, failures, pickling."""

from __future__ import annotations

import pickle
import threading
import time

import pytest

from search.results.records import TrialRecord
from search.tune.listener_thread import ListenerThread

pytestmark = pytest.mark.timeout(60)


class SlowListener:
    """Remembers what it got, on which thread, a little slowly (as MLflow's commits are)."""

    def __init__(self, delay_s: float = 0.01) -> None:
        self.delay_s = delay_s
        self.started_on: str | None = None
        self.got: list[tuple[str, str, int, str | None]] = []
        self.threads: set[str] = set()

    def start(self) -> None:
        self.started_on = threading.current_thread().name

    def log_record(self, record: TrialRecord, ray_error: str | None = None) -> None:
        time.sleep(self.delay_s)
        self.threads.add(threading.current_thread().name)
        self.got.append((record.trial_id, record.status, len(record.history), ray_error))


def test_records_reach_every_listener_in_order_off_the_callers_thread() -> None:
    first, second = SlowListener(), SlowListener(0.0)
    built_on: list[str] = []

    def build() -> list[SlowListener]:
        built_on.append(threading.current_thread().name)
        return [first, second]

    listening = ListenerThread(build)
    listening.start()
    record = TrialRecord("t1")
    t0 = time.monotonic()
    for epoch in range(1, 21):
        record.history.append({"epoch": float(epoch)})  # the writer changes its one object
        listening.log_record(record)
    record.status = "failed"
    listening.log_record(record, ray_error="boom")
    handed_over_s = time.monotonic() - t0
    assert handed_over_s < 0.15  # 21 records x 10 ms of listener work: the caller did not wait for it

    assert listening.close() == [first, second]
    expected = [("t1", "running", n, None) for n in range(1, 21)] + [("t1", "failed", 20, "boom")]
    assert first.got == expected  # each a copy taken when handed over, in order, all of them
    assert second.got == expected
    caller = threading.current_thread().name
    assert built_on == ["record-listeners"] and first.started_on == "record-listeners"
    assert first.threads == {"record-listeners"} != {caller}


def test_close_without_a_start_builds_the_listeners_once() -> None:
    calls: list[int] = []
    listener = SlowListener()
    listening = ListenerThread(lambda: calls.append(1) or [listener])
    assert listening.close() == [listener]
    assert listening.close() == [listener]
    assert calls == [1] and listener.got == []


def test_a_failing_listener_or_builder_does_not_stop_the_others(caplog) -> None:
    class Broken(SlowListener):
        def log_record(self, record, ray_error=None):
            raise RuntimeError("database is locked")

    good = SlowListener(0.0)
    listening = ListenerThread(lambda: [Broken(), good])
    listening.log_record(TrialRecord("a"))
    listening.log_record(TrialRecord("b"))
    assert listening.close() and [g[0] for g in good.got] == ["a", "b"]
    assert "database is locked" in caplog.text

    def no_mlflow():
        raise OSError("read-only file system")

    failing = ListenerThread(no_mlflow)
    failing.log_record(TrialRecord("a"))
    assert failing.close() == []
    assert "could not be set up (read-only file system)" in caplog.text


def test_pickles_without_its_thread() -> None:
    listening = ListenerThread(_build_one)
    listening.log_record(TrialRecord("x"))
    copy = pickle.loads(pickle.dumps(listening))
    assert listening.close()[0].got[0][0] == "x"
    (fresh,) = copy.close()
    assert fresh.got == []  # the copy has its builder, none of the running state


def _build_one() -> list[SlowListener]:
    return [SlowListener(0.0)]


def test_coalescing_hands_over_each_trials_latest_record_within_the_window() -> None:
    listener = SlowListener(0.0)
    listening = ListenerThread(lambda: [listener], coalesce_s=1.0)
    a, b = TrialRecord("a"), TrialRecord("b")
    t0 = time.monotonic()
    for epoch in range(1, 6):  # a burst of both trials' epochs, well within one window
        a.history.append({"epoch": float(epoch)})
        listening.log_record(a)
        b.history.append({"epoch": float(epoch)})
        listening.log_record(b, ray_error="lost a node" if epoch == 2 else None)
    deadline = time.monotonic() + 10
    while len(listener.got) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert time.monotonic() - t0 >= 0.9  # the rest went once the window closed, not record by record
    # Each trial's first record at once (its MLflow run is made while it runs), then one call per
    # trial with every epoch; the Ray error of an earlier record is kept.
    assert listener.got == [("a", "running", 1, None), ("b", "running", 1, None),
                            ("a", "running", 5, None), ("b", "running", 5, "lost a node")]

    a.status = "finished"
    listening.log_record(a)
    t1 = time.monotonic()
    listening.close()  # the end does not wait for the window
    assert time.monotonic() - t1 < 0.9
    assert listener.got[-1] == ("a", "finished", 5, None)


def test_wait_handed_returns_once_a_trials_first_record_reached_the_listeners() -> None:
    gate = threading.Event()

    class Gated(SlowListener):
        def start(self) -> None:
            gate.wait(10)  # the thread is busy (MLflow's first connection)

    listening = ListenerThread(lambda: [Gated(0.0)])
    assert listening.wait_handed("a", 0.0) is False  # never began
    listening.log_record(TrialRecord("a"))
    t0 = time.monotonic()
    assert listening.wait_handed("a", 0.3) is False and time.monotonic() - t0 >= 0.3  # still busy
    threading.Timer(0.2, gate.set).start()
    assert listening.wait_handed("a", 10.0) is True
    assert listening.listeners[0].got == [("a", "running", 0, None)]
    t1 = time.monotonic()
    listening.close()
    assert listening.wait_handed("never-ran", 10.0) is False and time.monotonic() - t1 < 5  # ended: no wait


def test_the_link_before_tell_names_the_trials_mlflow_run_once_its_first_record_is_in() -> None:
    from search.tune.study_links import MLFLOW_RUN_ATTR, LinkBeforeTell, StudyLinks

    runs = {"a": "run-a"}  # what the tracker has created
    listening = ListenerThread(lambda: [StudyLinks("/nonexistent", "study", runs.get)])
    link = LinkBeforeTell(listening, wait_s=5.0)
    listening.log_record(TrialRecord("a"))
    listening.log_record(TrialRecord("b"))
    assert link("a") == {MLFLOW_RUN_ATTR: "run-a"}
    assert link("b") == {}  # MLflow has no run of it (away)
    listening.close()
