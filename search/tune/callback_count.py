"""Ray Tune's count of the callbacks it was given, without importing MLflow before the first trial.

For Ray's usage statistics, ``Tuner.fit()`` records how many callbacks of each kind it was given
(``ray.air._internal.usage.tag_callbacks``, called whether the statistics are on or off). To tell
its own integrations from the user's callbacks it imports them, Ray's MLflow, W&B and Comet
callbacks, and with them MLflow itself: about 1 s of the driver's main thread, before Tune creates
any trial actor (docs/benchmarks.md). A search's listener thread imports MLflow anyway, off that
path. :func:`count_callbacks` gives the same counts from the classes' names, as Ray's count
(``_count_callbacks``) compares them, with nothing imported; :func:`installed` puts it in place of
Ray's for the length of a ``with`` block (Ray records the tag as before), on the Ray versions it
was checked against (:data:`VERIFIED_RAY`; ``tests/search/test_callback_count.py`` compares the
two counts).
"""

from __future__ import annotations

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


@contextmanager
def installed() -> Iterator[bool]:
    """Within the block, Ray's ``tag_callbacks`` (behind ``Tuner.fit``) counts with
    :func:`count_callbacks` and records the result as it always does; yields whether it does (False
    on an unverified Ray version, where Ray's own count runs)."""
    import ray
    from ray.air._internal import usage

    stock = getattr(usage, "_count_callbacks", None)
    if ".".join(ray.__version__.split(".")[:2]) not in VERIFIED_RAY or stock is None:
        yield False
        return
    usage._count_callbacks = count_callbacks
    try:
        yield True
    finally:
        usage._count_callbacks = stock
