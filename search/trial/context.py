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

from search.space import schema
from search.trial.rungs import trial_rung_epochs


@dataclass(frozen=True)
class Runtime:
    """Where this process's trials find their threads and the driver's cache file (not how they are judged)."""

    use_gpu: bool = False
    torch_threads: int = 1
    corrupted_path: str | None = None  # the cache file the driver built (None: build or find it)
    threads_path: str | None = None  # the share of idle CPUs (search.tune.cores; None: own threads only)


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a search shares: the space's ``data`` and ``eval`` sections as they are
    (paths made absolute: trials may run in another working directory), the corruption table in
    force, the search's seed (its data subsets) and this process's :class:`Runtime`."""

    data: schema.DataSection
    eval: schema.EvalSection
    table: str
    seed: int
    runtime: Runtime = Runtime()
    rungs: tuple[int, ...] = ()  # epochs judged on the rung set (MO-ASHA's rungs, search.trial.rungs)
    rung_items: tuple[int, ...] = ()  # the rung set's items in the corrupted set, drawn by the driver

    @classmethod
    def for_space(cls, space: Any) -> TrialContext:
        res = space.resources
        return cls(
            data=dataclasses.replace(space.data, path=_absolute(space.data.path)),
            eval=dataclasses.replace(space.eval, normalization=_absolute_if_file(space.eval.normalization),
                                     cache_dir=_absolute(space.eval.cache_dir),
                                     benchmark_path=_absolute(space.eval.benchmark_path)),
            table=space.corruption_table,
            seed=space.search.seed,
            runtime=Runtime(use_gpu=res.gpus_per_trial > 0, torch_threads=max(1, int(res.cpus_per_trial))),
            rungs=trial_rung_epochs(space),
        )

    def with_runtime(self, **changes: Any) -> TrialContext:
        return dataclasses.replace(self, runtime=dataclasses.replace(self.runtime, **changes))

    def judging(self) -> dict[str, Any]:
        """The data and judging settings as plain data (what a checkpoint carries)."""
        return {"data": _plain(self.data), "eval": _plain(self.eval), "table": self.table, "seed": self.seed}

    @classmethod
    def from_judging(cls, judging: dict[str, Any], **runtime: Any) -> TrialContext:
        """The context of a saved trial (``judging()``), with this process's runtime settings."""
        try:
            # A field added to a section after the checkpoint was written takes its schema default.
            data = schema.DataSection(**{**_defaults(schema.DATA), **{k: _tuple(v) for k, v in judging["data"].items()}})
            ev = schema.EvalSection(**{**_defaults(schema.EVAL), **{k: _tuple(v) for k, v in judging["eval"].items()}})
            return cls(data, ev, str(judging["table"]), int(judging["seed"]), Runtime(**runtime))
        except (KeyError, TypeError) as err:
            raise ValueError(f"not the judging settings of a trial ({err}); expected the keys data, eval, table, "
                             "seed as written by TrialContext.judging()") from None


def _defaults(fields: dict[str, schema.Field]) -> dict[str, Any]:
    return {k: f.default for k, f in fields.items()}


def _plain(section: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in schema.section_items(section)}


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _absolute(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def _absolute_if_file(normalization: str) -> str:
    """A baseline file's path made absolute (trials may run in another working directory)."""
    if normalization.lower().endswith((".json", ".csv")):
        return str(Path(normalization).expanduser().resolve())
    return normalization


# ---- data and the judging set (shared by the driver, which builds the cache, and the trials) ----------
def load_data(ctx: TrialContext) -> tuple[Any, Any]:
    """The train and test data sets of the search."""
    from evaluation.data import load_dataset

    data = ctx.data
    train = load_dataset(data.dataset, data.train_split, subset=data.train_subset, path=data.path,
                         image_size=data.image_size, seed=ctx.seed)
    return train, load_test(ctx)


def load_test(ctx: TrialContext) -> Any:
    """The clean test set the trials are judged on."""
    from evaluation.data import load_dataset

    data = ctx.data
    return load_dataset(data.dataset, data.test_split, subset=data.test_subset, path=data.path,
                        image_size=data.image_size, seed=ctx.seed)


def judge(model: Any, ctx: TrialContext, test: Any, corrupted: Any, device: str, progress: Any = None) -> Any:
    """The robustness report of ``model`` on the clean ``test`` set and its ``corrupted`` set: the one
    judging path of a trial and of ``search eval`` (``progress``: see :func:`evaluation.report.evaluate`)."""
    from evaluation.axes import judge_axes
    from evaluation.report import evaluate

    ev = ctx.eval
    report = evaluate(model, test, corrupted, normalization=ev.normalization, batch_size=ev.batch_size, device=device,
                      progress=progress)
    extra, curves = judge_axes(  # the other axes the eval section asks for (issue 15)
        model, test, attacks=ev.adversarial, epsilon=ev.adv_epsilon, steps=ev.adv_steps, adv_subset=ev.adv_subset,
        lesion=ev.lesion, shift_sets=ev.shift_sets, image_size=ctx.data.image_size, seed=ev.seed,
        batch_size=ev.batch_size, device=device, positions=corrupted.source_indices)
    report.extra.update(extra)
    report.curves.update(curves)
    return report


def judging_set(ctx: TrialContext, test: Any, progress: bool = False, device: str = "cpu") -> Any:
    """The cached corrupted test set: built once by the driver, read from the cache by every trial.

    A trial on a node that cannot see the driver's cache file builds the same set again (a pure
    function of its inputs, stored under the same content hash).
    """
    from evaluation.corrupted_set import build_corrupted_set, load_cached

    ev = ctx.eval
    if ev.benchmark_path:
        from evaluation.data.corrupted_benchmarks import check_against_clean, load_corrupted_benchmark

        premade = load_corrupted_benchmark(  # no corruptions named: every one the folder holds
            ev.benchmark_path, corruptions=list(ev.corruptions) or None, severities=list(ev.severities),
            image_size=ctx.data.image_size, subset=ev.subset, seed=ev.seed,
        )
        return check_against_clean(premade, test, ctx.data.image_size)  # refused when it does not fit the run
    cached = ctx.runtime.corrupted_path
    if cached and Path(cached).is_file():
        return load_cached(cached)
    return build_corrupted_set(
        test, corruptions=list(ev.corruptions), severities=list(ev.severities), table=ctx.table,
        seed=ev.seed, subset=ev.subset, cache_dir=ev.cache_dir, backend=ev.backend, progress=progress,
        device=device if ev.backend == "torch" else "cpu",
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
    return ctx.with_runtime(corrupted_path=str(path) if path else None)


