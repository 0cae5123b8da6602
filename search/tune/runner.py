"""Run (or resume) a search: Ray Tune's ``Tuner`` with Optuna over a validated :class:`SearchSpace`.

``run_search(space)`` does, in order:

1. checks that the run folder holds the same space (a changed space cannot resume) and, before
   anything starts, that this machine has what the space names (``data.path``, folders it can write,
   a tracking store that answers: :mod:`search.tune.preflight`);
2. starts Ray locally (small: the space's CPUs, no dashboard, no idle workers) or joins ``address``;
   meanwhile it loads the data sets and builds the search's corrupted test set once (cached; every
   trial reads the same images): a failure there stops Ray again, before any trial;
3. shares the CPUs of a local Ray that no trial will need any more with the trials still running
   (:mod:`search.tune.cores`);
4. creates the Tune experiment ``<storage>/<name>`` with ``SpaceSearch`` (Optuna, the space's sampler
   and seed, the study in ``<run folder>/optuna.db``) behind a ``ConcurrencyLimiter`` — or, when that
   experiment exists, restores it: finished trials are kept, unfinished ones resume from their last
   checkpoint, and the searcher's state (Optuna study, sampler, counters) comes back with it;
5. runs it with the live view and the record writer, whose listeners (the MLflow tracker, the
   study links) log each record on a thread of their own (:mod:`search.tune.listener_thread`);
6. prints the Pareto front of the trials that ran their full budget, and closes the MLflow run,
   while Ray shuts down beside it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TextIO

from search.errors import UserError
from search.results import run_folder as run_files
from search.results.records import TrialRecord, load_records
from search.results.rung_truth import print_rung_truth, rung_correlations
from search.results.summary import pareto_front, print_front
from search.space import SearchSpace
from search.trial.rungs import scheduler_rung_epochs
from search.tune import callback_count, reuse
from search.tune.interrupt import WORKER_SETUP_HOOK, Interruption
from search.tune.listener_thread import ListenerThread
from search.tune.preflight import discard, first_missing, preflight

# Ray's system config for a search's Ray: no idle worker processes started for the driver. Ray Tune
# gives every trial actor a runtime env (environment variables), so Ray starts a dedicated worker
# process for each and never places one on those idle workers (each spends a second of CPU importing
# Ray while the search sets up).
RAY_SYSTEM_CONFIG = {"prestart_worker_first_driver": False}
LISTENER_COALESCE_S = 5.0  # the record listeners' gathering window (search/tune/listener_thread.py)
RAY_CLUSTERS_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a local Ray on 127.0.0.1 (see _loopback_only)


@dataclass
class SearchResult:
    """How a search ended and what it gave.

    Attributes:
        run_folder: the local run folder.
        status: ``"finished"`` (every trial ended) or ``"interrupted"``.
        records: every trial's record.
        front: the records on the Pareto front (finished, full budget), best first objective first.
        resumed: True when this call resumed an earlier run of the search.
        wall_time_s: seconds this call took, Ray start-up and the corrupted set included.
        setup_time_s: seconds before the first trial could start (data, corrupted set, Ray).
        timings: parts of the setup, from the start of data loading: ``ray_start_s`` (Ray started),
            ``prepare_s`` (Ray started and the corrupted set built, side by side); then
            ``fit_s`` (the trials), within it ``first_trial_s`` (until the first trial started: its
            worker process's start) and ``trials_span_s`` (the first trial's start to the last
            one's end), and ``tracking_finish_s`` (MLflow's final front, plots, importances).
    """

    run_folder: Path
    status: str
    records: list[TrialRecord]
    front: list[TrialRecord]
    resumed: bool
    wall_time_s: float
    setup_time_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def run_search(
    space: SearchSpace,
    *,
    address: str | None = None,
    tracking_uri: str | None = None,
    verbose: bool = False,
    stream: TextIO | None = None,
) -> SearchResult:
    """Run the search of ``space`` to the end (or resume it); see the module docstring."""
    start = time.monotonic()
    out = stream or sys.stdout
    run_folder = space.run_folder
    _check_same_space(space, run_folder)
    preflight(space, tracking_uri)  # what this machine lacks (data, folders, tracking): before anything starts
    new_folder = first_missing(run_folder)  # what this call creates, and removes should setup fail
    print(f"search {space.name}: {len(space.params)} searched parameters ({space.size_text()}), "
          f"{space.search.num_trials} trials, run folder {run_folder}", file=out, flush=True)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    # Ray starts (seconds, mostly spent waiting for its processes) while a thread loads the data
    # and builds (or reads) the corrupted test set. A bad data set stops the search there, before
    # any trial starts. The build's progress line rewrites itself with '\r': only for a terminal.
    progress = verbose or sys.stderr.isatty()
    # A trial's epochs reach MLflow at most LISTENER_COALESCE_S late, in a fraction of the calls.
    listening = ListenerThread(partial(_record_listeners, space, run_folder, tracking_uri), LISTENER_COALESCE_S)
    with ThreadPoolExecutor(max_workers=1) as pool:
        preparing = pool.submit(prepare, space, progress)
        started_ray = start_ray(space, address, verbose)
        timings["ray_start_s"] = time.monotonic() - t0
        try:
            context, num_classes, data = preparing.result()
        except BaseException:
            if started_ray:
                stop_ray()
            wait([preparing])
            discard(new_folder)  # a search that never started leaves no run folder
            raise
    timings["prepare_s"] = time.monotonic() - t0
    run_folder.mkdir(parents=True, exist_ok=True)
    if space.text and not run_files.space_copy(run_folder).exists():
        run_files.space_copy(run_folder).write_text(space.text)
    # The listener thread starts with the trials (RecordWriter.setup): it imports MLflow and opens its
    # store (a server given by the user was checked reachable by the preflight) while their worker
    # processes start. Begun beside Ray's start and the data instead, its pure-Python work held the
    # interpreter lock that the corrupted set's build needed: the first trial started 5 s later
    # (docs/benchmarks.md). A trial that ends before its first record reached the listeners is
    # linked by the searcher (search.tune.study_links.LinkBeforeTell).
    try:
        with tempfile.TemporaryDirectory(prefix="search-cores-") as cores:
            spare = _spare_cores(space, Path(cores)) if started_ray and not address else None
            if spare is not None:
                context = context.with_runtime(threads_path=str(spare.path))
            tuner, resumed, live = _tuner(space, context, data, num_classes, run_folder, listening, verbose, out, spare)
            setup = time.monotonic() - start
            status = "finished"
            t0 = time.monotonic()
            # Ctrl-C ends fit() after Ray's last snapshot of every running trial (search/tune/interrupt.py).
            # During fit() only: reuse_actors made safe; Ray's callback count without importing MLflow.
            with Interruption(out) as stop, reuse.installed(), callback_count.installed():
                try:
                    tuner.fit()
                except KeyboardInterrupt:  # a second Ctrl-C: at once, without the last snapshot
                    stop.interrupted = True
            if stop.interrupted:
                status = "interrupted"
            timings["fit_s"] = time.monotonic() - t0
            if live.first_start is not None and live.last_end is not None:
                timings["first_trial_s"] = live.first_start - t0
                timings["trials_span_s"] = live.last_end - live.first_start
        listeners = listening.close()  # every record handed over is in MLflow now
        tracker = listeners[0] if listeners else None
        records = load_records(run_folder)
        if status == "finished":  # never after an interruption: its running trials resume next time
            records = _drop_lost_trials(records, run_folder, out, tracker)
        ended = sum(r.status in ("finished", "failed", "stopped") for r in records)
        if ended < space.search.num_trials:
            status = "interrupted"
    except BaseException:
        if listening.started:  # never started: nothing to drain, and no store to make for nothing
            listening.close(timeout_s=10.0)
        if started_ray:
            stop_ray()
        raise

    # Ray's shutdown (a second or more: its processes end one by one) runs beside the summary and
    # MLflow's final front, plots and importances, which need nothing of Ray.
    with ThreadPoolExecutor(max_workers=1) as pool:
        stopping = pool.submit(stop_ray) if started_ray else None
        front = pareto_front(records, space.objectives)
        print_front(front, space.objectives, [p.name for p in space.params], records, out)
        print_rung_truth(rung_correlations(records, space.objectives, scheduler_rung_epochs(space)), records, out)
        if tracker is not None:
            t0 = time.monotonic()
            tracker.finish(status, records)
            timings["tracking_finish_s"] = time.monotonic() - t0
            print(tracker.ui_hint(), file=out, flush=True)
        if stopping is not None:
            stopping.result()
    wall = time.monotonic() - start
    print(f"search {space.name}: {status} in {wall:.0f}s; records in {run_folder / 'trials'}"
          + ("" if status == "finished" else "; run the same command again to resume"), file=out, flush=True)
    return SearchResult(run_folder, status, records, front, resumed, wall, setup, timings)


def _drop_lost_trials(records: list, run_folder: Path, out: TextIO, tracker=None) -> list:
    """Once Tune has run to its end every trial it knows has ended, so a record still ``running``
    belongs to a trial that started after Ray's last experiment snapshot before a SIGKILL:
    the restored experiment never knew it and ran another trial in its place (``SpaceSearch.restore``
    fails its Optuna twin). Its record and its MLflow child run are removed, so each trial of the
    budget is counted once. (Never called after a Ctrl-C: Ray's last snapshot then holds every
    running trial, which the next run resumes.)"""
    from search.results.records import record_path

    lost = [r for r in records if r.status == "running"]
    for record in lost:
        record_path(run_folder, record.trial_id).unlink(missing_ok=True)
    if tracker is not None:
        tracker.drop_trials([r.trial_id for r in lost])
    if lost:
        print(f"dropped {len(lost)} trial(s) started just before the interruption and run again: "
              f"{', '.join(r.trial_id for r in lost)}", file=out)
    return [r for r in records if r.status != "running"]


# ---- before the trials -----------------------------------------------------------------------------------
def _check_same_space(space: SearchSpace, run_folder: Path) -> None:
    """A run folder resumes only the space it was made from (Ray and Optuna cannot change a space).

    The resolved spaces are compared, so comments and formatting may change between runs.
    """
    import yaml

    from search.space import parse_space

    copy = run_files.space_copy(run_folder)
    if not copy.exists():
        return
    try:
        before = parse_space(yaml.safe_load(copy.read_text()), source=str(copy), default_name=space.name)
        same = before.resolved() == space.resolved()
    except (UserError, yaml.YAMLError):
        same = False
    if not same:
        raise UserError(
            f"{space.source}: the run folder {run_folder} holds a search of a different version of this "
            f"space ({copy}); a changed space cannot resume: give it another `name` or remove the folder"
        )


def prepare(space: SearchSpace, progress: bool):
    """The trials' shared context (with the corrupted set's cache file), the number of classes, and
    the (train, test) data sets, which the trials receive through Ray's object store."""
    from search.trial.context import TrialContext, judging_set, load_data, with_judging_set
    from search.trial.rung_set import with_rung_set

    context = TrialContext.for_space(space)
    try:
        train, test = load_data(context)
    except (ValueError, FileNotFoundError, NotADirectoryError) as err:
        raise UserError(f"{space.source}: data: {err}") from None
    if space.eval.subset is not None and space.eval.subset > len(test):
        raise UserError(f"{space.source}: eval.subset: given {space.eval.subset}; expected at most the "
                        f"{len(test)} images of the test set (data.test_split {space.data.test_split!r})")
    try:
        # The driver builds the set once for every trial: on its GPU when it has one.
        corrupted = judging_set(context, test, progress, device="cuda" if _driver_has_cuda() else "cpu")
    except ValueError as err:
        raise UserError(f"{space.source}: eval: {err}") from None
    context = with_rung_set(context, corrupted)  # MO-ASHA's rung set: drawn once, here
    return with_judging_set(context, corrupted), int(train.num_classes), (train, test)


