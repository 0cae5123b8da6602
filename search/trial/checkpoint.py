"""A trial's checkpoint folder: tensors in ``trial.pt``, everything else as plain JSON in ``trial.json``.

Checkpoints may sit in a shared bucket that many workers read, so nothing in them is code: the
tensors (model, optimiser, schedule) are read with ``torch.load(weights_only=True)``, and the trial
spec, the judging settings and the counters are JSON. ``trial.json`` alone says how to rebuild the
model (``model_name``, ``model_kwargs``) and how the trial was judged (``judging``), so
``search eval CHECKPOINT`` reproduces the trial's logged objectives with no other input.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from search.results.json_files import json_safe
from search.trial.spec import TrialSpec

TENSORS_FILE = "trial.pt"
META_FILE = "trial.json"
FORMAT = 1


def save_checkpoint(directory: str | os.PathLike, spec: TrialSpec, judging: dict[str, Any],
                    tensors: dict[str, Any], progress: dict[str, Any]) -> None:
    """Write ``trial.pt`` (``tensors``: state dicts) and ``trial.json`` (spec, judging, ``progress``)."""
    directory = Path(directory)
    torch.save(tensors, directory / TENSORS_FILE)
    meta = {
        "format": FORMAT,
        "model_name": spec.model.name,
        "model_kwargs": spec.model.kwargs(),
        "spec": spec.to_flat_dict(),
        "judging": judging,
        **progress,
    }
    (directory / META_FILE).write_text(json.dumps(json_safe(meta), indent=2, sort_keys=True) + "\n")


def checkpoint_folder(path: str | os.PathLike) -> Path:
    """The checkpoint folder of ``path`` (the folder itself, or the folder of its ``trial.pt`` / ``trial.json``)."""
    path = Path(path)
    return path.parent if path.name in (TENSORS_FILE, META_FILE) else path


def is_trial_checkpoint(path: str | os.PathLike) -> bool:
    return (checkpoint_folder(path) / META_FILE).is_file()


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The plain-data half of a checkpoint (``trial.json``)."""
    meta_path = checkpoint_folder(path) / META_FILE
    meta = json.loads(meta_path.read_text())
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: not a trial checkpoint of format {FORMAT}")
    return meta


def read_tensors(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The tensors of a checkpoint, read with ``weights_only=True`` (no code is ever unpickled)."""
    return torch.load(checkpoint_folder(path) / TENSORS_FILE, map_location=map_location, weights_only=True)


def load_trial_checkpoint(path: str | os.PathLike) -> tuple[TrialSpec, torch.nn.Module, dict[str, Any]]:
    """Rebuild a trial's model from its checkpoint alone: (spec, model with weights, meta)."""
    from search.trial.build import build_model

    meta = read_meta(path)
    spec = TrialSpec.from_flat_dict(meta["spec"])
    model = build_model(spec)
    model.load_state_dict(read_tensors(path)["model"])
    return spec, model, meta
