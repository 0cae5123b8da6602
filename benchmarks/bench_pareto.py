"""Pareto ranks and hypervolume: Optuna's routines (what search/results/pareto.py uses) against the
per-point dominance scan that module used before (read from git, commit 4acd623), side by side.

    python benchmarks/bench_pareto.py

Prints, for 2 and 3 objectives and 50 to 1,000 random points, the best of 3 runs of each and the
ratio (before / Optuna), after checking that both give the same ranks and hypervolume.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BEFORE = "4acd623"  # the last commit with the hand-written implementation


def _before() -> types.ModuleType:
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{BEFORE}:search/results/pareto.py"],
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("pareto_before")
    with tempfile.NamedTemporaryFile("w", suffix=".py") as fh:  # a real file: dataclasses, tracebacks
        fh.write(source)
        fh.flush()
        exec(compile(source, fh.name, "exec"), module.__dict__)
    return module


def _best(fn, reps: int = 3):
    best, out = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    from search.results import pareto

    before = _before()
    rng = np.random.default_rng(0)
    print("objectives points | ranks: before ms, optuna ms, ratio | hypervolume: before ms, optuna ms, ratio")
    for m in (2, 3):
        for n in (50, 200, 1000):
            points = rng.random((n, m)).tolist()
            directions = ["max"] + ["min"] * (m - 1)
            reference = [0.0] + [2.0] * (m - 1)
            a_t, a = _best(lambda p=points, d=directions: before.pareto_ranks(p, d))
            b_t, b = _best(lambda p=points, d=directions: pareto.pareto_ranks(p, d))
            assert a == b, "the ranks differ"
            c_t, c = _best(lambda p=points, d=directions, r=reference: before.hypervolume(p, d, r))
            d_t, d = _best(lambda p=points, d=directions, r=reference: pareto.hypervolume(p, d, r))
            assert abs(c - d) <= 1e-9 * max(1.0, abs(c)), (c, d)
            print(f"{m} {n:5d} | {a_t * 1e3:8.2f} {b_t * 1e3:7.2f} {a_t / b_t:7.1f}x | "
                  f"{c_t * 1e3:8.2f} {d_t * 1e3:7.2f} {c_t / d_t:6.1f}x")


if __name__ == "__main__":
    main()
