"""What a search needs to be reproduced, as tags of its parent run.

``repro.git_commit`` (and ``repro.git_dirty``) when the project runs from a git checkout, the
versions of torch, timm, Ray, Optuna and MLflow (read from the installed distributions, without
importing them), Python, the device the trials get (``resources.gpus_per_trial``: ``cuda`` with the
GPU's name, else ``cpu``) and the seeds (the search's sampler seed, the corrupted set's seed).
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = {"torch": "torch", "timm": "timm", "ray": "ray", "optuna": "optuna", "mlflow": "mlflow"}
PREFIX = "repro."
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding components/, evaluation/, search/


def git_state(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """The checkout's commit and whether it has uncommitted changes ({} outside a checkout)."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit, "git_dirty": str(bool(dirty)).lower()} if commit else {}


def versions() -> dict[str, str]:
    """``{package: version}`` of the search stack ("not installed" for one that is missing)."""
    out = {"python": platform.python_version()}
    for key, dist in PACKAGES.items():
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = "not installed"
    return out


def device(gpus_per_trial: float) -> str:
    """The device the trials train on."""
    if not gpus_per_trial:
        return "cpu"
    try:
        import torch

        if torch.cuda.is_available():
            return f"cuda ({torch.cuda.get_device_name(0)})"
    except Exception:  # noqa: BLE001  a driver without a GPU still records what the trials ask for
        pass
    return "cuda"


def reproducibility_tags(space: Any) -> dict[str, str]:
    """The parent run's ``repro.*`` tags for ``space``."""
    search, evaluation, resources = (getattr(space, k, None) for k in ("search", "eval", "resources"))
    tags = {**git_state(), **{f"{k}_version": v for k, v in versions().items()}}
    tags["device"] = device(float(getattr(resources, "gpus_per_trial", 0) or 0))
    tags["seed"] = str(getattr(search, "seed", ""))
    tags["eval_seed"] = str(getattr(evaluation, "seed", ""))
    return {PREFIX + k: v for k, v in tags.items()}
