"""The quickstart's wall time, this checkout against an earlier commit, side by side in one run.

    python benchmarks/bench_quickstart.py [--before COMMIT] [--rounds 3]

Makes a git worktree of COMMIT (default: 1808193, the last commit before the trial spec rework),
then runs ``search run spaces/quickstart.yaml`` from each checkout in turn (before, after, before,
after, ...), each time in a fresh working folder (empty run folder and corrupted-set cache, Ray
started by the search, as a new user runs it), and prints every wall time, the medians and the
ratio after / before. The two alternate so that a change in the machine's load hits both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(checkout: Path, workdir: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.pop("MLFLOW_TRACKING_URI", None)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "search", "run", str(checkout / "spaces" / "quickstart.yaml")],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"the quickstart of {checkout} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="1808193", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-quickstart-") as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(before), args.before],
                       check=True, capture_output=True)
        try:
            walls: dict[str, list[float]] = {"before": [], "after": []}
            for i in range(args.rounds):
                for label, checkout in (("before", before), ("after", REPO)):
                    workdir = Path(tmp) / f"{label}-{i}"
                    workdir.mkdir()
                    walls[label].append(_run(checkout, workdir))
                    print(f"round {i + 1} {label:6s} {walls[label][-1]:6.1f} s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], check=False)
    b, a = statistics.median(walls["before"]), statistics.median(walls["after"])
    print(f"median wall: before ({args.before}) {b:.1f} s, after {a:.1f} s; after / before = {a / b:.3f}")


if __name__ == "__main__":
    main()
