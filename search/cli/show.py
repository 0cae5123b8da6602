"""``search show FILE``: print the resolved space (defaults filled in) and its size."""

from __future__ import annotations

import argparse
import json
from typing import Any

NAME = "show"
HELP = "Print a search space with its defaults resolved, its searched parameters and its size."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="search space YAML file")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def run(args: argparse.Namespace) -> int:
    from search.space import load_space

    space = load_space(args.file)
    resolved = space.resolved()
    print(f"space {space.name} ({space.source})" + (f": {space.description}" if space.description else ""))
    for section in ("data", "model", "train", "eval", "search", "resources", "storage"):
        print(f"{section}:")
        for key, value in resolved[section].items():
            print(f"  {key}: {_text(value)}")
        if section == "model":
            print("  (every other model field: the model's own default)")
    print("objectives:")
    for metric, direction in space.objectives:
        print(f"  {direction} {metric}")
    print(f"searched parameters ({len(space.params)}):")
    width = max((len(p.path) for p in space.params), default=0)
    for p in space.params:
        size = p.size()
        print(f"  {p.path:<{width}}  {p.describe()}  [{'continuous' if size is None else size}]")
    print(f"size: {space.size_text()}")
    print(f"run folder: {space.run_folder}")
    return 0
