"""Ray Tune's callback count for its usage statistics, without importing MLflow (search/tune/callback_count.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from ray.air._internal import usage
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.tune import Callback
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback

from search.tune import callback_count


class _Custom(Callback):
    pass


class _CustomLogger(LoggerCallback):
    def log_trial_result(self, iteration, trial, result):  # pragma: no cover - never called
        pass


class MLflowLoggerCallback_(Callback):  # a user's class whose name is not Ray's
    pass


@pytest.mark.parametrize("callbacks", [
    None,
    [],
    [_Custom()],
    [_Custom(), _Custom(), _CustomLogger()],
    [CSVLoggerCallback(), JsonLoggerCallback(), MLflowLoggerCallback(), _Custom(), MLflowLoggerCallback_()],
    [object(), _CustomLogger()],
])
def test_the_count_equals_rays(callbacks):
    assert callback_count.count_callbacks(callbacks) == dict(usage._count_callbacks(callbacks))


def test_fit_records_the_same_usage_tag_through_the_replacement(monkeypatch):
    recorded = []
    monkeypatch.setattr(usage, "record_extra_usage_tag", lambda key, value: recorded.append((key, value)))
    callbacks = [_Custom(), _CustomLogger(), CSVLoggerCallback()]
    stock = usage._count_callbacks
    with callback_count.installed() as active:
        assert active
        assert usage._count_callbacks is callback_count.count_callbacks  # what tag_callbacks calls
        usage.tag_callbacks(callbacks)
    assert usage._count_callbacks is stock
    usage.tag_callbacks(callbacks)  # Ray's own count
    assert recorded[0] == recorded[1]
    assert json.loads(recorded[0][1]) == {"CustomCallback": 1, "CustomLoggerCallback": 1, "CSVLoggerCallback": 1}


def test_an_unverified_ray_keeps_rays_count(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "__version__", "9.99.0")
    with callback_count.installed() as active:
        assert not active
        assert usage._count_callbacks is not callback_count.count_callbacks


@pytest.mark.timeout(120)
def test_the_count_imports_no_mlflow():
    """Ray's own count imports MLflow (its integration); ours does not (a fresh interpreter)."""
    probe = textwrap.dedent("""
        import sys
        from ray.tune import Callback
        from ray.air._internal import usage
        from search.tune import callback_count
        class C(Callback):
            pass
        with callback_count.installed():
            usage.tag_callbacks([C()])  # as Tuner.fit calls it
        ours = "mlflow" in sys.modules
        usage.tag_callbacks([C()])
        print(ours, "mlflow" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=110, check=True)
    assert out.stdout.split() == ["False", "True"]
