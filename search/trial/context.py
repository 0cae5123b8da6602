"""What every trial of a search shares: the data and the judging set-up (not searched).

A :class:`TrialContext` is derived from the space's sections once, in the driver. Its judging part
(:meth:`TrialContext.judging`) is saved with every checkpoint, so that ``search eval CHECKPOINT``
judges a trained model on exactly the images and settings the trial was judged on. The driver
builds the cached corrupted test set once (:func:`prepare`); every trial then reads that cache.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Runtime fields of a context: where this search's files and threads are, not how a trial is judged.
RUNTIME_FIELDS = ("cache_dir", "use_gpu", "torch_threads", "corrupted_path", "threads_path", "num_workers")


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a search shares: the data and the judging set-up (not searched)."""

    dataset: str
    path: str | None
    image_size: int
    train_split: str
    test_split: str
    train_subset: int | None
    test_subset: int | None
    num_workers: int
    data_seed: int
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    table: str
    normalization: str
    eval_subset: int | None
    eval_seed: int
    eval_batch_size: int
    backend: str
    cache_dir: str
    use_gpu: bool
    torch_threads: int
    benchmark_path: str | None = None  # a pre-made benchmark folder instead of corrupting the test set
    corrupted_path: str | None = None  # the cache file the driver built (None: build or find it)
    threads_path: str | None = None  # the share of idle CPUs (search.tune.cores; None: own threads only)

    @classmethod
    def for_space(cls, space: Any) -> TrialContext:
        data, ev, res = space.data, space.eval, space.resources
        path = str(Path(data.path).expanduser().resolve()) if data.path else None
        return cls(
            dataset=data.dataset, path=path, image_size=data.image_size,
            train_split=data.train_split, test_split=data.test_split,
            train_subset=data.train_subset, test_subset=data.test_subset, num_workers=data.num_workers,
            data_seed=space.search.seed, corruptions=tuple(ev.corruptions), severities=tuple(ev.severities),
            table=space.corruption_table, normalization=_absolute_if_file(ev.normalization), eval_subset=ev.subset,
            eval_seed=ev.seed, eval_batch_size=ev.batch_size, backend=ev.backend,
            cache_dir=str(Path(ev.cache_dir).expanduser().resolve()),
            use_gpu=res.gpus_per_trial > 0, torch_threads=max(1, int(res.cpus_per_trial)),
            benchmark_path=str(Path(ev.benchmark_path).expanduser().resolve()) if ev.benchmark_path else None,
        )


    def judging(self) -> dict[str, Any]:
        """The data and judging settings as plain data (what a checkpoint carries)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
                if k not in RUNTIME_FIELDS}

    @classmethod
    def from_judging(cls, judging: dict[str, Any], **runtime: Any) -> TrialContext:
        """The context of a saved trial (``judging()``), with this process's runtime settings."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(judging) - known)
        if unknown:
            raise ValueError(f"unknown judging settings {unknown}; valid: {sorted(known - set(RUNTIME_FIELDS))}")
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in judging.items()}
        defaults = {"cache_dir": ".cache/corrupted", "use_gpu": False, "torch_threads": 1, "num_workers": 0}
        return cls(**{**values, **defaults, **runtime})


def _absolute_if_file(normalization: str) -> str:
    """A baseline file's path made absolute (trials may run in another working directory)."""
    if normalization.lower().endswith((".json", ".csv")):
        return str(Path(normalization).expanduser().resolve())
    return normalization


# ---- data and the judging set (shared by the driver, which builds the cache, and the trials) ----------
def load_data(ctx: TrialContext) -> tuple[Any, Any]:
    """The train and test data sets of the search."""
    from evaluation.data import load_dataset

    train = load_dataset(ctx.dataset, ctx.train_split, subset=ctx.train_subset, path=ctx.path,
                         image_size=ctx.image_size, seed=ctx.data_seed)
    return train, load_test(ctx)


def load_test(ctx: TrialContext) -> Any:
    """The clean test set the trials are judged on."""
    from evaluation.data import load_dataset

    return load_dataset(ctx.dataset, ctx.test_split, subset=ctx.test_subset, path=ctx.path,
                        image_size=ctx.image_size, seed=ctx.data_seed)


def judge(model: Any, ctx: TrialContext, test: Any, corrupted: Any, device: str) -> Any:
    """The robustness report of ``model`` on the clean ``test`` set and its ``corrupted`` set: the one
    judging path of a trial and of ``search eval``."""
    from evaluation.report import evaluate

    return evaluate(model, test, corrupted, normalization=ctx.normalization, batch_size=ctx.eval_batch_size,
                    device=device)


def judging_set(ctx: TrialContext, test: Any, progress: bool = False) -> Any:
    """The cached corrupted test set: built once by the driver, read from the cache by every trial.

    A trial on a node that cannot see the driver's cache file builds the same set again (a pure
    function of its inputs, stored under the same content hash).
    """
    from evaluation.corrupted_set import build_corrupted_set, load_cached

    if ctx.benchmark_path:
        from evaluation.data.corrupted_benchmarks import load_corrupted_benchmark

        return load_corrupted_benchmark(  # no corruptions named: every one the folder holds
            ctx.benchmark_path, corruptions=list(ctx.corruptions) or None, severities=list(ctx.severities),
            image_size=ctx.image_size, subset=ctx.eval_subset, seed=ctx.eval_seed,
        )
    if ctx.corrupted_path and Path(ctx.corrupted_path).is_file():
        return load_cached(ctx.corrupted_path)
    return build_corrupted_set(
        test, corruptions=list(ctx.corruptions), severities=list(ctx.severities), table=ctx.table,
        seed=ctx.eval_seed, subset=ctx.eval_subset, cache_dir=ctx.cache_dir, backend=ctx.backend,
        progress=progress,
    )


def prepare(ctx: TrialContext, progress: bool = False) -> tuple[TrialContext, int]:
    """In the driver, before any trial: load the data and build the corrupted set's cache.

    Returns the context with the cache file's path (what trials read) and the number of classes.
    """
    train, test = load_data(ctx)
    return with_judging_set(ctx, judging_set(ctx, test, progress=progress)), int(train.num_classes)


def with_judging_set(ctx: TrialContext, corrupted: Any) -> TrialContext:
    """The context that points trials at the cache file of ``corrupted`` (when it has one)."""
    path = getattr(corrupted, "path", None)
    return dataclasses.replace(ctx, corrupted_path=str(path) if path else None)


