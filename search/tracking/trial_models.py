"""From a trial's run in MLflow to its weights: the ``model/`` artifacts of a finished trial.

Every finished trial's run gets ``model/checkpoint.json`` (where its last checkpoint lies, relative
to the run folder, and the ``search export`` command that turns it into a timm folder) and
``model/README.md`` (the lines that load it). When the search ends, each trial on the Pareto front
also gets the exported folder itself (``model/config.json`` + ``model/model.safetensors``, see
:mod:`search.trial.export`): download ``model/`` from the run's Artifacts tab and::

    import components, timm  # components registers the zoo's architectures with timm
    model = timm.create_model("local-dir:model", pretrained=True).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))

The transform normalises with the trial's mean and std: the trials learn on normalised images, so
raw pixels in [0, 1] give a model near chance (18 % instead of 95.6 % on the quickstart's digits).
The run's tag :data:`MODEL_TAG` says which it holds (``pointer`` or ``exported``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow.entities import RunTag

from search.results.records import TrialRecord
from search.results.run_folder import trial_checkpoint

MODEL_ARTIFACTS = "model"
MODEL_TAG = "model_artifact"  # "pointer" | "exported"
LOAD_LINES = (
    "import components, timm  # components registers the zoo's architectures with timm",
    'model = timm.create_model("local-dir:model", pretrained=True).eval()',
    "transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))",
)


def _readme(record: TrialRecord, exported: bool, checkpoint: str | None, run_folder: Path) -> str:
    lines = [f"# Trial {record.trial_id}", ""]
    if exported:
        lines += ["This folder is the trained model as timm loads it. Download `model/` and:", ""]
    else:
        target = f"exported/{record.trial_id}"
        lines += ["The trained weights are in the search's run folder"
                  + (f" (`{checkpoint}`)" if checkpoint else "") + ". Make a timm folder of them with", "",
                  f"    search export {run_folder} {record.trial_id} --out exported/", "",
                  f"and load `{target}` (in place of `model` below):", ""]
    lines += ["```python", *LOAD_LINES, "```", "",
              "The transform normalises with the trial's mean and std: the trials learned on normalised "
              "images, and raw pixels give a model near chance.", ""]
    return "\n".join(lines)


def log_trial_model(client: Any, run_id: str, run_folder: Path, record: TrialRecord,
                    objectives: list[tuple[str, str]], export: bool) -> str | None:
    """Log the ``model/`` artifacts of a finished trial (``export``: the timm folder too, when its
    checkpoint is in the run folder); returns what was logged, "pointer" or "exported"."""
    from search.trial.export import export_trial

    checkpoint = trial_checkpoint(run_folder, record.trial_id)
    relative = None
    if checkpoint is not None:
        relative = str(checkpoint.resolve().relative_to(run_folder.resolve())) \
            if checkpoint.resolve().is_relative_to(run_folder.resolve()) else str(checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / MODEL_ARTIFACTS
        kind = "pointer"
        if export and checkpoint is not None:
            scores = {m: record.final[m] for m, _ in objectives if m in record.final}
            export_trial(checkpoint, folder, trial_id=record.trial_id, objectives=scores)
            kind = "exported"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "checkpoint.json").write_text(json.dumps({
            "trial_id": record.trial_id,
            "checkpoint": relative,  # relative to the run folder (None: not in the run folder)
            "export": f"search export RUN_FOLDER {record.trial_id} --out DIR",
        }, indent=2) + "\n")
        (folder / "README.md").write_text(_readme(record, kind == "exported", relative, run_folder))
        client.log_artifacts(run_id, str(folder), MODEL_ARTIFACTS)
    client.log_batch(run_id, tags=[RunTag(MODEL_TAG, kind)])
    return kind
