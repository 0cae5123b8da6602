"""Benchmark of a new run folder's MLflow store: MLflow making it (its tables, then every schema
migration) against a copy of the empty store made once per MLflow version
(``search.tracking.store_template``), side by side.

    flock /tmp/cpu.lock python benchmarks/bench_store.py              # 5 interleaved rounds
    python benchmarks/bench_store.py --rounds 9

Each arm opens a new ``sqlite:///.../mlflow.db`` with ``MlflowClient`` and lists its experiments
(what the tracker's first call does), MLflow already imported; the template already exists, as for
every search after the first one with this MLflow. Prints each arm's median seconds and the ratio.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def open_new_store(folder: Path, template: bool) -> float:
    """Seconds to open a new store in ``folder`` and list its experiments."""
    from mlflow import MlflowClient

    from search.tracking.store import make_client

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    t0 = time.perf_counter()
    client = make_client(uri) if template else MlflowClient(tracking_uri=uri)
    client.search_experiments(max_results=1)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    from importlib.metadata import version

    from search.tracking.store_template import template_path

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        root = Path(tmp)
        open_new_store(root / "warm-up", template=True)  # imports MLflow, makes the template if missing
        times: dict[str, list[float]] = {"mlflow": [], "template": []}
        for i in range(args.rounds):
            for arm in ("mlflow", "template") if i % 2 == 0 else ("template", "mlflow"):
                (root / f"{arm}-{i}").mkdir()
                times[arm].append(open_new_store(root / f"{arm}-{i}", template=arm == "template"))
    mlflow_s, template_s = statistics.median(times["mlflow"]), statistics.median(times["template"])
    print(f"a new SQLite store, MLflow {version('mlflow')}, median of {args.rounds} interleaved rounds "
          f"(template {template_path()}):")
    print("| arm | s |\n|---|---|")
    print(f"| MLflow makes it (tables + migrations) | {mlflow_s:.3f} |")
    print(f"| copy of the empty store | {template_s:.3f} |")
    print(f"copy / MLflow: {template_s / mlflow_s:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
