"""Benchmark of search efficiency (issue 14): hypervolume of the front against wall-clock time.

    flock /tmp/cpu.lock python benchmarks/bench_efficiency.py                        # the issue's size
    flock /tmp/cpu.lock python benchmarks/bench_efficiency.py --trials 16 --epochs 8 --seeds 1
    flock /tmp/cpu.lock python benchmarks/bench_efficiency.py --rung-cost-only        # part 2 only

1. Five searches of one digits space, side by side in one run, each from its own start (one Ray for
   all, the corrupted set built once): ``random`` (random sampler, full budget), ``tpe`` (TPE, full
   budget), ``asha`` (random sampler, Ray's ASHA on clean accuracy), ``mo_asha`` (random sampler,
   MO-ASHA over clean accuracy and mCE, judged at the rungs) and ``mo_asha_tpe`` (TPE + MO-ASHA).
   The space's components trade clean accuracy for robustness (timm's RandAugment against none,
   random erasing, FAN against MLP mixers, TAP, ADL; a continuous learning rate over a wide range,
   1e-4 to 3e-2 by default, so that no search runs out of new configurations and many trials are
   visibly poor after an epoch or two, as in a real search), so its front has several points.
   The hypervolume of the front of the trials that ran their full budget is followed trial by trial
   (a trial counts from the time its judged result reached the driver, from Ray's result log), all
   against one reference point (:func:`search.results.pareto.default_reference` of every search's
   points together). Every search gets the same wall-clock budget ``T``, the time of ``random``'s
   last trial (the searches with a scheduler get ``--scheduled-trials``, 3x as many trials, to fill
   it; what they do after ``T`` is not counted). Printed per search and seed: hypervolume at ``T``,
   time to reach ``random``'s final hypervolume, hypervolume at ``T / 2``, full-budget trials and
   front size, trials stopped early, the share of the trials' own time spent judging at rungs, the
   rung-vs-final Spearman correlations; then the median and range over the seeds (``--seeds N``:
   seeds ``--first-seed`` .. + N - 1). The curves go to a PNG (``--png``), the figures to JSON
   (``--out``, written after every search; ``--from-json`` summarises several such files together).
2. The cost of judging at rungs on the quickstart-size space: ``spaces/quickstart.yaml`` with
   MO-ASHA (``--quickstart-scheduler``) and ``eval.rung_subset`` (``--rung-subset``): the rungs'
   judging time over the trials' own time (target <= 10 %).

Targets (issue 14): MO-ASHA reaches the final hypervolume of ``random`` in at most half of its wall
time, and ends with a higher hypervolume than ``asha`` on clean accuracy alone.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)

CONFIGS = {  # name -> (sampler, scheduler type or None)
    "random": ("random", None),
    "tpe": ("tpe", None),
    "asha": ("random", "asha"),
    "mo_asha": ("random", "mo_asha"),
    "mo_asha_tpe": ("tpe", "mo_asha"),
}
OBJECTIVES = (("clean_accuracy", "max"), ("mce", "min"))

SPACE = """\
name: {name}
data: {{dataset: digits, image_size: {image_size}, train_subset: {train_subset}, test_subset: {test_subset}}}
model:
  name: robust_vit
  patch_size: 4
  embed_dim: {embed_dim}
  depth: {depth}
  num_heads: 2
  mlp_ratio: 2.0
  mixer: {{choice: [mlp, fan]}}
  tap: {{choice: [false, true]}}
train:
  epochs: {epochs}
  batch_size: 32
  lr: {{float: [{lr_low}, {lr_high}], log: true}}
  weight_decay: 0.05
  scheduler: cosine
  adl_weight: {{choice: [0.0, 1.0]}}
  augmentation: {{choice: [none, rand-m9-mstd0.5-inc1]}}
  random_erasing: {{choice: [0.0, 0.5]}}