def _driver_has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _record_listeners(space: SearchSpace, run_folder: Path, tracking_uri: str | None) -> list:
    """The record writer's listeners, built on the listener thread: the MLflow tracker (always
    first: the search's end reads it), then the Optuna study links, which need its run ids."""
    from search.tracking import SearchTracker
    from search.tune.study_links import StudyLinks

    # Not two INFO lines on stderr ("Creating initial MLflow database tables...") for each new store.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    tracker = SearchTracker(run_folder, space, tracking_uri)
    tracker.check_reachable()  # creates (and migrates) a new SQLite store: before the trials
    return [tracker, StudyLinks(run_folder, space.name, tracker.run_id_of)]


def start_ray(space: SearchSpace, address: str | None, verbose: bool) -> bool:
    """Start a small local Ray, or join ``address``; False when Ray was already running here."""
    import ray

    if ray.is_initialized():
        return False
    quiet = {} if verbose else {"log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UserError(f"--address {address}: cannot join the Ray cluster ({err})") from None
        return True
    # address="local": always a new local Ray, never a cluster that happens to run on this machine.
    # The setup hook ends a trial's worker with its raylet, hence with a killed search.
    with _loopback_only():
        ray.init(address="local", num_cpus=local_cpus(space), include_dashboard=False, _system_config=RAY_SYSTEM_CONFIG,
                 runtime_env={"worker_process_setup_hook": WORKER_SETUP_HOOK}, **quiet)
    return True


@contextlib.contextmanager
def _loopback_only():
    """A local Ray that listens on 127.0.0.1 only, not on every interface (Ray's default).

    Ray's servers bind to the node's address, which Ray takes to be the machine's outward one
    (even when told 127.0.0.1) unless multi-node clusters are off: the switch Ray has for macOS
    and Windows, read from the environment at import and by the processes ``ray.init`` starts.
    Both are set for the start of this Ray only, so that joining a cluster later is unchanged.
    """
    from ray._private import ray_constants

    saved = os.environ.get(RAY_CLUSTERS_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[RAY_CLUSTERS_ENV], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]
        if saved[0] is None:
            os.environ.pop(RAY_CLUSTERS_ENV, None)
        else:
            os.environ[RAY_CLUSTERS_ENV] = saved[0]


def stop_ray() -> None:
    import ray

    ray.shutdown()


def local_cpus(space: SearchSpace) -> int:
    res = space.resources
    return res.num_cpus or max(1, math.ceil(res.cpus_per_trial * space.search.concurrency))


def _spare_cores(space: SearchSpace, folder: Path):
    """The callback that shares a local Ray's idle CPUs with the last running trials."""
    from search.tune.cores import SpareCores

    res = space.resources
    return SpareCores(folder / "threads.json", local_cpus(space), res.cpus_per_trial, space.search.num_trials)


# ---- the Tune experiment --------------------------------------------------------------------------------
def _tuner(space, context, data, num_classes, run_folder, listening, verbose, out, spare):
    """A new Tuner, or the restored one when the experiment exists; returns (tuner, resumed, live view)."""
    from ray import tune

    from search.trial.train import train_trial
    from search.tune.live import LiveView
    from search.tune.recorder import RecordWriter
    from search.tune.schedulers import make_scheduler
    from search.tune.study_links import LinkBeforeTell

    # Epoch results carry no corruption metrics (those come once, at the end of a trial); Tune
    # would otherwise reject every result that lacks one of the searcher's metrics.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    if not verbose:
        # Ray's new output engine prints its tables even with verbose=0; the old one is silent at 0.
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    res = space.resources
    trainable = tune.with_resources(
        # The data sets go through the object store once: a trial neither reads nor decodes them again
        # (for small sets like the digits, that was a second of imports and work in every new trial).
        tune.with_parameters(train_trial, context=context, data=data),
        {"cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial},
    )
    live = LiveView(space.objectives, [p.name for p in space.params], space.search.num_trials,
                    space.train.epochs, stream=out)
    live.seed(load_records(run_folder))
    # The tracker hears of each record from the writer that wrote it (no order between callbacks),
    # on the listener thread (Tune's loop never waits for MLflow).
    callbacks = [RecordWriter(run_folder, listeners=[listening]), live]
    if spare is not None:
        callbacks.append(spare)
    ray_verbose = 2 if verbose else 0

    restoring = tune.Tuner.can_restore(space.experiment_path)
    scheduler = make_scheduler(space, run_folder, resume=restoring)  # MO-ASHA: its rungs from the run folder
    if restoring:
        print(f"search {space.name}: resuming the search in {space.experiment_path}", file=out, flush=True)
        tuner = tune.Tuner.restore(
            space.experiment_path,
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=space.search.resume_errored,
        )
        # The restored RunConfig is the pickled one; this run's callbacks and output replace it
        # (Tuner has no public setter; get_run_config returns the live object).
        run_config = tuner._local_tuner.get_run_config()
        run_config.callbacks = callbacks
        run_config.verbose = ray_verbose
        # Private, for want of a public way in Ray 2.60: Tuner.restore takes no tune_config (param_space
        # only re-specifies the search space) and Tune never calls TrialScheduler.save/restore on a restore.
        if scheduler is not None:  # this run's, with the rungs as the killed run left them (Ray's is a copy)
            tuner._local_tuner._tune_config.scheduler = scheduler
        # The restored searcher (a ConcurrencyLimiter around SpaceSearch) links to this run's MLflow runs.
        tuner._local_tuner._tune_config.search_alg.searcher.before_tell = LinkBeforeTell(listening)
        return tuner, True, live

    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=_search_alg(space, num_classes, run_folder, LinkBeforeTell(listening)),
            scheduler=scheduler,
            num_samples=space.search.num_trials,
            # One worker process per concurrent trial, reused by the next trial: a fresh one costs
            # seconds of imports (Ray Tune, torch, timm) per trial. A kept actor lost with its node
            # fails its next call and Tune retries that trial on a new actor (with search/tune/reuse.py's
            # fix; tests/search/test_distributed.py kills nodes during and just after trials).
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=space.name,
            storage_path=space.experiment_path.rsplit("/", 1)[0],
            failure_config=tune.FailureConfig(max_failures=space.search.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=callbacks,
            verbose=ray_verbose,
        ),
    )
    return tuner, False, live


def _search_alg(space: SearchSpace, num_classes: int, run_folder: Path, before_tell):
    """SpaceSearch (Optuna, RDB study in the run folder) behind a ConcurrencyLimiter."""
    import optuna
    from ray.tune.search import ConcurrencyLimiter

    from search.space.sampling import SpaceSampler, make_sampler
    from search.tune.searcher import SpaceSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(run_files.study_uri(run_folder))
    searcher = SpaceSearch(
        SpaceSampler.for_space(space, num_classes=num_classes),
        metric=space.metrics,
        mode=space.directions,
        sampler=make_sampler(space.search),
        study_name=space.name,
        storage=storage,
        space_size=space.size(),
        before_tell=before_tell,
    )
    with warnings.catch_warnings():  # "experimental" since Optuna 3.2, unchanged since
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        searcher.study.set_metric_names(list(space.metrics))  # optuna-dashboard: the objectives by name
    return ConcurrencyLimiter(searcher, max_concurrent=space.search.concurrency)

