"""``search sync RUN_FOLDER``: log to MLflow whatever it lacks from a search's run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from search.errors import UserError

NAME = "sync"
HELP = "Log a run folder's trial records that MLflow lacks (after an outage, or to another server)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_folder", metavar="RUN_FOLDER", help="the search's run folder, e.g. runs/quickstart")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                        "else RUN_FOLDER/mlflow.db)")


def run(args: argparse.Namespace) -> int:
    from search.tracking import sync

    folder = Path(args.run_folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such run folder")
    summary = sync(folder, tracking_uri=args.tracking_uri)
    print(f"synced {folder}: {summary.trials} trial record(s), {summary.created} new child run(s), "
          f"Pareto front: {', '.join(summary.front) or 'empty'}")
    return 0
