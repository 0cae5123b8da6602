"""``search eval MODEL``: judge a trial's checkpoint, a saved model or a timm model under corruptions.

MODEL is one of:

- a trial checkpoint (its folder, or the ``trial.pt`` / ``trial.json`` in it): the model is rebuilt
  from the checkpoint's spec, and it is judged **as the trial was** (same data, test images,
  corruption table, severities, subset, seed and mCE normalisation, all read from ``trial.json``),
  so the report reproduces the trial's logged objectives; any option given overrides its setting;
- a ``.pt`` dict with ``model_name`` (a timm name), ``model_kwargs`` and the weights under
  ``state_dict`` or ``model``, read with ``weights_only=True``;
- a timm model name, built with ``--model-kwargs`` (JSON) and untrained weights unless the name has
  weights on disk (nothing downloads). ``components`` is imported first, so the zoo's names work;
- a zoo model name with ``--authors-weights FILE``: a checkpoint released by the FAN or TAP/ADL
  authors (their key names), converted by :func:`components.convert.load_authors_checkpoint`.

The corrupted test set is built once and cached (``--cache-dir``), or a pre-made benchmark is read
with ``--corrupted-data`` (ImageNet-C folder or CIFAR-10-C/100-C ``.npy`` folder). The report is
printed as a table; ``--json FILE`` also writes the flat metric dict.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from search.cli.progress import ProgressBar
from search.errors import UserError

NAME = "eval"
HELP = "Judge a trial checkpoint, a saved model or a timm model under common corruptions."

# Settings of a model name or a plain .pt file when an option is not given (a trial checkpoint
# carries its own). ``auto``: the table from the image size, the normalisation from the table.
DEFAULTS = {
    "dataset": "digits", "data_path": None, "split": "test", "image_size": 32, "corruptions": "benchmark",
    "severities": "1,2,3,4,5", "table": "auto", "subset": None, "seed": 0, "backend": "torch",
    "corrupted_data": None, "normalization": "auto", "batch_size": 256,
}


# Options that set a field of the judging context's data or eval section as they are.
OPTION_FIELDS = {"dataset": ("data", "dataset"), "split": ("data", "test_split"), "image_size": ("data", "image_size"),
                 "subset": ("eval", "subset"), "seed": ("eval", "seed"), "backend": ("eval", "backend"),
                 "batch_size": ("eval", "batch_size")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a trial checkpoint (folder), a .pt file or a timm model name")
    parser.add_argument("--model-kwargs", default="{}", metavar="JSON",
                        help="keyword arguments for timm.create_model, as JSON (model names only)")
    parser.add_argument("--authors-weights", metavar="FILE",
                        help="a FAN or TAP/ADL checkpoint released by the authors, for the zoo model MODEL "
                             "(e.g. fan_base_16_p4_hybrid); it keeps its own number of classes")
    # Judging options default to None: a trial checkpoint's own setting, else DEFAULTS.
    parser.add_argument("--dataset", help="digits | cifar10 | cifar100 | imagefolder (default: digits)")
    parser.add_argument("--data-path", help="folder of the data set (not needed for digits)")
    parser.add_argument("--split", help="clean split to judge on (default: test; imagefolder: e.g. val)")
    parser.add_argument("--image-size", type=int, help="image side in pixels (default 32)")
    parser.add_argument("--corruptions", help="benchmark (15, the default) | extra (4) | all (19) | comma-separated names")
    parser.add_argument("--severities", help="comma-separated severities 1..5 (default: all five)")
    parser.add_argument("--table", choices=["auto", "imagenet_c", "imagecorruptions", "cifar10", "imagenet"],
                        help="corruption parameters; auto (default) = cifar10 below 128 px, else imagenet_c (the "
                             "released ImageNet-C recipe); imagecorruptions = the package's variant (formerly imagenet)")
    parser.add_argument("--subset", type=int, help="corrupt a seeded random subset of this many test images")
    parser.add_argument("--seed", type=int, help="seed of the subset and the corruptions (default 0)")
    parser.add_argument("--cache-dir", default=".cache/corrupted", help="where corrupted sets are cached")
    parser.add_argument("--backend", choices=["torch", "reference"],
                        help="corruption engine (reference = imagecorruptions, ImageNet table only)")
    parser.add_argument("--corrupted-data", metavar="PATH",
                        help="read a pre-made benchmark (ImageNet-C folder or CIFAR-10-C folder) instead")
    parser.add_argument("--normalization",
                        help="alexnet | none | a baseline .json/.csv file; auto (default) = alexnet for the "
                             "imagenet table, none (CIFAR convention) otherwise")
    parser.add_argument("--batch-size", type=int, help="judging batch size (default 256)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the flat metrics as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress line while building")


# ---- the model ------------------------------------------------------------------------------------
def _trial_checkpoint(args: argparse.Namespace):
    """(model, judging settings) of a trial checkpoint, or None when MODEL is not one."""
    from search.trial import checkpoint

    if not checkpoint.is_trial_checkpoint(args.model):
        return None
    try:
        _, model, meta = checkpoint.load_trial_checkpoint(args.model)
    except (ValueError, KeyError, RuntimeError, OSError) as err:
        raise UserError(f"{args.model}: not a readable trial checkpoint ({str(err).splitlines()[0]})") from None
    return model, meta["judging"]


def _plain_model(args: argparse.Namespace, num_classes: int):
    import timm
    import torch

    import components  # noqa: F401  (registers the zoo with timm)

    path = Path(args.model)
    state = None
    if path.suffix == ".pt" or path.is_file():
        if not path.is_file():
            raise UserError(f"checkpoint {path} does not exist")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise UserError(f"{path}: not a readable torch checkpoint ({str(err).splitlines()[0]})") from None
        state = ckpt.get("state_dict", ckpt.get("model")) if isinstance(ckpt, dict) else None
        if not isinstance(ckpt, dict) or "model_name" not in ckpt or state is None:
            raise UserError(f"{path}: a checkpoint must be a trial checkpoint folder, or a dict with 'model_name', "
                            "'model_kwargs' and 'state_dict' (or 'model')")
        name, kwargs = ckpt["model_name"], dict(ckpt.get("model_kwargs") or {})
    else:
        name = args.model
        try:
            kwargs = json.loads(args.model_kwargs)
        except json.JSONDecodeError as err:
            raise UserError(f"--model-kwargs is not valid JSON: {err}") from None
        if not isinstance(kwargs, dict):
            raise UserError(f"--model-kwargs must be a JSON object, got {args.model_kwargs!r}")
        if args.authors_weights:
            from components.convert import load_authors_checkpoint

            try:
                return load_authors_checkpoint(args.authors_weights, name, **kwargs)
            except (ValueError, RuntimeError) as err:
                raise UserError(f"--authors-weights {args.authors_weights}: {str(err).splitlines()[0]}") from None
        kwargs.setdefault("num_classes", num_classes)
    if not timm.is_model(name):
        raise UserError(f"unknown model {name!r}: not a timm model name nor a checkpoint")
    try:
        model = timm.create_model(name, **kwargs)
    except Exception as err:
        raise UserError(f"cannot build {name} with {kwargs}: {err}") from None
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise UserError(f"{path}: weights do not fit {name}: {str(err).splitlines()[0]}") from None
    else:  # timm.create_model without pretrained weights: a freshly initialised model
        print(f"search eval: note: {name} is a model name: its weights are untrained (random initialisation; "
              "nothing downloads), so the report judges an untrained model; give a trial checkpoint, a .pt file "
              "or --authors-weights FILE to judge trained weights", file=sys.stderr)
    return model


# ---- the judging settings ---------------------------------------------------------------------------
def _context(args: argparse.Namespace, saved: dict[str, Any] | None):
    """The judging context: a checkpoint's own settings (or DEFAULTS), with the options given on top."""
    from evaluation.corruptions import auto_table, parse_corruptions, table_name
    from evaluation.report import default_normalization
    from search.trial.context import TrialContext

    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
    if saved is None:  # a model without settings of its own: every option at its default
        given = {**DEFAULTS, **given}
        saved = {"data": {}, "eval": {}, "table": "", "seed": 0}  # every field at its schema default
        explicit_corruptions = True  # a pre-made folder too: the 15 benchmark corruptions unless named
    else:
        explicit_corruptions = True
    ctx = TrialContext.from_judging(saved)
    changes: dict[str, dict[str, Any]] = {"data": {}, "eval": {"cache_dir": args.cache_dir}}
    for option, (section, name) in OPTION_FIELDS.items():
        if option in given:
            changes[section][name] = given[option]
    if "data_path" in given:
        changes["data"]["path"] = str(Path(given["data_path"]).expanduser().resolve()) if given["data_path"] else None
    if "corrupted_data" in given:
        folder = given["corrupted_data"]
        changes["eval"]["benchmark_path"] = str(Path(folder).expanduser().resolve()) if folder else None
    if "severities" in given:
        changes["eval"]["severities"] = tuple(int(s) for s in str(given["severities"]).split(",") if s.strip())
    if "corruptions" in given:  # a pre-made folder with the default: every corruption the folder holds
        changes["eval"]["corruptions"] = tuple(parse_corruptions(given["corruptions"])) if explicit_corruptions else ()
    ctx = dataclasses.replace(ctx, data=dataclasses.replace(ctx.data, **changes["data"]),
                              eval=dataclasses.replace(ctx.eval, **changes["eval"]))
    if given.get("table") is not None:
        table = given["table"]
        ctx = dataclasses.replace(ctx, table=table_name(table) if table != "auto" else auto_table(ctx.data.image_size))
    if given.get("normalization") is not None:
        normalization = given["normalization"]
        if normalization == "auto":
            normalization = default_normalization(ctx.table)
        ctx = dataclasses.replace(ctx, eval=dataclasses.replace(ctx.eval, normalization=normalization))
    return ctx


def run(args: argparse.Namespace) -> int:
    from evaluation.report import comparability_warnings
    from search.trial.context import judge, judging_set, load_test

    try:
        found = _trial_checkpoint(args)
        ctx = _context(args, found[1] if found else None)
        clean = load_test(ctx)
        model = found[0] if found else _plain_model(args, clean.num_classes)
        corrupted = judging_set(ctx, clean, progress=not args.no_progress)
        report = judge(model.eval(), ctx, clean, corrupted, device=args.device,
                       progress=None if args.no_progress else ProgressBar("judging", sys.stderr))
    except ValueError as err:
        raise UserError(str(err)) from None
    print(f"judged as {'the trial was (settings from its checkpoint)' if found else 'given'}: data "
          f"{ctx.data.dataset} {ctx.data.test_split} at {ctx.data.image_size} px, table {ctx.table or 'pre-made'}, "
          f"subset {ctx.eval.subset}, seed {ctx.eval.seed}")
    for line in comparability_warnings(ctx.table, ctx.eval.normalization, ctx.data.image_size):
        print(line, file=sys.stderr)
    print(report.to_table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json_dict(), indent=2))
    return 0
