"""``search pareto EXPERIMENT``: print a search's Pareto front as MLflow holds it."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math

NAME = "pareto"
HELP = "Print the Pareto front of a search from MLflow (a table, CSV or JSON)."
FORMATS = ("table", "csv", "json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "experiment",
        metavar="EXPERIMENT",
        help="MLflow experiment name (the space's name), or a run folder holding mlflow.db",
    )
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                        "else runs/EXPERIMENT/mlflow.db)")
    parser.add_argument("--run-id", default=None, help="the search's parent run id (default: the latest search)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def _table(columns: list[str], rows: list[dict]) -> str:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    from search.tracking import read_front

    front = read_front(args.experiment, tracking_uri=args.tracking_uri, parent_run_id=args.run_id)
    columns = front.columns()
    if args.format == "json":
        print(json.dumps({
            "experiment": front.experiment,
            "parent_run_id": front.parent_run_id,
            "objectives": [{"metric": m, "direction": d} for m, d in front.objectives],
            "front": front.rows,
            "rung_correlations": front.rung_correlations,
        }, indent=2))
    elif args.format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(front.rows)
        print(out.getvalue(), end="")
    else:
        goals = ", ".join(f"{'max' if d == 'max' else 'min'} {m}" for m, d in front.objectives)
        print(f"Pareto front of {front.experiment} (parent run {front.parent_run_id}; {goals}): "
              f"{len(front.rows)} trial(s)")
        if front.rows:
            print(_table(columns, front.rows))
        if front.rung_correlations:
            print("\nrung vs final rank correlation (Spearman, over the trials that ran to the end):")
            print(_table(["epoch", "metric", "rho", "trials"], front.rung_correlations))
    return 0
