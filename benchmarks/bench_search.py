"""Benchmark of the search (issue 4): the quickstart's wall time and overhead; Ray's and Optuna's
per-trial scheduling cost.

    python benchmarks/bench_search.py                 # all three parts
    python benchmarks/bench_search.py --skip-quickstart

1. The quickstart as a user runs it from a fresh checkout (empty corrupted-set cache, Ray started
   by the search): wall time, and the overhead = wall time / (sum of the trials' own training and
   judging time / concurrency) - 1, i.e. what the search adds around perfectly packed trials
   (Ray start, corrupted set build, scheduling, checkpoints, records, MLflow, the front).
2. Ray: the same Tuner, searcher, callbacks and checkpointing as a search, with a trainable that
   does no work (one report per "epoch" with a tiny checkpoint): seconds per trial.
3. Optuna: ask + the define-by-run space + tell on the SQLite study, as the searcher does per trial.
"""

from __future__ import annotations

import argparse
import io
import json
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


def bench_quickstart(workdir: Path) -> dict[str, float]:
    """Run spaces/quickstart.yaml from scratch in ``workdir`` (its runs/ and .cache/ start empty)."""
    from search.results.records import load_records
    from search.space import load_space
    from search.tune.runner import run_search

    os.chdir(workdir)
    space = load_space(REPO / "spaces" / "quickstart.yaml")
    log = io.StringIO()
    start = time.monotonic()
    result = run_search(space, stream=log)
    wall = time.monotonic() - start
    records = load_records(result.run_folder)
    if not any(r.status == "finished" for r in records):
        raise SystemExit("no trial of the quickstart finished:\n" + log.getvalue())
    own = sum(r.final.get("trial_time_s", 0.0) for r in records)
    train = sum(r.final.get("train_time_s", 0.0) for r in records)
    judge = sum(r.final.get("judge_time_s", 0.0) for r in records)
    concurrency = space.search.concurrency
    ideal = own / concurrency
    # Each trial's span as Ray saw it, from its result log (first report's start to last report).
    spans = []
    for path in Path(space.experiment_path).glob("*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            spans.append((rows[0]["timestamp"] - rows[0]["time_this_iter_s"], rows[-1]["timestamp"]))
    busy = sum(end - begin for begin, end in spans)
    fit = result.timings.get("fit_s", 0.0)
    return {
        "trials": len(records),
        "finished": sum(r.status == "finished" for r in records),
        "wall_s": wall,
        "setup_s": result.setup_time_s,
        "prepare_s": result.timings.get("prepare_s", 0.0),
        "ray_start_s": result.timings.get("ray_start_s", 0.0),
        "fit_s": result.timings.get("fit_s", 0.0),
        "finish_s": result.timings.get("tracking_finish_s", 0.0),
        "trial_own_s": own,
        "train_s": train,
        "judge_s": judge,
        "ideal_s": ideal,
        "ray_span_s": busy,
        "idle_slot_s": concurrency * fit - busy,
        "overhead": wall / ideal - 1.0,
        "overhead_after_setup": (wall - result.setup_time_s) / ideal - 1.0,
    }


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
    parser.add_argument("--skip-quickstart", action="store_true")
    parser.add_argument("--ray-trials", type=int, default=16)
    parser.add_argument("--optuna-trials", type=int, default=60)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        tmp = Path(tmp)
        if not args.skip_quickstart:
            (tmp / "qs").mkdir()
            q = bench_quickstart(tmp / "qs")
            print(f"quickstart: {q['finished']}/{q['trials']} trials finished; wall {q['wall_s']:.1f} s "
                  f"(setup before the first trial {q['setup_s']:.1f} s: data and corrupted set {q['prepare_s']:.1f} s, "
                  f"Ray start {q['ray_start_s']:.1f} s)")
            print(f"  trials' own time {q['trial_own_s']:.1f} s (train {q['train_s']:.1f} s, judge {q['judge_s']:.1f} s); "
                  f"perfectly packed on 2 slots {q['ideal_s']:.1f} s")
            print(f"  Tuner.fit {q['fit_s']:.1f} s, MLflow finish {q['finish_s']:.1f} s; trials' spans in Ray "
                  f"{q['ray_span_s']:.1f} s (vs own {q['trial_own_s']:.1f} s); idle slot time in fit "
                  f"{q['idle_slot_s']:.1f} s (tail and gaps between trials)")
            print(f"  overhead {100 * q['overhead']:.1f}% (after setup: {100 * q['overhead_after_setup']:.1f}%)")
            print(f"  load average after: {os.getloadavg()[0]:.1f}")
            os.chdir(REPO)
        r = bench_ray(tmp, args.ray_trials)
        print(f"ray: start {r['ray_start_s']:.1f} s; {args.ray_trials} no-op trials (4 reports + checkpoints each, "
              f"2 at once) in {r['fit_s']:.1f} s: {r['per_trial_s']:.2f} s per trial, "
              f"{r['per_trial_slot_s']:.2f} s of a slot per trial")
        o = bench_optuna(tmp, args.optuna_trials)
        print(f"optuna: ask + space + tell on SQLite, TPE: median {o['median_ms']:.1f} ms, "
              f"last 10 {o['last10_ms']:.1f} ms, max {o['max_ms']:.1f} ms per trial")


if __name__ == "__main__":
    main()
