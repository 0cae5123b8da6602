"""Splitting the engine's CPU work over threads, and the seeds that keep it deterministic.

Torch kernels, Pillow and OpenCV release the GIL, so plain threads use every core. The engine cuts
a batch into fixed pieces (chunks of images, or single images for the per-image paths), gives each
piece its own seed derived from the call's seed and the piece's index (:func:`sub_seed`), and runs
the pieces on one shared pool. The output depends on the pieces, never on how many threads ran
them or in which order they finished.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")
R = TypeVar("R")

_PREFIX = "corruptions-cpu"
_POOL: ThreadPoolExecutor | None = None
_POOL_PID = -1
_POOL_LOCK = threading.Lock()


def sub_seed(seed: int, index: int) -> int:
    """The 32-bit seed of piece ``index`` (an image, a chunk) of a call seeded with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _pool() -> ThreadPoolExecutor:
    """The shared pool, created on first use (again in a forked child, which has no threads)."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid():
            _POOL_PID = os.getpid()
            _POOL = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix=_PREFIX)
        return _POOL


def default_workers(pieces: int) -> int:
    """Threads for ``pieces`` independent pieces: torch's CPU thread setting, capped by the cores."""
    return max(1, min(pieces, torch.get_num_threads(), os.cpu_count() or 1))


def thread_map(fn: Callable[[T], R], items: Sequence[T], workers: int | None = None) -> list[R]:
    """``[fn(item) for item in items]``, spread over ``workers`` threads (default
    :func:`default_workers`), results in order. Runs inline with one worker, and when called
    from one of the pool's own threads (a nested call must not wait on its own pool)."""
    workers = default_workers(len(items)) if workers is None else max(1, min(workers, len(items)))
    if workers == 1 or threading.current_thread().name.startswith(_PREFIX):
        return [fn(item) for item in items]
    # `workers` contiguous runs of items, one task each: fewer hand-offs than one task per item.
    bounds = np.linspace(0, len(items), workers + 1).round().astype(int)
    runs = [items[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]

    def run(part: Sequence[T]) -> list[R]:
        # One intra-op thread per worker: the pieces are the parallelism, and OpenMP teams inside
        # the workers would fight for the same cores (zoom blur was 1.7x slower).
        torch.set_num_threads(1)
        return [fn(item) for item in part]

    threads = torch.get_num_threads()
    try:
        return [r for part in _pool().map(run, runs) for r in part]
    finally:
        torch.set_num_threads(threads)  # the setting is process-wide: give the caller its own back
