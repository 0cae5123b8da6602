"""The live view: one line per trial event, each parameter in one form whatever Ray hands over."""

from __future__ import annotations

import io
from types import SimpleNamespace

from search.tune.live import LiveView


def _started(config: dict) -> str:
    out = io.StringIO()
    view = LiveView([("clean_accuracy", "max")], ["mixer", "tap_dilations"], num_trials=2, epochs=1, stream=out)
    trial = SimpleNamespace(trial_id="t1", config=config, status="RUNNING", last_result={})
    view.on_trial_start(0, [trial], trial)
    return out.getvalue()


def test_a_sequence_parameter_prints_alike_for_new_and_resumed_trials():
    # A new trial's sample holds a tuple, a resumed trial's config (read back) a list: the view
    # printed `(1, 2)` for one and `[1, 2, 3]` for the other.
    new = _started({"mixer": "fan", "tap_dilations": (1, 2)})
    resumed = _started({"mixer": "fan", "tap_dilations": [1, 2, 3]})
    assert "t1 started   mixer=fan  tap_dilations=[1, 2]" in new
    assert "t1 started   mixer=fan  tap_dilations=[1, 2, 3]" in resumed
