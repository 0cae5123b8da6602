"""Benchmark of the search: ``search run`` against the bare Ray Tune script a user would write
instead; Ray's and Optuna's per-trial scheduling cost.

    flock /tmp/cpu.lock python benchmarks/bench_search.py                 # 3 rounds of both arms, Ray, Optuna
    flock /tmp/cpu.lock python benchmarks/bench_search.py --rounds 5 --space spaces/quickstart.yaml
    python benchmarks/bench_search.py --skip-versus                        # Ray and Optuna parts only

1. ``search run SPACE`` (the CLI, as a user runs it) against a bare script: ``ray.init``, the data
   and the corrupted set, then a ``Tuner`` with Ray's ``OptunaSearch`` (the same define-by-run space,
   sampler and seed) behind a ``ConcurrencyLimiter``, running the same trial function
   (``search.trial.train.train_trial``) with the same concurrency, trials and CPUs per trial, Ray's
   defaults otherwise. Each arm is a fresh process in a fresh folder (empty corrupted-set cache),
   the two interleaved for ``--rounds`` rounds. Per arm:

   - ratio = wall time / (sum of the trials' ``time_total_s`` / concurrency): the wall time (process
     start to exit, imports and Ray's start and shutdown included) over the trials' own time packed
     perfectly on the slots; 1.0 would be no overhead at all;
   - CPU seconds that are not the trials' own, per trial: every process of the arm (the driver, Ray's
     processes, the trials' worker processes; ``psutil`` samples every :data:`SAMPLE_S`) less the
     trials' own CPU (``trial_cpu_s``: ``time.process_time`` in the trial from its start to the end
     of its judging, all threads of its process).
   - where the wall time that is not packed trials goes: from the process's start until the first
     trial began, the tail (from the moment a slot had nothing left to run until the last trial
     ended: the last trials alone on the machine), and after the last trial (summary, shutdown).
2. Ray: the same Tuner, searcher, callbacks and checkpointing as a search, with a trainable that
   does no work (one report per "epoch" with a tiny checkpoint): seconds per trial.
3. Optuna: ask + the define-by-run space + tell on the SQLite study, as the searcher does per trial.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Ray's workers inherit the environment, not sys.path: they import this checkout too.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)


# ---- 1. `search run` against the bare Ray Tune script ------------------------------------------------
ARMS = ("ours", "bare")
# How often the arm's processes are sampled. Their CPU time is read from the samples (the last
# one of a process may miss up to this much): Ray's processes reap their children without waiting
# for them (SIGCHLD ignored), so getrusage(RUSAGE_CHILDREN) never sees the workers' time.
SAMPLE_S = 0.1


def bare_search(space_file: str) -> None:
    """What a user writes instead of ``search run``: Ray Tune's Tuner and OptunaSearch over the same
    space and trial function, Ray's defaults otherwise (run in the arm's folder)."""
    import ray
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from search.space import load_space
    from search.space.sampling import SpaceSampler, make_sampler
    from search.trial.context import TrialContext, judging_set, load_data, with_judging_set
    from search.trial.rung_set import with_rung_set
    from search.trial.train import train_trial

    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"  # epoch results lack the corruption metrics
    space = load_space(space_file)
    res = space.resources
    ray.init(num_cpus=math.ceil(res.cpus_per_trial * space.search.concurrency), include_dashboard=False)
    context = TrialContext.for_space(space)
    train, test = load_data(context)
    corrupted = judging_set(context, test)
    context = with_judging_set(with_rung_set(context, corrupted), corrupted)
    searcher = OptunaSearch(SpaceSampler.for_space(space, num_classes=int(train.num_classes)),
                            metric=list(space.metrics), mode=list(space.directions), sampler=make_sampler(space.search))
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(train_trial, context=context, data=(train, test)),
                            {"cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial}),
        tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, max_concurrent=space.search.concurrency),
                                    num_samples=space.search.num_trials),
        run_config=tune.RunConfig(name="bare", storage_path=str(Path("ray_results").resolve()),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )
    tuner.fit()


def _arm_command(arm: str, space_file: str) -> list[str]:
    if arm == "bare":
        return [sys.executable, str(Path(__file__).resolve()), "--bare", space_file]
    entry = Path(sys.executable).parent / "search"  # the console script a user runs
    if entry.exists():
        return [str(entry), "run", space_file]
    return [sys.executable, "-c", "import sys; from search.cli import main; sys.exit(main())", "run", space_file]


def _kind(proc, root_pid: int) -> str:
    """driver (the arm's own process), workers (Ray's worker processes: the trials'), or ray (the rest)."""
    if proc.pid == root_pid:
        return "driver"
    cmd = " ".join(proc.cmdline())
    return "workers" if cmd.startswith("ray::") or "default_worker.py" in cmd else "ray"


class _Sampler:
    """Samples the CPU time of every process under this one, by kind, every :data:`SAMPLE_S`."""

    def __init__(self, root_pid: int) -> None:
        import threading

        import psutil

        self.root_pid, self.me = root_pid, psutil.Process()
        self.kinds: dict[int, str] = {}
        self.cpu: dict[int, float] = {}  # pid -> last CPU seconds seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            for proc in self.me.children(recursive=True):
                try:
                    times = proc.cpu_times()
                    kind = self.kinds.get(proc.pid) or _kind(proc, self.root_pid)
                except psutil.Error:
                    continue
                self.kinds[proc.pid] = kind
                self.cpu[proc.pid] = times.user + times.system
            self._stop.wait(SAMPLE_S)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        by_kind: dict[str, float] = {}
        for pid, seconds in self.cpu.items():
            by_kind[self.kinds[pid]] = by_kind.get(self.kinds[pid], 0.0) + seconds
        return by_kind


def _trial_results(folder: Path) -> list[dict]:
    """Each trial's last Ray result (``time_total_s``) with its judged one's ``trial_cpu_s``."""
    trials = []
    for path in folder.rglob("result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            judged = [r for r in rows if "trial_cpu_s" in r]
            trials.append({"time_total_s": rows[-1]["time_total_s"], "finished": bool(judged),
                           # wall clock (Ray's whole-second timestamps): when it began and ended
                           "start": rows[0]["timestamp"] - rows[0]["time_this_iter_s"], "end": rows[-1]["timestamp"],
                           "trial_cpu_s": judged[-1]["trial_cpu_s"] if judged else 0.0,
                           "trial_time_s": judged[-1]["trial_time_s"] if judged else 0.0})
    return trials


def run_arm(arm: str, space_file: str, folder: Path, concurrency: int) -> dict[str, float]:
    """One run of ``arm`` in the empty ``folder``: wall time, the trials' own time, CPU by kind."""
    import subprocess

    folder.mkdir(parents=True)
    env = dict(os.environ)
    with open(folder / "output.log", "w") as log:
        began, start = time.time(), time.monotonic()
        proc = subprocess.Popen(_arm_command(arm, space_file), cwd=folder, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        sampler = _Sampler(proc.pid)
        code = proc.wait()
        wall = time.monotonic() - start
    time.sleep(2 * SAMPLE_S)  # the last samples of Ray's processes, which end with the driver
    by_kind = sampler.stop()
    if code != 0:
        raise SystemExit(f"{arm} failed ({code}):\n" + (folder / "output.log").read_text()[-3000:])
    trials = _trial_results(folder)
    own = sum(t["time_total_s"] for t in trials)
    own_cpu = sum(t["trial_cpu_s"] for t in trials)
    n = max(len(trials), 1)
    cpu_total = sum(by_kind.values())
    ends = sorted(t["end"] for t in trials)
    return {
        "wall_s": wall, "trials": len(trials), "finished": sum(t["finished"] for t in trials),
        "own_s": own, "packed_s": own / concurrency, "ratio": wall / (own / concurrency),
        # Where the wall time that is not packed trials goes: until the first trial began, the tail
        # (from the moment a slot had nothing left to run to the last trial's end), after it.
        "to_first_s": min(t["start"] for t in trials) - began,
        "tail_s": ends[-1] - ends[-min(concurrency, len(ends))],
        "after_last_s": began + wall - ends[-1],
        "cpu_total_s": cpu_total, "trial_cpu_s": own_cpu, "overhead_cpu_s": cpu_total - own_cpu,
        "overhead_cpu_per_trial": (cpu_total - own_cpu) / n,
        # Per trial, by kind; the trials' own CPU is taken from the workers' share.
        "driver_per_trial": by_kind.get("driver", 0.0) / n,
        "ray_per_trial": by_kind.get("ray", 0.0) / n,
        "workers_per_trial": (by_kind.get("workers", 0.0) - own_cpu) / n,
    }


def space_with_trials(space_file: str, trials: int, folder: Path) -> str:
    """A copy of ``space_file`` in ``folder`` with ``search.num_trials: trials``."""
    import yaml

    data = yaml.safe_load(Path(space_file).read_text())
    data["search"]["num_trials"] = trials
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{Path(space_file).stem}-{trials}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def bench_versus(space_file: str, rounds: int, workdir: Path,
                 more_trials: int | None = None) -> dict[str, list[dict[str, float]]]:
    """``rounds`` rounds of both arms, interleaved (the first arm alternates), each printed as it ends.
    With ``more_trials``, each round also runs both arms on that many trials (keys ``ARM+``)."""
    from search.space import load_space

    concurrency = load_space(space_file).search.concurrency
    sizes = [("", space_file)]
    if more_trials:
        sizes.append(("+", space_with_trials(space_file, more_trials, workdir / "spaces")))
    runs: dict[str, list[dict[str, float]]] = {arm + tag: [] for tag, _ in sizes for arm in ARMS}
    for i in range(rounds):
        for tag, file in sizes:
            for arm in ARMS if i % 2 == 0 else ARMS[::-1]:
                r = run_arm(arm, file, workdir / f"{arm}{tag}-{i}", concurrency)
                runs[arm + tag].append(r)
                print(f"  round {i + 1} {arm + tag:5s}: wall {r['wall_s']:5.1f} s, trials' own {r['own_s']:5.1f} s "
                  f"({r['finished']}/{r['trials']} finished), packed {r['packed_s']:5.1f} s, ratio {r['ratio']:.3f}; "
                  f"CPU not the trials' own {r['overhead_cpu_per_trial']:.2f} s/trial (driver {r['driver_per_trial']:.2f}, "
                  f"Ray {r['ray_per_trial']:.2f}, workers {r['workers_per_trial']:.2f}); first trial at {r['to_first_s']:.0f} s, "
                  f"tail {r['tail_s']:.0f} s, {r['after_last_s']:.0f} s after the last; load {os.getloadavg()[0]:.1f}", flush=True)
    return runs


def print_versus(runs: dict[str, list[dict[str, float]]]) -> None:
    med = {arm: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for arm, rs in runs.items()}
    print("| arm | wall | trials' own (sum time_total_s) | packed | ratio | CPU not the trials' own, per trial "
          "(driver / Ray / workers) | first trial at / tail / after the last |")
    print("|---|---|---|---|---|---|---|")
    for arm, m in med.items():
        name = arm.replace("+", f" ({m['trials']:.0f} trials)")
        print(f"| {name} | {m['wall_s']:.1f} s | {m['own_s']:.1f} s | {m['packed_s']:.1f} s | {m['ratio']:.3f} | "
              f"{m['overhead_cpu_per_trial']:.2f} s ({m['driver_per_trial']:.2f} / {m['ray_per_trial']:.2f} / "
              f"{m['workers_per_trial']:.2f}) | {m['to_first_s']:.0f} / {m['tail_s']:.0f} / {m['after_last_s']:.0f} s |")
    for tag in ("", "+") if "ours+" in runs else ("",):
        per_round = [o["ratio"] / b["ratio"] for o, b in zip(runs["ours" + tag], runs["bare" + tag], strict=True)]
        print(f"ours / bare ratio, {runs['ours' + tag][0]['trials']} trials, median over {len(per_round)} rounds: "
              f"{statistics.median(per_round):.3f} (rounds: {', '.join(f'{x:.3f}' for x in per_round)}); target <= 0.85")
    if "ours+" in runs:
        # What one more trial costs beyond its own training and judging (the fixed start-up cancels):
        # the overhead's growth from the smaller search to the larger one, per added trial, by round.
        for arm in ARMS:
            small, large = runs[arm], runs[arm + "+"]
            added = [(b["overhead_cpu_s"] - a["overhead_cpu_s"]) / (b["trials"] - a["trials"])
                     for a, b in zip(small, large, strict=True)]
            fixed = [a["overhead_cpu_s"] - x * a["trials"] for a, x in zip(small, added, strict=True)]
            print(f"{arm}: CPU not the trials' own per added trial {statistics.median(added):.2f} s "
                  f"(rounds: {', '.join(f'{x:.2f}' for x in added)}), fixed part {statistics.median(fixed):.1f} s; "
                  f"target <= 0.5 s per trial")


def _noop_trainable(config, context=None):
    import tempfile as tf

    from ray import tune

    for epoch in range(1, config["epochs"] + 1):
        with tf.TemporaryDirectory() as tmp:
            Path(tmp, "trial.pt").write_bytes(b"x" * 1024)
            tune.report({"epoch": epoch, "clean_accuracy": 50.0 + epoch}, checkpoint=tune.Checkpoint.from_directory(tmp))
    tune.report({"epoch": config["epochs"], "clean_accuracy": 60.0, "mce": 40.0 + config["num_heads"],
                 "judged": 1, "full_budget": 1})


def bench_ray(workdir: Path, trials: int) -> dict[str, float]:
    """Seconds per trial of Ray Tune around a trainable that does nothing."""
    import ray
    from ray import tune

    from search.space import load_space
    from search.tune.live import LiveView
    from search.tune.recorder import RecordWriter
    from search.tune.runner import _search_alg

    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    space = load_space(REPO / "spaces" / "quickstart.yaml")
    run_folder = workdir / "ray_bench"
    run_folder.mkdir()
    t0 = time.monotonic()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray_start = time.monotonic() - t0
    search_alg = _search_alg(space, 10, run_folder)
    tuner = tune.Tuner(
        tune.with_resources(_noop_trainable, {"cpu": 1}),
        tune_config=tune.TuneConfig(search_alg=search_alg, num_samples=trials, reuse_actors=True),
        run_config=tune.RunConfig(
            name="ray_bench", storage_path=str(workdir / "storage"), verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[RecordWriter(run_folder), LiveView(space.objectives, [], trials, 4, stream=io.StringIO())],
        ),
    )
    t0 = time.monotonic()
    tuner.fit()
    fit = time.monotonic() - t0
    ray.shutdown()
    # Two trials run at once: per trial, the search spends 2 x fit / trials seconds of a slot.
    return {"ray_start_s": ray_start, "fit_s": fit, "per_trial_s": fit / trials,
            "per_trial_slot_s": 2 * fit / trials}


def bench_optuna(workdir: Path, trials: int) -> dict[str, float]:
    """Milliseconds per ask + define-by-run + tell on the SQLite study (TPE, the quickstart space)."""
    import optuna

    from search.space import load_space
    from search.space.sampling import SpaceSampler, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(REPO / "spaces" / "quickstart.yaml")
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=make_sampler(space.search), study_name="bench",
        storage=f"sqlite:///{workdir / 'optuna_bench.db'}",
    )
    space_fn = SpaceSampler.for_space(space, num_classes=10)
    times = []
    for i in range(trials):
        t0 = time.perf_counter()
        trial = study.ask()
        values = space_fn(trial)
        study.tell(trial, [50.0 + (i % 7) + values["num_heads"], 60.0 - (i % 5)])
        times.append(time.perf_counter() - t0)
    return {"median_ms": 1000 * statistics.median(times), "max_ms": 1000 * max(times),
            "last10_ms": 1000 * statistics.mean(times[-10:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=str(REPO / "spaces" / "quickstart.yaml"), help="the space both arms search")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both arms, interleaved")
    parser.add_argument("--more-trials", type=int, default=None, metavar="N",
                        help="each round also runs both arms on N trials: the CPU per added trial")
    parser.add_argument("--skip-versus", action="store_true")
    parser.add_argument("--skip-ray-optuna", action="store_true")
    parser.add_argument("--ray-trials", type=int, default=16)
    parser.add_argument("--optuna-trials", type=int, default=60)
    parser.add_argument("--bare", metavar="SPACE", help=argparse.SUPPRESS)  # the bare arm's own process
    args = parser.parse_args()
    if args.bare:
        bare_search(args.bare)
        return
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        tmp = Path(tmp)
        if not args.skip_versus:
            print(f"search run against a bare Tuner + OptunaSearch script, {Path(args.space).name}, "
                  f"{args.rounds} rounds:", flush=True)
            print_versus(bench_versus(str(Path(args.space).resolve()), args.rounds, tmp / "versus", args.more_trials))
            print(f"  load average after: {os.getloadavg()[0]:.1f}", flush=True)
        if args.skip_ray_optuna:
            return
        r = bench_ray(tmp, args.ray_trials)
        print(f"ray: start {r['ray_start_s']:.1f} s; {args.ray_trials} no-op trials (4 reports + checkpoints each, "
              f"2 at once) in {r['fit_s']:.1f} s: {r['per_trial_s']:.2f} s per trial, "
              f"{r['per_trial_slot_s']:.2f} s of a slot per trial")
        o = bench_optuna(tmp, args.optuna_trials)
        print(f"optuna: ask + space + tell on SQLite, TPE: median {o['median_ms']:.1f} ms, "
              f"last 10 {o['last10_ms']:.1f} ms, max {o['max_ms']:.1f} ms per trial")


if __name__ == "__main__":
    main()
