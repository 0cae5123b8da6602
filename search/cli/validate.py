"""``search validate FILE``: check a search space file; exit code 2 with the first error."""

from __future__ import annotations

import argparse

NAME = "validate"
HELP = "Check a search space file (every field, before anything starts)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="search space YAML file")
    parser.add_argument("--skip-paths", action="store_true",
                        help="check the file only, not that its data paths exist here (a space for another machine)")


def run(args: argparse.Namespace) -> int:
    from search.space import load_space
    from search.tune.preflight import check_paths

    space = load_space(args.file)
    if not args.skip_paths:
        check_paths(space)  # a valid file naming data that is not on this machine is not valid here
    print(f"{args.file}: valid: {space.name}, {len(space.params)} searched parameters, {space.size_text()}, "
          f"objectives {', '.join(f'{d} {m}' for m, d in space.objectives)}")
    return 0
