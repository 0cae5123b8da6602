"""``search confirm NAME_OR_RUN_FOLDER --seeds N``: retrain the Pareto front with new seeds and say
which members survive.

Each front member (rank 1 among the full-budget trials) is trained again with N new seeds at full
budget, as trials of the same kind of Ray cluster as the search (:mod:`search.tune.confirm`); the
table gives, per member and objective, the search's value and the mean ± standard deviation over the
seeds, and whether the member's means are still non-dominated (it *survives*).
"""

from __future__ import annotations

import argparse
import math

NAME = "confirm"
HELP = "Retrain the Pareto front's configurations with new seeds at full budget: mean ± std per objective."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="NAME_OR_RUN_FOLDER", help="a run folder, or a space name under runs/")
    parser.add_argument("--seeds", type=int, default=3, metavar="N",
                        help="new seeds per front member (default 3: the search's seed + 1000, + 2000, + 3000)")
    parser.add_argument("--members", type=int, default=None, metavar="K",
                        help="confirm only the first K members of the front (best first objective first)")
    parser.add_argument("--address", metavar="ADDR", default=None,
                        help="join this Ray cluster ('auto' for the one started with `ray up`/`ray start`); "
                             "default: start Ray locally")
    parser.add_argument("--tracking-uri", metavar="URI", default=None,
                        help="MLflow tracking URI of the search (default: $MLFLOW_TRACKING_URI, else the run "
                             "folder's mlflow.db)")
    parser.add_argument("--verbose", action="store_true", help="show Ray's own progress tables and worker logs")


def run(args: argparse.Namespace) -> int:
    from search.tune.confirm import confirm_front

    result = confirm_front(args.run, seeds=args.seeds, members=args.members, address=args.address,
                           tracking_uri=args.tracking_uri, verbose=args.verbose)
    print(confirmation_table(result.confirmation, result.run_names))
    survivors = result.confirmation.survivors()
    print(f"{len(survivors)} of {len(result.confirmation.members)} member(s) survive: {', '.join(survivors) or 'none'}; "
          f"written to {result.path}" + (f", logged under MLflow run {result.parent_run_id}" if result.logged else ""))
    if result.status != "finished":
        print("interrupted: the ended trials are kept; run the same command again to train the rest")
        return 130
    return 0


def confirmation_table(confirmation, run_names: dict[str, str] | None = None) -> str:
    """One row per member: its run name, per objective the search's value and the seeds' mean ± std,
    the number of seeds and whether it survives (rows of :func:`search.results.confirmation.summarise`)."""
    from search.cli.pareto import _table
    from search.results.confirmation import summarise

    names = run_names or {}
    columns = ["trial", "configuration"]
    for metric, direction in confirmation.objectives:
        columns += [f"{metric} ({direction}) search", f"{metric} confirmed"]
    columns += ["seeds", "survives"]
    rows = []
    for row in summarise(confirmation):
        cells = {"trial": row["trial_id"], "configuration": names.get(row["trial_id"], ""), "seeds": row["seeds"],
                 "survives": "yes" if row["survives"] else "no"}
        for metric, direction in confirmation.objectives:
            cells[f"{metric} ({direction}) search"] = _number(row[f"{metric} (search)"])
            cells[f"{metric} confirmed"] = _spread(row[f"{metric} mean"], row[f"{metric} std"])
        rows.append(cells)
    return _table(columns, rows)


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _spread(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"  # every seed failed, or none trained yet
    return _number(mean) + ("" if std is None else f" ± {std:.2g}")
