"""search/tune/reuse.py patches Ray Tune's controller only inside a search's fit(), on verified Ray versions."""

from __future__ import annotations

import ray
import ray.tune.tune as tune_module

from search.tune import reuse


def test_the_fixed_controller_is_used_only_inside_the_block():
    stock = tune_module.TuneController
    with reuse.installed() as active:
        assert active == reuse.applies(ray.__version__)
        if active:
            assert tune_module.TuneController is not stock and issubclass(tune_module.TuneController, stock)
    assert tune_module.TuneController is stock  # left as it was, also for any later Tuner of the process


def test_only_verified_ray_versions_get_the_fix(monkeypatch):
    assert reuse.applies("2.60.0") and reuse.applies("2.60.1")
    assert not reuse.applies("2.61.0") and not reuse.applies("3.0.0")
    monkeypatch.setattr(ray, "__version__", "2.99.0")
    stock = tune_module.TuneController
    with reuse.installed() as active:
        assert active is False and tune_module.TuneController is stock
