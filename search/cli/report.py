"""``search report NAME_OR_RUN_FOLDER``: the study report of a search, one self-contained HTML page.

Written to ``RUN_FOLDER/report.html`` (``--output PATH`` elsewhere) from the run folder's records,
space copy, tracker state and confirmation (see :mod:`search.report`), and logged to the search's
MLflow parent run as ``report/report.html``. Without MLflow (a server away, a store that holds no
parent run) the page is still written, and one line says it was not logged.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from search.errors import UserError

NAME = "report"
HELP = "Write a search's study report (front, hypervolume, component effects, errors, confirmation) as one HTML page."
REPORT_ARTIFACTS = "report"  # artifact folder on the parent run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="NAME_OR_RUN_FOLDER", help="a run folder, or a space name under runs/")
    parser.add_argument("--output", metavar="PATH", default=None, help="where to write the page (default: RUN_FOLDER/report.html)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI of the search (default: "
                        "$MLFLOW_TRACKING_URI, else RUN_FOLDER/mlflow.db)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals (default: 0)")


def run(args: argparse.Namespace) -> int:
    from search.results import run_folder
    from search.results.confirmation import read_confirmation
    from search.results.records import load_records
    from search.results.study import build_study
    from search.space import load_space

    folder = run_folder.locate(args.run)
    if folder is None:
        raise UserError(f"{args.run}: not a run folder of a search, nor a space name under {run_folder.DEFAULT_STORAGE}/")
    if not run_folder.space_copy(folder).is_file():
        raise UserError(f"{folder}: no {run_folder.SPACE_COPY} in it (the space copy a search writes); not a run folder")
    space = load_space(run_folder.space_copy(folder))
    try:
        records = load_records(folder)
        confirmation = read_confirmation(folder)
    except ValueError as err:  # a record or the confirmation file that is not what the search wrote
        raise UserError(f"{folder}: {err}") from None
    state = _tracking_state(folder)
    study = build_study(
        folder, space, records,
        finish_order=state.finish_order if state else (),
        history=state.hypervolume if state else (),
        reference=state.reference if state else None,
        confirmation=confirmation,
        seed=args.seed,
    )
    from search.report import write_page

    target = Path(args.output) if args.output else run_folder.report_file(folder)
    try:
        path = write_page(study, target).resolve()
    except OSError as err:
        raise UserError(f"{target}: cannot write the report there ({err.strerror or err}); pass --output PATH") from None
    print(path)
    _log_to_parent(folder, str(space.name), state.search_id if state else None, path, args.tracking_uri, args.run)
    return 0


def _tracking_state(folder: Path):
    """The tracker's memory (None when the search never tracked: no parent run to log to)."""
    from search.results.run_folder import LEGACY_TRACKING_STATE, tracking_state
    from search.tracking.state import TrackingState

    if not (tracking_state(folder).exists() or (folder / LEGACY_TRACKING_STATE).exists()):
        return None
    return TrackingState.load(folder)


def _log_to_parent(folder: Path, experiment: str, search_id: str | None, page: Path, tracking_uri: str | None,
                   target: str) -> bool:
    """Log the page to the search's parent run as ``report/report.html``; one line either way."""
    from search.results.run_folder import REPORT_FILE, mlflow_db
    from search.tracking import runs
    from search.tracking.store import (
        CHECK_TIMEOUT_S,
        is_local_sqlite,
        make_client,
        quick_http,
        resolve_tracking_uri,
        short_reason,
    )

    uri = resolve_tracking_uri(folder, tracking_uri)
    if search_id is None:
        print(f"not logged to MLflow: {folder} has no tracking state (the search was never tracked)", file=sys.stderr)
        return False
    if is_local_sqlite(uri) and uri.endswith(str(mlflow_db(folder).resolve())) and not mlflow_db(folder).exists():
        print(f"not logged to MLflow: {mlflow_db(folder)} does not exist (pass --tracking-uri for a server)", file=sys.stderr)
        return False
    try:
        with quick_http(timeout_s=CHECK_TIMEOUT_S, retries=0):
            client = make_client(uri)
            experiment_ = client.get_experiment_by_name(experiment)
            parent = runs.find_parent(client, experiment_.experiment_id, search_id) if experiment_ else None
            if parent is None:
                print(f"not logged to MLflow: {uri} holds no parent run of this search (experiment {experiment!r})",
                      file=sys.stderr)
                return False
            with tempfile.TemporaryDirectory() as tmp:  # the artifact keeps its name whatever --output was
                shutil.copyfile(page, Path(tmp) / REPORT_FILE)
                client.log_artifact(parent.info.run_id, str(Path(tmp) / REPORT_FILE), REPORT_ARTIFACTS)
    except Exception as err:  # a server away, a store that cannot be read: the page is written anyway
        print(f"not logged to MLflow: {uri} failed ({short_reason(err)}); the page is written; run "
              f"`search report {target}` again when MLflow is back", file=sys.stderr)
        return False
    print(f"logged to MLflow: parent run {parent.info.run_id}, artifact {REPORT_ARTIFACTS}/{REPORT_FILE}")
    return True
