"""A tiny real search run once per test module (local Ray, 2 CPUs): the shared set-up of the tests
that read a finished search (pytest puts this folder on sys.path)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from search.space import load_space
from search.tune.runner import SearchResult, run_search


def run_tiny_search(root: Path, name: str, template: str):
    """Write ``template`` (with ``{cache}`` and ``{storage}`` under ``root``) as ``NAME.yaml``, run
    its search to the end on a local Ray, and return ``(space, result)``."""
    import ray

    path = root / f"{name}.yaml"
    path.write_text(textwrap.dedent(template.format(cache=root / "cache", storage=root / "runs")))
    space = load_space(path)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        result: SearchResult = run_search(space, stream=io.StringIO())
    finally:
        ray.shutdown()
    assert result.status == "finished"
    return space, result
