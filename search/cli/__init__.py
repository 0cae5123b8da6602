"""The ``search`` command line: one sub-command per module of this package (``search.cli.run``, ...).

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Adding a command means adding a module and naming it in ``COMMAND_MODULES``; nothing else changes.
Errors the user can fix (a bad file, a bad value) are raised as :class:`search.errors.UserError`
and end as one line on stderr with exit code 2; results already written are never touched.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from search.errors import UserError

# Imported lazily so that ``search validate`` never pays for importing Ray, MLflow or torch.
COMMAND_MODULES = (
    "components",
    "validate",
    "show",
    "run",
    "eval",
    "pareto",
    "sync",
    "export",
    "confirm",
    "report",
)


def _load_commands() -> list:
    modules = []
    for name in COMMAND_MODULES:
        try:
            modules.append(importlib.import_module(f"search.cli.{name}"))
        except ModuleNotFoundError as err:
            # Only a command whose own module is absent is skipped; a missing dependency is a bug.
            if err.name != f"search.cli.{name}":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="search",
        description="Multi-objective search over robustness components of Vision Transformers.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _load_commands():
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as err:
        print(f"search {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``search show FILE | head``): not an error. Point stdout at
        # devnull so that Python's own flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"search {args.command}: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
