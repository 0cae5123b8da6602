"""``search export RUN_FOLDER_OR_NAME [TRIAL_ID ...] [--front] --out DIR``: trained trials as timm folders.

Each trial's last checkpoint becomes ``DIR/TRIAL_ID/`` with ``config.json`` and ``model.safetensors``
(see :mod:`search.trial.export`); ``timm.create_model("local-dir:DIR/TRIAL_ID", pretrained=True)``
then loads it (after ``import components`` for the zoo's architectures).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from search.errors import UserError

NAME = "export"
HELP = "Export trained trials (or the whole Pareto front) as folders that timm loads with local-dir:."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_FOLDER_OR_NAME", help="a run folder, or a space name under runs/")
    parser.add_argument("trials", metavar="TRIAL_ID", nargs="*", help="trial ids (see the trial records)")
    parser.add_argument("--front", action="store_true", help="every trial on the Pareto front")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write one sub-folder per trial into")


def run(args: argparse.Namespace) -> int:
    from search.results import run_folder
    from search.results.records import load_records
    from search.results.summary import pareto_front
    from search.space import load_space
    from search.trial.export import export_trial

    folder = run_folder.locate(args.run)
    if folder is None:
        raise UserError(f"{args.run}: not a run folder of a search, nor a space name under {run_folder.DEFAULT_STORAGE}/")
    if not args.trials and not args.front:
        raise UserError("name the trials to export (TRIAL_ID ...) or pass --front")
    space = load_space(run_folder.space_copy(folder))
    records = {r.trial_id: r for r in load_records(folder)}
    chosen = list(args.trials)
    unknown = [t for t in chosen if t not in records]
    if unknown:
        raise UserError(f"{folder}: no trial {unknown[0]!r}; trials: {', '.join(sorted(records)) or 'none'}")
    if args.front:
        chosen += [r.trial_id for r in pareto_front(list(records.values()), space.objectives) if r.trial_id not in chosen]
        if not chosen:
            raise UserError(f"{folder}: the Pareto front is empty (no trial finished its full budget)")
    for trial_id in chosen:
        checkpoint = run_folder.trial_checkpoint(folder, trial_id)
        if checkpoint is None:
            raise UserError(f"{folder}: trial {trial_id} has no checkpoint in the run folder (a search whose storage "
                            "is a URI keeps them there: copy the trial's folder here first)")
        record = records[trial_id]
        objectives = {m: record.final[m] for m, _ in space.objectives if m in record.final}
        out = export_trial(checkpoint, Path(args.out) / trial_id, trial_id=trial_id, objectives=objectives)
        shown = ", ".join(f"{m} {v:.4g}" for m, v in objectives.items())
        print(f"{trial_id} ({record.params.get('model_name')}, {record.status}{'; ' + shown if shown else ''}) -> {out}")
    print('load with: import components, timm; timm.create_model("local-dir:DIR/TRIAL_ID", pretrained=True); '
          "preprocessing: timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))")
    return 0
