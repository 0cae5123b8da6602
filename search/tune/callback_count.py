"""Ray Tune's count of the callbacks it was given, without importing MLflow before the first trial.

For Ray's usage statistics, ``Tuner.fit()`` records how many callbacks of each kind it was given
(``ray.air._internal.usage.tag_callbacks``, called whether the statistics are on or off). To tell
its own integrations from the user's callbacks it imports them, Ray's MLflow, W&B and Comet
callbacks, and with them MLflow itself: about 1 s of the driver's main thread, before Tune creates
any trial actor (docs/benchmarks.md). A search's listener thread imports MLflow anyway, off that
path. :func:`count_callbacks` gives the same counts from the classes' names, as Ray's count
compares them, with nothing imported; :func:`installed` makes ``Tuner.fit`` record those for the
length of a ``with`` block, on the Ray versions it was checked against (:data:`VERIFIED_RAY`;
``tests/search/test_callback_count.py`` compares the two counts).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

# Ray versions (major.minor) whose tag_callbacks this count reproduces.
VERIFIED_RAY = ("2.60",)
# Ray's integrations that its count names, besides Tune's default loggers (DEFAULT_CALLBACK_CLASSES).
RAY_INTEGRATIONS = ("WandbLoggerCallback", "MLflowLoggerCallback", "CometLoggerCallback", "AimLoggerCallback")


def count_callbacks(callbacks: Sequence[Any] | None) -> dict[str, int]:
    """Class name -> count for Ray's own callbacks, ``CustomLoggerCallback`` / ``CustomCallback``
    for the others; anything that is not a Tune ``Callback`` is left out (Tune refuses it later)."""
    from ray.tune import Callback
    from ray.tune.logger import LoggerCallback
    from ray.tune.utils.callback import DEFAULT_CALLBACK_CLASSES

    built_in = set(RAY_INTEGRATIONS) | {cls.__name__ for cls in DEFAULT_CALLBACK_CLASSES}
    counts: Counter[str] = Counter()
    for callback in callbacks or []:
        if not isinstance(callback, Callback):
            continue
        name = type(callback).__name__
        if name in built_in:
            counts[name] += 1
        elif isinstance(callback, LoggerCallback):
            counts["CustomLoggerCallback"] += 1
        else:
            counts["CustomCallback"] += 1
    return dict(counts)


def tag_callbacks(callbacks: Sequence[Any] | None) -> bool:
    """Ray's ``tag_callbacks`` with :func:`count_callbacks`: the same usage tag, recorded the same way."""
    from ray.air._internal import usage

    if not callbacks:
        return False
    counts = count_callbacks(callbacks)
    if counts:
        usage.record_extra_usage_tag(usage.TagKey.AIR_CALLBACKS, json.dumps(counts))
    return True


@contextmanager
def installed() -> Iterator[bool]:
    """Within the block, ``Tuner.fit`` records its callback count with :func:`tag_callbacks`;
    yields whether it does (False on an unverified Ray version, where Ray's own count runs)."""
    import ray
    from ray.air._internal import usage

    stock = getattr(usage, "tag_callbacks", None)
    if ".".join(ray.__version__.split(".")[:2]) not in VERIFIED_RAY or stock is None:
        yield False
        return
    usage.tag_callbacks = tag_callbacks
    try:
        yield True
    finally:
        usage.tag_callbacks = stock
