"""The `ray up` cluster files pass Ray's own cluster-config validation, and a broken copy fails.

Ray validates a cluster file in `ray up` with `prepare_config` (merge with the provider's
defaults.yaml, merge setup commands, fill per-type worker counts) followed by `validate_config`
(jsonschema against ray/autoscaler/ray-schema.json plus cross-field checks). Both run offline,
without cloud credentials; only the provider's bootstrap after them talks to the cloud.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_FILES = {
    "aws": ROOT / "cluster.yaml",
    "gcp": ROOT / "examples" / "cluster-gcp.yaml",
}


def _load(provider: str) -> dict[str, Any]:
    with open(CLUSTER_FILES[provider]) as f:
        return yaml.safe_load(f)


def _ray_validate(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does before it contacts the cloud; returns the filled-out config."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.mark.parametrize("provider", sorted(CLUSTER_FILES))
def test_cluster_file_passes_ray_validation(provider: str) -> None:
    config = _load(provider)
    assert config["provider"]["type"] == provider
    prepared = _ray_validate(config)

    node_types = prepared["available_node_types"]
    head = prepared["head_node_type"]
    # prepare_config filled the head's max_workers and merged the common setup commands.
    assert node_types[head]["max_workers"] == 0
    assert prepared["head_setup_commands"][: len(config["setup_commands"])] == config["setup_commands"]
    workers = [name for name in node_types if name != head]
    assert workers, "a worker node type is required"
    # At least one worker type brings a GPU (declared, or autodetected from a GPU instance type).
    gpu_types = [
        name
        for name in workers
        if node_types[name]["resources"].get("GPU", 0) >= 1
        or str(node_types[name]["node_config"].get("InstanceType", "")).startswith(("g", "p"))
    ]
    assert gpu_types, f"no GPU worker type in {workers}"
    for name in workers:
        assert 0 <= node_types[name]["min_workers"] <= node_types[name]["max_workers"]


@pytest.mark.parametrize("provider", sorted(CLUSTER_FILES))
def test_cluster_file_installs_like_the_readme_and_starts_mlflow(provider: str) -> None:
    config = _load(provider)
    readme = (ROOT / "README.md").read_text()
    assert 'python -m pip install -e ".[dev]"' in readme
    # Same install as the README (quiet flag aside), from the repository mounted on every node.
    installs = [c for c in config["setup_commands"] if re.search(r'pip install (-q )?-e "\.\[dev\]"', c)]
    assert installs and all("cd ~/robust-vit-search" in c for c in installs)
    assert config["file_mounts"] == {"~/robust-vit-search": "."}
    # A tracking server on the head's loopback (the driver, on the head, is its only client; people
    # come in through an SSH tunnel), never on every interface; and no retired ray-ml image.
    started = " ".join(config["head_start_ray_commands"])
    assert "mlflow server" in started and "--host 127.0.0.1" in started and "--port 5000" in started
    assert 'MLFLOW_TRACKING_URI="http://127.0.0.1:5000"' in " ".join(config["head_setup_commands"])
    assert "0.0.0.0" not in CLUSTER_FILES[provider].read_text()
    assert "ray-ml" not in config["docker"]["image"]


def _rename(config: dict[str, Any], old: str, new: str) -> None:
    config[new] = config.pop(old)


MUTATIONS = {
    # A misspelt top-level key: the schema allows no extra properties.
    "top_level_typo": lambda c: _rename(c, "head_start_ray_commands", "head_start_ray_command"),
    # A misspelt key inside a node type.
    "node_type_typo": lambda c: c["available_node_types"]["gpu_worker"].update(
        {"min_worker": c["available_node_types"]["gpu_worker"].pop("min_workers")}
    ),
    # Wrong type for a count.
    "max_workers_not_int": lambda c: c.update(max_workers="four"),
    # Resources must be whole numbers.
    "fractional_gpu_resource": lambda c: c["available_node_types"]["gpu_worker"].update(
        resources={"CPU": 4, "GPU": 0.5}
    ),
    # Every node type needs its node_config.
    "missing_node_config": lambda c: c["available_node_types"]["gpu_worker"].pop("node_config"),
    # Commands are lists of strings.
    "setup_command_not_string": lambda c: c["setup_commands"].append({"run": "pip install -e ."}),
}


@pytest.mark.parametrize("provider", sorted(CLUSTER_FILES))
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_broken_copy_is_rejected_by_schema(provider: str, mutation: str) -> None:
    config = _load(provider)
    MUTATIONS[mutation](config)
    with pytest.raises(jsonschema.ValidationError):
        _ray_validate(config)


@pytest.mark.parametrize("provider", sorted(CLUSTER_FILES))
def test_cross_field_errors_are_caught(provider: str) -> None:
    # A head type that is not declared.
    config = _load(provider)
    config["head_node_type"] = "no_such_type"
    with pytest.raises(ValueError, match="head_node_type"):
        validate_config(prepare_config(config))
    # More min_workers than the cluster's max_workers.
    config = _load(provider)
    config["available_node_types"]["gpu_worker"]["min_workers"] = config["max_workers"] + 1
    config["available_node_types"]["gpu_worker"]["max_workers"] = config["max_workers"] + 1
    with pytest.raises(ValueError, match="max_workers"):
        validate_config(prepare_config(config))
