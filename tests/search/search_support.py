"""A tiny real search run once per test module (local Ray, 2 CPUs): the shared set-up of the tests
that read a finished search (pytest puts this folder on sys.path)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from search.space import load_space
from search.tune.runner import SearchResult, run_search


def tiny_space(name: str, *, train_subset: int = 200, test_subset: int = 60, eval_subset: int = 24,
               num_trials: int = 3, seed: int = 3, train_extra: str = "") -> str:
    """The template of a tiny digits space over mixers, TAP and heads (1 epoch, 2 corruptions x 2
    severities), ready for :func:`run_tiny_search`; ``train_extra`` adds train fields (``, k: v``)."""
    return f"""\
name: {name}
data: {{{{dataset: digits, image_size: 16, train_subset: {train_subset}, test_subset: {test_subset}}}}}
model:
  patch_size: 4
  embed_dim: 16
  depth: 1
  num_heads: {{{{choice: [1, 2]}}}}
  mixer: {{{{choice: [mlp, se]}}}}
  tap: {{{{choice: [false, true]}}}}
  tap_dilations: [1, 2]
train: {{{{epochs: 1, batch_size: 64, lr: 0.003{train_extra}}}}}
eval: {{{{corruptions: [gaussian_noise, fog], severities: [1, 3], subset: {eval_subset}, cache_dir: {{cache}}}}}}
search: {{{{sampler: random, num_trials: {num_trials}, concurrency: 2, seed: {seed}}}}}
resources: {{{{cpus_per_trial: 1}}}}
storage: {{storage}}
"""


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
