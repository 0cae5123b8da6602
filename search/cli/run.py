"""``search run FILE``: run a search, or resume it when its run folder already holds one."""

from __future__ import annotations

import argparse

NAME = "run"
HELP = "Run the search of a space file (running it again after an interruption resumes it)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="search space YAML file")
    parser.add_argument("--address", metavar="ADDR", default=None,
                        help="join this Ray cluster ('auto' for the one started with `ray up`/`ray start`); "
                             "default: start Ray locally")
    parser.add_argument("--tracking-uri", metavar="URI", default=None,
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///<run folder>/mlflow.db)")
    parser.add_argument("--verbose", action="store_true", help="show Ray's own progress tables and worker logs")


def run(args: argparse.Namespace) -> int:
    from search.space import load_space

    space = load_space(args.file)  # every field is checked before anything starts
    from search.tune.runner import run_search

    result = run_search(space, address=args.address, tracking_uri=args.tracking_uri, verbose=args.verbose)
    return 0 if result.status == "finished" else 130
