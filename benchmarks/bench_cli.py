"""Start-up time of ``search validate`` and ``search show``: with the registry cache warm (every
run after the first) against the same command computing its registries in-process
(``SEARCH_REGISTRY_CACHE=off``: torch, timm and the zoo imported, as before the cache), side by side.

    python benchmarks/bench_cli.py [--rounds 5] [SPACE ...]

Each round runs every (space, command, cache) once in a shuffled order, as a fresh process, as a
user's shell would; the table gives the median wall time and the ratio warm / off. The target is
under 3 s warm for every shipped space.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _time(space: str, command: str, cache: str) -> float:
    env = {**os.environ, "SEARCH_REGISTRY_CACHE": cache}
    args = [sys.executable, "-m", "search", command] + (["--skip-paths"] if command == "validate" else []) + [space]
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spaces", nargs="*", default=sorted(str(p.relative_to(ROOT)) for p in (ROOT / "spaces").glob("*.yaml")))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        for space in args.spaces:  # fill the cache once per space: what a user's first run does
            _time(space, "validate", cache)
        runs = [(s, c, k) for s in args.spaces for c in ("validate", "show") for k in (cache, "off")]
        times: dict[tuple[str, str, str], list[float]] = {r: [] for r in runs}
        rng = random.Random(0)
        for _ in range(args.rounds):
            for run in rng.sample(runs, len(runs)):
                times[run].append(_time(*run))
        print(f"median of {args.rounds} rounds, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
        print("| space | command | warm cache s | cache off s | warm / off |")
        print("|---|---|---|---|---|")
        for space in args.spaces:
            for command in ("validate", "show"):
                warm = statistics.median(times[(space, command, cache)])
                off = statistics.median(times[(space, command, "off")])
                print(f"| `{space}` | {command} | {warm:.2f} | {off:.2f} | {warm / off:.2f}x |")


if __name__ == "__main__":
    main()
