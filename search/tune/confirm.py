"""``search confirm``: the search's Pareto front retrained with new seeds, at full budget.

:func:`confirm_front` does, in order:

1. takes the front from the run folder's records: rank 1 among the finished, full-budget trials
   (:func:`search.results.front.rank_trials`), best first objective first; ``members`` keeps the
   first K;
2. picks the new seeds, the same ones every time: the search's seed + 1000 k for k = 1, 2, ...,
   skipping any seed a trial of the search trained with (so ``--seeds 5`` after ``--seeds 3`` adds two);
3. makes one job per member and seed: the member's recorded params with only the seed changed (a
   :class:`~search.trial.spec.TrialSpec`). A job whose record in ``confirm/trials/`` has ended
   (finished or failed) is done and never trained again; records are matched to jobs by their params,
   so a configuration on the front twice (a repeat and its twin) is trained once per seed;
4. checks that MLflow holds the search's parent run, then trains the other jobs as trials of the kind
   of Ray cluster ``search run`` uses (local, or ``address``), with the search's own trial function
   (:func:`search.trial.train.train_trial`), data and corrupted test set, resources, concurrency,
   failure budget, actor reuse and Ctrl-C handling. The records writer keeps ``confirm/trials/`` up
   to date and hands each ended trial to :class:`search.tracking.confirm_runs.ConfirmTracker`, which
   logs it as a child run of the parent;
5. writes ``confirm/confirmation.json`` (:class:`search.results.confirmation.Confirmation`) from every
   done job of this request and logs the confirmed means on the parent run.

Ctrl-C stops the running trials (their records stay ``running``) and keeps the ended ones; running
the same command again trains only what is missing, each from its start (a confirmation trial does
not resume mid-way).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ray.tune.search import Searcher

from search.errors import UserError
from search.results.confirmation import Confirmation, ConfirmedMember, SeedResult
from search.results.front import Objective, metric_value, rank_trials, rankable, sort_points
from search.results.json_files import json_safe
from search.results.records import TrialRecord, load_records, record_path
from search.results.run_folder import CONFIRM_RAY_NAME, confirm_dir, confirmation_file, locate, space_copy
from search.trial.spec import TrialSpec

SEED_STEP = 1000  # new seed k of a search seeded s: s + SEED_STEP * k
ENDED = ("finished", "failed")  # a confirmation trial in either state is done


@dataclass(frozen=True)
class Job:
    """One retraining: a front member (its trial id), a new seed, and the flat spec it trains."""

    member: str
    seed: int
    params: dict[str, Any]


@dataclass
class ConfirmResult:
    """What :func:`confirm_front` did and found.

    Attributes:
        run_folder: the search's run folder.
        confirmation: every done job of this request (what ``confirm/confirmation.json`` holds).
        path: the confirmation file.
        status: ``"finished"`` (every job done) or ``"interrupted"``.
        trained: the trials this call trained.
        run_names: each member's run name in MLflow (what the trial is).
        parent_run_id: the search's parent run in MLflow.
        logged: False when MLflow could not be updated at the end (the next call logs it).
    """

    run_folder: Path
    confirmation: Confirmation
    path: Path
    status: str
    trained: int
    run_names: dict[str, str]
    parent_run_id: str | None
    logged: bool = True


# ---- what to train ---------------------------------------------------------------------------------------
def front_members(records: list[TrialRecord], objectives: list[Objective], limit: int | None = None) -> list[TrialRecord]:
    """The records on the front (rank 1 among finished full-budget trials), by rank then first objective."""
    by_id = {r.trial_id: r for r in records}
    front = [by_id[p.trial_id] for p in sort_points(rank_trials(records, objectives), objectives) if p.on_front]
    return front[:limit] if limit is not None else front


def new_seeds(search_seed: int, records: list[TrialRecord], count: int) -> list[int]:
    """``count`` seeds none of the search's trials trained with: ``search_seed + SEED_STEP * k``."""
    used = {int(search_seed)} | {r.params["seed"] for r in records if isinstance(r.params.get("seed"), int)}
    candidates = (search_seed + SEED_STEP * k for k in itertools.count(1))
    return list(itertools.islice((s for s in candidates if s not in used), count))


def job(member: TrialRecord, seed: int) -> Job:
    """The member's recorded spec with only the training seed changed."""
    spec = TrialSpec.from_flat_dict(dict(member.params))
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, seed=seed))
    return Job(member.trial_id, seed, spec.to_flat_dict())