eval: {{corruptions: benchmark, severities: [{severities}], subset: {eval_subset}, rung_subset: {rung_subset}, cache_dir: {cache}}}
objectives: [{{metric: clean_accuracy, direction: max}}, {{metric: mce, direction: min}}]
search: {{sampler: {sampler}, num_trials: {trials}, concurrency: {concurrency}, seed: {seed}, n_startup_trials: {startup}{scheduler}}}
resources: {{cpus_per_trial: 1}}
storage: {storage}
"""


def _space_text(args: argparse.Namespace, name: str, sampler: str, scheduler: str | None, seed: int, root: Path) -> str:
    trials = args.scheduled_trials if scheduler else args.trials
    sched = (f", scheduler: {{type: {scheduler}, grace_period: {args.grace_period}, "
             f"reduction_factor: {args.reduction_factor}}}") if scheduler else ""
    return textwrap.dedent(SPACE.format(
        name=name, image_size=args.image_size, train_subset=args.train_subset, test_subset=args.test_subset,
        embed_dim=args.embed_dim, depth=args.depth, epochs=args.epochs,
        severities=", ".join(str(s) for s in args.severities), eval_subset=args.eval_subset,
        rung_subset=args.rung_subset, cache=root / "cache", sampler=sampler, trials=trials,
        concurrency=args.concurrency, seed=seed, startup=max(1, args.trials // 4), scheduler=sched,
        storage=root / "runs", lr_low=args.lr_range[0], lr_high=args.lr_range[1],
    ))


def _end_times(experiment_path: Path) -> dict[str, float]:
    """Unix time at which each trial's judged result reached the driver (Ray's result log)."""
    out = {}
    for path in experiment_path.glob("*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        judged = [r for r in rows if r.get("judged")]
        if judged:
            out[str(judged[-1]["trial_id"])] = float(judged[-1]["timestamp"])
    return out


def _rung_share(records) -> tuple[float, float, float | None]:
    """(seconds judging at rungs, the trials' own seconds) over every trial of a search, and the
    mean share of judging at rungs in the own time of a trial that ran its full budget."""
    from search.trial.rungs import RUNG_TIME

    rung = own = 0.0
    full = []
    for r in records:
        r_rung = sum(h.get(RUNG_TIME, 0.0) for h in r.history)
        r_own = sum(h.get("epoch_time_s", 0.0) + h.get(RUNG_TIME, 0.0) for h in r.history) + r.final.get("judge_time_s", 0.0)
        rung, own = rung + r_rung, own + r_own
        if r.status == "finished" and r.full_budget and r_own:
            full.append(r_rung / r_own)
    return rung, own, (statistics.mean(full) if full else None)


def run_one(args, name: str, sampler: str, scheduler: str | None, seed: int, root: Path) -> dict:
    """One search; its finished points with the seconds (from its start) they were judged at."""
    from search.results.pareto import pareto_ranks
    from search.results.records import load_records
    from search.results.rung_truth import rung_correlations
    from search.space import load_space
    from search.trial.rungs import scheduler_rung_epochs
    from search.tune.runner import run_search

    path = root / f"{name}.yaml"
    path.write_text(_space_text(args, name, sampler, scheduler, seed, root))
    space = load_space(path)
    log = io.StringIO()
    start = time.time()
    result = run_search(space, stream=log)
    records = load_records(result.run_folder)
    ends = _end_times(Path(space.experiment_path))
    points = sorted((ends[r.trial_id] - start, [r.final[m] for m, _ in OBJECTIVES])
                    for r in records if r.status == "finished" and r.full_budget and r.trial_id in ends)
    rung, own, per_full = _rung_share(records)
    correlations = rung_correlations(records, OBJECTIVES, scheduler_rung_epochs(space))
    front = sum(r == 1 for r in pareto_ranks([p for _, p in points], [d for _, d in OBJECTIVES])) if points else 0
    print(f"  {name} seed {seed}: {result.wall_time_s:.0f} s, {len(points)} full-budget trials, "
          f"{sum(r.status == 'stopped' for r in records)} stopped, {sum(r.status == 'failed' for r in records)} failed",
          flush=True)
    return {
        "config": name, "seed": seed, "wall_s": result.wall_time_s, "points": points,
        "trials": len(records), "front_size": front, "stopped": sum(r.status == "stopped" for r in records),
        "failed": sum(r.status == "failed" for r in records),
        "rung_s": rung, "own_s": own, "rung_share": rung / own if own else 0.0, "rung_share_full": per_full,
        "correlations": [c.to_dict() for c in correlations],
    }


def _curve(points, reference) -> list[tuple[float, float]]:
    from search.results.pareto import hypervolume

    dirs = [d for _, d in OBJECTIVES]
    return [(t, hypervolume([p for _, p in points[: i + 1]], dirs, reference)) for i, (t, _) in enumerate(points)]


def _at(curve, t: float) -> float:
    return max([hv for s, hv in curve if s <= t], default=0.0)


def _first(curve, target: float) -> float | None:
    return next((s for s, hv in curve if hv >= target * (1 - 1e-9)), None)


def summarise(runs: list[dict]) -> dict:
    """Per seed and search: the figures at the common budget ``T`` (the time of ``random``'s last
    full-budget trial, the same seed): hypervolume at ``T`` and at ``T / 2``, the time to reach
    ``random``'s final hypervolume; and the hypervolume at the search's own end."""
    from search.results.pareto import default_reference

    everything = [p for run in runs for _, p in run["points"]]
    reference = default_reference(everything, [d for _, d in OBJECTIVES])
    rows = []
    for seed in sorted({r["seed"] for r in runs}):
        by = {r["config"]: r for r in runs if r["seed"] == seed}
        curves = {c: _curve(r["points"], reference) for c, r in by.items()}
        base = curves.get("random") or None
        target, budget = (base[-1][1], base[-1][0]) if base else (None, None)
        for c, r in by.items():
            curve = curves[c]
            to_target = _first(curve, target) if target else None
            rows.append({
                "config": c, "seed": seed, "final_hv": curve[-1][1] if curve else 0.0,
                "budget_s": budget, "hv_at_budget": _at(curve, budget) if budget else None,
                "time_to_random_hv_s": to_target,
                "time_to_random_hv_frac": to_target / budget if to_target is not None and budget else None,
                "hv_at_half_random_s": _at(curve, budget / 2) if budget else None,
                "last_trial_s": curve[-1][0] if curve else None, "wall_s": r["wall_s"],
                "trials": r["trials"], "full_budget": len(r["points"]),
                "full_budget_by_budget": sum(t <= budget for t, _ in r["points"]) if budget else None,
                "front_size": r["front_size"],
                "stopped": r["stopped"], "failed": r["failed"], "rung_share": r["rung_share"],
                "rung_share_full": r["rung_share_full"],
                "correlations": r["correlations"], "curve": curve,
            })
    return {"reference": reference, "rows": rows, "medians": _medians(rows)}


def _medians(rows: list[dict]) -> dict:
    """Median and range over seeds of each search's figures (``time to random's HV`` as a share of
    ``T``; a seed that never reached it counts as infinitely late)."""
    out = {}
    for c in dict.fromkeys(r["config"] for r in rows):
        rs = [r for r in rows if r["config"] == c]
        fig = {}
        for key in ("hv_at_budget", "hv_at_half_random_s", "final_hv", "time_to_random_hv_frac", "front_size",
                    "full_budget_by_budget"):
            vals = [math.inf if r[key] is None and key == "time_to_random_hv_frac" else r[key] for r in rs]
            vals = [v for v in vals if v is not None]
            fig[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)} if vals else None
        fig["reached_half"] = sum(r["time_to_random_hv_frac"] is not None and r["time_to_random_hv_frac"] <= 0.5
                                  for r in rs)
        fig["seeds"] = len(rs)
        out[c] = fig
    for c, fig in out.items():  # the targets, seed by seed, against ASHA of the same seed
        if c.startswith("mo_asha") and "asha" in out:
            asha = {r["seed"]: r["hv_at_budget"] for r in rows if r["config"] == "asha"}
            fig["above_asha"] = sum(r["hv_at_budget"] is not None and asha.get(r["seed"]) is not None
                                    and r["hv_at_budget"] > asha[r["seed"]] for r in rows if r["config"] == c)
    return out


def _fmt(cell, spec: str = ".0f", scale: float = 1.0, unit: str = "") -> str:
    if cell is None:
        return "-"
    f = lambda v: "never" if v == math.inf else format(v * scale, spec) + unit  # noqa: E731
    return f(cell["median"]) if cell["min"] == cell["max"] else f"{f(cell['median'])} [{f(cell['min'])}, {f(cell['max'])}]"


def print_summary(summary: dict) -> None:
    print(f"\nreference point (clean_accuracy, mce): {[round(v, 3) for v in summary['reference']]}")
    head = (f"{'config':<12} {'seed':>4} {'T':>6} {'HV@T':>9} {'t->random HV':>13} {'HV@T/2':>9} {'own end HV':>10} "
            f"{'trials':>6} {'full@T':>6} {'front':>5} {'stopped':>7} {'rung share':>10} {'(full trial)':>12}")
    print(head)
    print("-" * len(head))
    for r in summary["rows"]:
        t = "never" if r["time_to_random_hv_s"] is None else f"{r['time_to_random_hv_s']:.0f} s"
        f = lambda v, spec=".1f": "-" if v is None else format(v, spec)  # noqa: E731
        print(f"{r['config']:<12} {r['seed']:>4} {f(r['budget_s'], '.0f'):>6} {f(r['hv_at_budget']):>9} {t:>13} "
              f"{f(r['hv_at_half_random_s']):>9} {r['final_hv']:>10.1f} {r['trials']:>6} "
              f"{f(r['full_budget_by_budget'], 'd'):>6} {r['front_size']:>5} {r['stopped']:>7} "
              f"{100 * r['rung_share']:>9.1f} % "
              f"{'-' if r['rung_share_full'] is None else format(100 * r['rung_share_full'], '.1f') + ' %':>12}")
    print("\nmedian [min, max] over seeds, at the common budget T (random's time):")
    for c, fig in summary["medians"].items():
        extra = f"; HV@T above ASHA's in {fig['above_asha']} of {fig['seeds']} seeds" if "above_asha" in fig else ""
        print(f"  {c:<12} HV@T {_fmt(fig['hv_at_budget'])}, HV@T/2 {_fmt(fig['hv_at_half_random_s'])}, "
              f"time to random's HV {_fmt(fig['time_to_random_hv_frac'], '.0f', 100, ' %')} of T "
              f"(<= 50 % in {fig['reached_half']} of {fig['seeds']} seeds), front {_fmt(fig['front_size'])} points"
              f"{extra}")
    for r in summary["rows"]:
        if r["correlations"]:
            cells = ", ".join(f"epoch {c['epoch']} {c['metric']} "
                              f"{'n/a' if c['rho'] is None else format(c['rho'], '+.2f')} (n={c['trials']})"
                              for c in r["correlations"])
            print(f"rung correlations {r['config']} seed {r['seed']}: {cells}")


def plot(summary: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted({r["seed"] for r in summary["rows"]})
    colours = {c: f"C{k}" for k, c in enumerate(CONFIGS)}  # one colour per search in every panel
    fig, axes = plt.subplots(1, len(seeds), figsize=(5.2 * len(seeds), 4.2), squeeze=False)
    for ax, seed in zip(axes[0], seeds, strict=True):
        rows = [r for r in summary["rows"] if r["seed"] == seed and r["curve"]]
        budget = next((r["budget_s"] for r in rows if r["budget_s"]), None)
        for r in rows:
            ts = [0.0] + [t for t, _ in r["curve"]]
            hv = [0.0] + [h for _, h in r["curve"]]
            ax.step(ts, hv, where="post", label=r["config"], color=colours[r["config"]])
        if budget:
            ax.axvline(budget, color="grey", ls="--", lw=0.8)
            ax.axvline(budget / 2, color="grey", ls=":", lw=0.8)
            ax.set_xlim(0, 1.15 * budget)
        # from the lowest hypervolume any search had at T / 4: the differences that matter are at the top
        low = min((_at(r["curve"], budget / 4) if budget else r["curve"][0][1] for r in rows), default=0.0)
        high = max((h for r in rows for _, h in r["curve"]), default=1.0)
        ax.set_ylim(low - 0.05 * (high - low + 1), high + 0.05 * (high - low + 1))
        ax.set_title(f"seed {seed} (dashed: T, random's time; dotted: T / 2)", fontsize=9)
        ax.set_xlabel("wall-clock seconds from the search's start")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("hypervolume (clean accuracy x mCE)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Search efficiency on digits (issue 14)")
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def rung_cost(args, root: Path) -> dict:
    """The quickstart space with MO-ASHA: the rungs' share of the trials' own time."""
    import yaml

    from search.results.records import load_records
    from search.space import parse_space
    from search.trial.rungs import scheduler_rung_epochs
    from search.tune.runner import run_search

    doc = yaml.safe_load((REPO / "spaces" / "quickstart.yaml").read_text())
    doc["name"] = "quickstart_rungs"
    doc["storage"] = str(root / "runs")
    doc["eval"]["cache_dir"] = str(root / "cache")
    doc["eval"]["rung_subset"] = args.rung_subset
    doc["search"]["scheduler"] = {"type": "mo_asha", "grace_period": 1, "reduction_factor": args.quickstart_rf}
    space = parse_space(doc, source="quickstart+mo_asha", default_name="quickstart_rungs")
    result = run_search(space, stream=io.StringIO())
    records = load_records(result.run_folder)
    rung, own, per_full = _rung_share(records)
    out = {"wall_s": result.wall_time_s, "trials": len(records), "stopped": sum(r.status == "stopped" for r in records),
           "rung_s": rung, "own_s": own, "rung_share": rung / own if own else 0.0, "rung_share_full": per_full,
           "rung_subset": args.rung_subset, "eval_subset": space.eval.subset,
           "rungs": list(scheduler_rung_epochs(space))}
    print(f"\nquickstart + MO-ASHA (reduction factor {args.quickstart_rf}, rung_subset {args.rung_subset} of "
          f"{space.eval.subset} items): {len(records)} trials, {out['stopped']} stopped, wall {result.wall_time_s:.0f} s; "
          f"judging at rungs {rung:.1f} s of the trials' own {own:.1f} s = {100 * out['rung_share']:.1f} % of the "
          f"search; {'-' if per_full is None else f'{100 * per_full:.1f} %'} of a full-budget trial's own time "
          f"(target <= 10 %)", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=32)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--scheduled-trials", type=int, default=None,
                   help="trials of the searches with a scheduler (default: 3 x --trials, about the full-budget "
                        "searches' wall time; the figures are read at that time T)")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--embed-dim", type=int, default=32)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--train-subset", type=int, default=1000)
    p.add_argument("--test-subset", type=int, default=200)
    p.add_argument("--eval-subset", type=int, default=200,
                   help="corrupted items, also the clean images judged (60 saturated at 100 %% clean accuracy)")
    p.add_argument("--severities", type=int, nargs="+", default=[1, 3, 5])
    p.add_argument("--rung-subset", type=int, default=None, help="eval.rung_subset (default: the schema's)")
    p.add_argument("--lr-range", type=float, nargs=2, default=[1.0e-4, 3.0e-2], metavar=("LOW", "HIGH"),
                   help="the searched learning rate's range (log-uniform; wide, so that many trials are poor early)")
    p.add_argument("--grace-period", type=int, default=1)
    p.add_argument("--reduction-factor", type=float, default=3.0)
    p.add_argument("--quickstart-rf", type=float, default=3.0)
    p.add_argument("--rung-cost-only", action="store_true", help="part 2 only")
    p.add_argument("--skip-rung-cost", action="store_true", help="part 1 only")
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    p.add_argument("--png", type=Path, default=REPO / "docs" / "bench_efficiency.png")
    p.add_argument("--from-json", type=Path, nargs="+", default=None,
                   help="run nothing: summarise and plot the searches of these --out files together")
    args = p.parse_args()
    if args.from_json:
        return from_json(args.from_json, args.png)
    if args.scheduled_trials is None:
        args.scheduled_trials = 3 * args.trials
    if args.rung_subset is None:
        from search.space.schema import EVAL

        args.rung_subset = EVAL["rung_subset"].default

    import ray

    ray.init(address="local", num_cpus=args.concurrency, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} on {platform.node()} ({os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}): {args.trials} trials x {args.epochs} epochs, {args.seeds} seed(s), "
          f"concurrency {args.concurrency}", flush=True)
    report: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="bench-efficiency-") as tmp:
        root = Path(tmp)
        if not args.rung_cost_only:
            # random first in each seed (its time is the budget T); the others in an order turned by
            # one each seed, so that a drift of the other jobs' load does not always hit the same search
            runs = []
            for k, seed in enumerate(range(args.first_seed, args.first_seed + args.seeds)):
                rest = [c for c in args.configs if c != "random"]
                rest = rest[k % len(rest):] + rest[: k % len(rest)] if rest else []
                order = (["random"] if "random" in args.configs else []) + rest
                for c in order:
                    runs.append(run_one(args, f"{c}_s{seed}", *CONFIGS[c], seed, root))
                    runs[-1]["config"] = c
                    report["runs"] = runs
                    _write(args.out, report)  # what is measured survives a run cut short
            summary = summarise(runs)
            print_summary(summary)
            plot(summary, args.png)
            print(f"plot: {args.png}")
            report["efficiency"] = summary
        if not args.skip_rung_cost:
            report["rung_cost"] = rung_cost(args, root)
    ray.shutdown()
    _write(args.out, report)


def _write(path: Path | None, report: dict) -> None:
    if path:
        path.write_text(json.dumps(report, indent=2, default=str))


def from_json(paths: list[Path], png: Path) -> None:
    """Summarise the searches of earlier runs' ``--out`` files together (one reference point)."""
    runs = [run for path in paths for run in json.loads(path.read_text())["runs"]]
    summary = summarise(runs)
    print_summary(summary)
    plot(summary, png)
    print(f"plot: {png}")


if __name__ == "__main__":
    main()
