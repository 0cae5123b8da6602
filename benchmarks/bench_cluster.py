"""Trials per hour of the same tiny search on one node and on two nodes of Ray's test cluster.

    python benchmarks/bench_cluster.py [--trials 16] [--epochs 4] [--train-subset N] [--repeat 1]

Each run starts a fresh :class:`support.local_cluster.LocalCluster` (a head without GPUs plus 1 or 2
worker nodes that declare one GPU and one CPU each) and runs the same space through
``run_search(space, address=...)``: every trial asks for one GPU, so one node runs one trial at a
time and two nodes run two. A trial's time is its real training (a small RobustViT on the digits,
one torch thread) and judging, which is what a second node adds capacity for. The corrupted test
set is built before the clock starts, so both runs read the same cache.

Printed per run: wall time; trials per hour over the search (wall time less the set-up before
``Tuner.fit``), over the trials' span (the first trial's start to the last one's end: the rate of a
long search, without the once-per-search start of each node's worker process and the end of the
search) and over the whole call; the mean trial time (the trials' own ``trial_time_s``: train and
judge); the busy share (trial time / (nodes x search time)); the CPU time of the driver process
(Tune's loop, Optuna, the records, MLflow logging and plots); the cores the machine kept busy
during the search (every process: the nodes share this machine's cores with the driver and Ray);
the machine's load average; and the speed-ups of two nodes over one.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test cluster

os.environ.setdefault("OMP_NUM_THREADS", "1")

SPACE = """
name: bench_cluster
data: {{dataset: digits, image_size: 32, train_subset: {train_subset}, test_subset: 128}}
model:
  name: robust_vit
  patch_size: 4
  embed_dim: 32
  depth: 2
  num_heads: 2
  mlp_ratio: 2.0
  mixer: {{choice: [mlp, se, xca, fan]}}
train: {{epochs: {epochs}, batch_size: 64, lr: 0.003, augmentation: none}}
eval:
  corruptions: [gaussian_noise, defocus_blur, contrast, jpeg_compression]
  severities: [1, 3, 5]
  subset: 64
  cache_dir: {cache}
search: {{sampler: random, num_trials: {trials}, concurrency: 2, seed: 0}}
resources: {{cpus_per_trial: 1, gpus_per_trial: 1}}
storage: {storage}
"""


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of this machine's CPUs since boot, from Linux's /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def run_once(nodes: int, args: argparse.Namespace, work: Path, tag: int) -> dict[str, float]:
    """One search on a fresh cluster of ``nodes`` GPU worker nodes; its timings."""
    from support.local_cluster import LocalCluster

    from search.space import parse_space
    from search.trial.context import TrialContext, prepare
    from search.tune.runner import run_search

    subset = "null" if args.train_subset is None else args.train_subset
    text = SPACE.format(trials=args.trials, epochs=args.epochs, train_subset=subset,
                        cache=work / "cache", storage=work / f"runs-{nodes}-{tag}")
    import yaml

    space = parse_space(yaml.safe_load(text), source=f"bench ({nodes} nodes)", text=text)
    prepare(TrialContext.for_space(space))  # the corrupted set's cache, outside the clock
    with LocalCluster(gpu_nodes=nodes) as cluster:
        cpu0, (busy0, total0) = time.process_time(), _cpu_ticks()
        result = run_search(space, address=cluster.address, stream=io.StringIO())
        driver_cpu_s = time.process_time() - cpu0  # the driver: Tune loop, Optuna, records, MLflow
        busy1, total1 = _cpu_ticks()
    done = [r for r in result.records if r.status == "finished"]
    if len(done) != args.trials:
        raise RuntimeError(f"{nodes} node(s): {len(done)} of {args.trials} trials finished ({result.status})")
    search_s = result.wall_time_s - result.setup_time_s
    return {
        "nodes": nodes,
        "wall_s": result.wall_time_s,
        "search_s": search_s,
        "trials_per_hour": 3600.0 * len(done) / search_s,
        "trials_per_hour_span": 3600.0 * len(done) / result.timings["trials_span_s"],
        "trials_per_hour_wall": 3600.0 * len(done) / result.wall_time_s,
        "trial_s": statistics.mean(r.final["trial_time_s"] for r in done),
        "busy": sum(r.final["trial_time_s"] for r in done) / (nodes * search_s),
        "driver_cpu_s": driver_cpu_s,
        "cores_busy": (os.cpu_count() or 1) * (busy1 - busy0) / max(total1 - total0, 1),
        "load": os.getloadavg()[0],  # the machine's 1-minute load average at the end of the run
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-subset", type=int, default=None, help="default: all 1,437 training digits")
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs (1 node, then 2 nodes)")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        for tag in range(args.repeat):
            rows += [run_once(nodes, args, Path(tmp), tag) for nodes in (1, 2)]

    print(f"\n{args.trials} trials x {args.epochs} epochs, one GPU (declared) and one CPU per trial; "
          f"{os.cpu_count()} CPUs on this machine")
    print(f"{'nodes':>5}  {'wall s':>7}  {'search s':>8}  {'trials/h':>9}  {'(span)':>7}  {'(wall)':>7}  "
          f"{'mean trial s':>12}  {'busy':>5}  {'driver CPU s':>12}  {'cores busy':>10}  {'load':>5}")
    for r in rows:
        print(f"{r['nodes']:>5}  {r['wall_s']:>7.1f}  {r['search_s']:>8.1f}  {r['trials_per_hour']:>9.0f}  "
              f"{r['trials_per_hour_span']:>7.0f}  {r['trials_per_hour_wall']:>7.0f}  {r['trial_s']:>12.1f}  "
              f"{r['busy']:>5.0%}  {r['driver_cpu_s']:>12.1f}  {r['cores_busy']:>10.2f}  {r['load']:>5.1f}")
    for one, two in zip(rows[::2], rows[1::2], strict=True):
        print(f"speed-up 2 nodes / 1 node: {two['trials_per_hour'] / one['trials_per_hour']:.2f}x trials per hour "
              f"({two['trials_per_hour_span'] / one['trials_per_hour_span']:.2f}x over the trials' span, "
              f"{two['trials_per_hour_wall'] / one['trials_per_hour_wall']:.2f}x on wall time); "
              f"mean trial time {two['trial_s'] / one['trial_s']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
