"""The run folder of a search, ``<storage>/<space name>/``: the one place that names its files.

::

    space.yaml      the space file the search was started from (a changed space cannot resume)
    optuna.db       the Optuna study (SQLite)
    mlflow.db       the MLflow store, unless a tracking server was given
    trials/ID.json  one record per trial (search.results.records)
    tracking/state.json  the MLflow tracker's memory (search id, hypervolume history)
    confirm/confirmation.json  ``search confirm``: the front's members retrained with new seeds
                    (search.results.confirmation)
    confirm/trials/ID.json  one record per confirmation trial (a TrialRecord: its params hold its seed)
    confirm/ray/    Ray's experiment folder of the confirmation trials (their checkpoints)
    report.html     ``search report``: the study report (search.report), one self-contained page
    rungs/mo_asha.json  MO-ASHA's rungs: every rung result and decision (search.tune.schedulers); in a
                    folder: Ray copies the top-level .json/.pkl files of its experiment folder to its
                    staging folder on resume and back at every snapshot, which would undo the writes
    <Ray trial folders>/checkpoint_*/trial.pt + trial.json   (when the storage is local)

A run folder may be moved or copied: nothing in it holds its own absolute path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SPACE_COPY = "space.yaml"
STUDY_DB = "optuna.db"
MLFLOW_DB = "mlflow.db"
TRIALS_DIR = "trials"
# The MLflow tracker's memory. In a folder of its own: on a resume Ray copies the experiment folder's
# top-level .json files aside and writes those copies back at every snapshot, which would undo it.
TRACKING_STATE = "tracking/state.json"
LEGACY_TRACKING_STATE = "tracking.json"  # where run folders before 2026-12-01 kept it
RUNGS_FILE = "rungs/mo_asha.json"
CONFIRM_DIR = "confirm"  # ``search confirm``'s folder: laid out as a run folder (its trials/ are its records)
CONFIRMATION_FILE = f"{CONFIRM_DIR}/confirmation.json"
CONFIRM_RAY_NAME = "ray"  # Ray's experiment folder in it
REPORT_FILE = "report.html"  # ``search report``'s page (``--output`` writes it elsewhere)
DEFAULT_STORAGE = "runs"  # storage.path's default: where `search pareto NAME` looks first
_CHECKPOINT = re.compile(r"^checkpoint_(\d+)$")


def space_copy(run_folder: str | os.PathLike) -> Path:
    return Path(run_folder) / SPACE_COPY


def study_uri(run_folder: str | os.PathLike) -> str:
    """The Optuna storage URL of the search's study."""
    return f"sqlite:///{Path(run_folder) / STUDY_DB}"


def space_name(run_folder: str | os.PathLike) -> str | None:
    """The name in the run folder's space copy (None without one): the MLflow experiment's name,
    whatever the folder is called now."""
    import yaml

    try:
        data = yaml.safe_load(space_copy(run_folder).read_text())
    except (OSError, yaml.YAMLError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else None


def mlflow_db(run_folder: str | os.PathLike) -> Path:
    return Path(run_folder) / MLFLOW_DB


def tracking_state(run_folder: str | os.PathLike) -> Path:
    return Path(run_folder) / TRACKING_STATE


def trials_dir(run_folder: str | os.PathLike) -> Path:
    return Path(run_folder) / TRIALS_DIR


def rungs_file(run_folder: str | os.PathLike) -> Path:
    return Path(run_folder) / RUNGS_FILE


def confirmation_file(run_folder: str | os.PathLike) -> Path:
    return Path(run_folder) / CONFIRMATION_FILE


def confirm_dir(run_folder: str | os.PathLike) -> Path:
    """``confirm/``: its ``trials/`` holds the confirmation trials' records (``trials_dir(confirm_dir(f))``)."""
    return Path(run_folder) / CONFIRM_DIR


def report_file(run_folder: str | os.PathLike) -> Path:
    return Path(run_folder) / REPORT_FILE


def is_run_folder(path: str | os.PathLike) -> bool:
    """A folder a search wrote (its space copy or its records are there)."""
    path = Path(path)
    return path.is_dir() and (space_copy(path).is_file() or trials_dir(path).is_dir())


def locate(name_or_path: str | os.PathLike) -> Path | None:
    """A run folder given as a path, or as a space name under the default storage; None if neither."""
    for candidate in (Path(name_or_path), Path(DEFAULT_STORAGE) / str(name_or_path)):
        if is_run_folder(candidate):
            return candidate.resolve()
    return None


def trial_checkpoint(experiment_path: str | os.PathLike, trial_id: str) -> Path | None:
    """The latest checkpoint folder of trial ``trial_id`` in Ray's experiment folder (None: none)."""
    latest: tuple[int, Path] | None = None
    for trial_dir in Path(experiment_path).glob(f"*{trial_id}*"):
        if not trial_dir.is_dir():
            continue
        for child in trial_dir.iterdir():
            match = _CHECKPOINT.match(child.name)
            if match and child.is_dir() and (latest is None or int(match.group(1)) > latest[0]):
                latest = (int(match.group(1)), child)
    return latest[1] if latest else None