def _key(params: dict[str, Any]) -> str:
    """A record's params as its file holds them (JSON): how a record is matched to its job."""
    return json.dumps(json_safe(params), sort_keys=True)


def ended_records(folder: Path, jobs: list[Job]) -> dict[tuple[str, int], TrialRecord]:
    """The ended confirmation record of each done job (a finished one before a failed one)."""
    by_key: dict[str, TrialRecord] = {}
    records = [r for r in load_records(folder) if r.status in ENDED]
    for record in sorted(records, key=lambda r: (r.status != "finished", r.trial_id)):
        by_key.setdefault(_key(record.params), record)
    return {(j.member, j.seed): by_key[_key(j.params)] for j in jobs if _key(j.params) in by_key}


def build_confirmation(objectives: list[Objective], seeds: list[int], members: list[TrialRecord],
                       ended: dict[tuple[str, int], TrialRecord]) -> Confirmation:
    """The confirmation of ``members`` from the ended records of their jobs (values: finished,
    full-budget trials only; None where a trial failed)."""
    confirmed = []
    for member in members:
        results = []
        for seed in seeds:
            record = ended.get((member.trial_id, seed))
            if record is None:
                continue  # not trained yet (an interrupted confirmation)
            good = rankable(record, objectives)
            results.append(SeedResult(seed, record.trial_id, tuple(
                float(record.final[m]) if good else None for m, _ in objectives)))
        confirmed.append(ConfirmedMember(
            trial_id=member.trial_id,
            params={k: v for k, v in member.params.items() if k != "seed"},
            search_values=tuple(metric_value(member.final, m) for m, _ in objectives),
            runs=tuple(results),
        ))
    return Confirmation(tuple(objectives), tuple(seeds), tuple(confirmed))


# ---- the whole command -------------------------------------------------------------------------------------
def confirm_front(
    name_or_run_folder: str | os.PathLike,
    *,
    seeds: int = 3,
    members: int | None = None,
    seed_values: list[int] | None = None,
    address: str | None = None,
    tracking_uri: str | None = None,
    verbose: bool = False,
    stream: TextIO | None = None,
) -> ConfirmResult:
    """Retrain the front of a search with new seeds (see the module docstring).

    ``seed_values`` replaces the new seeds by given ones (a check of the trainer: the search's own seed
    retrains a member exactly when training is deterministic)."""
    from search.space import load_space
    from search.tracking.confirm_runs import ConfirmTracker
    from search.tracking.run_names import trial_run_name

    out = stream or sys.stdout
    if seeds < 1:
        raise UserError(f"--seeds: given {seeds}; expected a whole number of new seeds, at least 1")
    if members is not None and members < 1:
        raise UserError(f"--members: given {members}; expected a whole number of front members, at least 1")
    run_folder = locate(name_or_run_folder)
    if run_folder is None:
        raise UserError(f"{name_or_run_folder}: not a run folder of a search, nor a space name under runs/")
    if not space_copy(run_folder).is_file():
        raise UserError(f"{run_folder}: no {space_copy(run_folder).name} in it (not a run folder that search run wrote)")
    space = load_space(space_copy(run_folder))
    objectives = [(str(m), str(d)) for m, d in space.objectives]
    records = load_records(run_folder)
    front = front_members(records, objectives, members)
    if not front:
        raise UserError(f"{run_folder}: no finished trial on the Pareto front (none ran its full budget with every "
                        "objective); nothing to confirm")
    chosen = list(seed_values) if seed_values else new_seeds(space.search.seed, records, seeds)
    try:
        jobs = [job(m, s) for m in front for s in chosen]
    except ValueError as err:
        raise UserError(f"{run_folder}: a front member's record is not a trial spec ({err})") from None
    folder = confirm_dir(run_folder)
    ended = ended_records(folder, jobs)
    keys: dict[str, tuple[str, int]] = {}  # each distinct training: its first job (a repeat's twin shares it)
    for j in jobs:
        keys.setdefault(_key(j.params), (j.member, j.seed))
    todo = [j for j in jobs if keys[_key(j.params)] == (j.member, j.seed) and (j.member, j.seed) not in ended]

    run_names = {m.trial_id: trial_run_name(m.params, m.trial_id) for m in front}
    tracker = ConfirmTracker(run_folder, space.name, tracking_uri, lambda r: keys.get(_key(r.params)), run_names)
    tracker.connect()  # before any training: the parent run must be there
    print(f"search confirm {space.name}: {len(front)} front member(s) x {len(chosen)} seed(s) "
          f"({', '.join(map(str, chosen))}): {len(ended)} done, {len(todo)} to train", file=out, flush=True)
    status = "finished"
    if todo:
        _forget_unfinished(folder, todo)
        interrupted = _train(space, run_folder, todo, tracker, address, verbose, out)
        ended = ended_records(folder, jobs)
        if interrupted or len(ended) < len(jobs):  # a twin's job ends with the training it shares
            status = "interrupted"
    confirmation = build_confirmation(objectives, chosen, front, ended)
    path = confirmation.save(run_folder)
    logged = tracker.finish(load_records(folder), confirmation, path)
    return ConfirmResult(run_folder, confirmation, confirmation_file(run_folder), status,
                         sum(1 for j in todo if (j.member, j.seed) in ended), run_names, tracker.parent_run_id, logged)


