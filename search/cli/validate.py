"""``search validate FILE``: check a search space file; exit code 2 with the first error."""

from __future__ import annotations

import argparse

NAME = "validate"
HELP = "Check a search space file (every field, before anything starts)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="search space YAML file")


def run(args: argparse.Namespace) -> int:
    from search.space import load_space

    space = load_space(args.file)
    print(f"{args.file}: valid: {space.name}, {len(space.params)} searched parameters, {space.size_text()}, "
          f"objectives {', '.join(f'{d} {m}' for m, d in space.objectives)}")
    return 0
