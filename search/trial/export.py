"""A trained trial as a folder that plain timm loads: ``config.json`` + ``model.safetensors``.

After ``import components`` (for the zoo's architectures), ::

    model = timm.create_model("local-dir:DIR", pretrained=True)
    config = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**config)

give the trained model and its preprocessing (the trial's normalisation, mean and std, and input
size). ``config.json`` is written by timm's own ``save_config_for_hf`` (architecture, model
arguments, ``pretrained_cfg``); a ``search`` section adds the trial's id, objectives, spec and
judging settings, which timm ignores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from search.trial.checkpoint import load_trial_checkpoint

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def export_trial(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, *, trial_id: str,
                 objectives: dict[str, float] | None = None) -> Path:
    """Write the model of a trial checkpoint to ``out_dir`` as a timm ``local-dir:`` folder."""
    from safetensors.torch import save_file
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    from timm.models._hub import save_config_for_hf

    spec, model, meta = load_trial_checkpoint(checkpoint)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # safetensors refuses tensors that share memory; a state dict of contiguous copies has none.
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, out / WEIGHTS_FILE)
    size = int(meta["judging"]["data"]["image_size"])
    # The trials train on images in [0, 1] normalised by timm's ImageNet mean and std
    # (evaluation.data.normalize), at the data set's size, already square: no crop.
    data_config = {"input_size": (3, size, size), "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
                   "crop_pct": 1.0, "interpolation": "bilinear"}
    search_section: dict[str, Any] = {
        "trial_id": trial_id,
        "objectives": objectives or {},
        "spec": spec.to_flat_dict(),
        "judging": meta["judging"],
        "epoch": meta["epoch"],
    }
    save_config_for_hf(model, str(out / CONFIG_FILE), model_config={"search": search_section},
                       data_config=data_config)
    json.loads((out / CONFIG_FILE).read_text())  # written whole
    return out