def _forget_unfinished(folder: Path, todo: list[Job]) -> None:
    """The records of jobs an interruption left running: they are trained again, from their start."""
    wanted = {_key(j.params) for j in todo}
    for record in load_records(folder):
        if record.status == "running" and _key(record.params) in wanted:
            record_path(folder, record.trial_id).unlink(missing_ok=True)


# ---- the trials --------------------------------------------------------------------------------------------
class FixedConfigs(Searcher):
    """A Ray Tune searcher that suggests the given configurations once each, in order."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        super().__init__()
        self._left = [dict(c) for c in configs]

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        return self._left.pop(0) if self._left else Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass  # nothing to learn: the configurations are fixed


def _train(space: Any, run_folder: Path, todo: list[Job], tracker: Any, address: str | None, verbose: bool,
           out: TextIO) -> bool:
    """Train ``todo`` as Ray Tune trials; returns True when a Ctrl-C ended it."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    from search.trial.train import train_trial
    from search.tune import callback_count, reuse
    from search.tune.cores import SpareCores
    from search.tune.interrupt import Interruption
    from search.tune.live import LiveView
    from search.tune.preflight import check_paths
    from search.tune.recorder import RecordWriter
    from search.tune.runner import local_cpus, prepare, start_ray, stop_ray

    check_paths(space)  # data.path and the other folders the trials read
    # As search run: Ray starts while the data load and the corrupted set is read from its cache.
    with ThreadPoolExecutor(max_workers=1) as pool:
        preparing = pool.submit(prepare, space, verbose or sys.stderr.isatty())
        started = start_ray(space, address, verbose)
        try:
            context, _, data = preparing.result()
        except BaseException:
            if started:
                stop_ray()
            raise
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"  # epoch results carry no corruption metrics
    if not verbose:
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # Ray's tables stay silent at verbose=0
    res = space.resources
    epochs = max(int(j.params["epochs"]) for j in todo)
    try:
        with tempfile.TemporaryDirectory(prefix="search-cores-") as cores:
            callbacks: list = [RecordWriter(confirm_dir(run_folder), listeners=[tracker]),
                               LiveView(space.objectives, ["seed"], len(todo), epochs, stream=out)]
            if started and not address:  # a local Ray's idle cores go to the last trials, as in a search
                spare = SpareCores(Path(cores) / "threads.json", local_cpus(space), res.cpus_per_trial, len(todo))
                context = context.with_runtime(threads_path=str(spare.path))
                callbacks.append(spare)
            trainable = tune.with_resources(tune.with_parameters(train_trial, context=context, data=data),
                                            {"cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial})
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=ConcurrencyLimiter(FixedConfigs([j.params for j in todo]),
                                                  max_concurrent=space.search.concurrency),
                    num_samples=len(todo),
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name=CONFIRM_RAY_NAME,
                    storage_path=_ray_storage(space, run_folder),
                    failure_config=tune.FailureConfig(max_failures=space.search.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    callbacks=callbacks,
                    verbose=2 if verbose else 0,
                ),
            )
            with Interruption(out) as stop, reuse.installed(), callback_count.installed():
                try:
                    tuner.fit()
                except KeyboardInterrupt:  # a second Ctrl-C: at once
                    stop.interrupted = True
            return stop.interrupted
    finally:
        if started:
            stop_ray()


def _ray_storage(space: Any, run_folder: Path) -> str:
    """Where Ray keeps the confirmation trials' checkpoints: beside the search's, in its storage URI
    (every node of a cluster writes there), else in the run folder's ``confirm/``."""
    if space.storage_is_uri:
        return f"{space.experiment_path}/{confirm_dir(run_folder).name}"
    return str(confirm_dir(run_folder))
