"""``search eval MODEL``: judge a checkpoint or a timm model on clean and corrupted test images.

MODEL is either a ``.pt`` checkpoint or a timm model name. A checkpoint is a ``torch.save``'d dict
with ``model_name`` (a timm name), ``model_kwargs`` (dict of ``timm.create_model`` keyword
arguments) and the weights under ``state_dict`` or ``model`` (the search's trial checkpoints have
this form). A model name is built with ``--model-kwargs`` (JSON) and untrained weights unless the
name has pretrained weights on disk (nothing downloads). ``components`` is imported first, so the
zoo's names (``robust_vit_digits_p4_32``, ...) work.

The corrupted test set is built once and cached (``--cache-dir``), or a pre-made benchmark is read
with ``--corrupted-data`` (ImageNet-C folder or CIFAR-10-C/100-C ``.npy`` folder). The report is
printed as a table; ``--json FILE`` also writes the flat metric dict.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from search.errors import UserError

NAME = "eval"
HELP = "Judge a checkpoint or timm model under common corruptions and print a robustness report."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a .pt checkpoint or a timm model name")
    parser.add_argument("--model-kwargs", default="{}", metavar="JSON",
                        help="keyword arguments for timm.create_model, as JSON (model names only)")
    parser.add_argument("--dataset", default="digits", help="digits | cifar10 | cifar100 | imagefolder")
    parser.add_argument("--data-path", default=None, help="folder of the data set (not needed for digits)")
    parser.add_argument("--split", default="test", help="clean split to judge on (imagefolder: e.g. val)")
    parser.add_argument("--image-size", type=int, default=32, help="image side in pixels (default 32)")
    parser.add_argument("--corruptions", default="benchmark",
                        help="benchmark (15) | extra (4) | all (19) | comma-separated names")
    parser.add_argument("--severities", default="1,2,3,4,5", help="comma-separated severities 1..5")
    parser.add_argument("--table", default="auto", choices=["auto", "imagenet", "cifar10"],
                        help="corruption parameters; auto = cifar10 below 128 px, else imagenet")
    parser.add_argument("--subset", type=int, default=None,
                        help="corrupt a seeded random subset of this many test images (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset and the corruptions")
    parser.add_argument("--cache-dir", default=".cache/corrupted", help="where corrupted sets are cached")
    parser.add_argument("--backend", default="torch", choices=["torch", "reference"],
                        help="corruption engine (reference = imagecorruptions, ImageNet table only)")
    parser.add_argument("--corrupted-data", default=None, metavar="PATH",
                        help="read a pre-made benchmark (ImageNet-C folder or CIFAR-10-C folder) instead")
    parser.add_argument("--normalization", default="auto",
                        help="alexnet | none | a baseline .json/.csv file; auto = alexnet for the imagenet "
                             "table, none (CIFAR convention) otherwise")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the flat metrics as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress line while building")


def _load_model(args: argparse.Namespace, num_classes: int):
    import timm
    import torch

    try:
        import components  # noqa: F401  (registers the zoo with timm)
    except ImportError:
        pass
    path = Path(args.model)
    if path.suffix == ".pt" or path.is_file():
        if not path.is_file():
            raise UserError(f"checkpoint {path} does not exist")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise UserError(f"{path}: not a readable torch checkpoint ({err})") from err
        state = ckpt.get("state_dict", ckpt.get("model")) if isinstance(ckpt, dict) else None
        if not isinstance(ckpt, dict) or "model_name" not in ckpt or state is None:
            raise UserError(f"{path}: a checkpoint must be a dict with 'model_name', 'model_kwargs' and "
                            "'state_dict' (or 'model')")
        name, kwargs = ckpt["model_name"], dict(ckpt.get("model_kwargs") or {})
    else:
        name, state = args.model, None
        try:
            kwargs = json.loads(args.model_kwargs)
        except json.JSONDecodeError as err:
            raise UserError(f"--model-kwargs is not valid JSON: {err}") from err
        if not isinstance(kwargs, dict):
            raise UserError(f"--model-kwargs must be a JSON object, got {args.model_kwargs!r}")
        kwargs.setdefault("num_classes", num_classes)
    if not timm.is_model(name):
        raise UserError(f"unknown model {name!r}: not a timm model name nor a .pt checkpoint file")
    try:
        model = timm.create_model(name, **kwargs)
    except Exception as err:
        raise UserError(f"cannot build {name} with {kwargs}: {err}") from err
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise UserError(f"{path}: weights do not fit {name}: {str(err).splitlines()[0]}") from err
    return model


def run(args: argparse.Namespace) -> int:
    from evaluation.corrupted_set import build_corrupted_set
    from evaluation.corruptions import parse_corruptions
    from evaluation.data import load_dataset
    from evaluation.data.corrupted_benchmarks import load_corrupted_benchmark
    from evaluation.report import evaluate

    try:
        severities = [int(s) for s in args.severities.split(",") if s.strip()]
        corruptions = parse_corruptions(args.corruptions)
        table = args.table if args.table != "auto" else ("cifar10" if args.image_size < 128 else "imagenet")
        normalization = args.normalization
        if normalization == "auto":
            normalization = "alexnet" if table == "imagenet" else "none"
        clean = load_dataset(args.dataset, args.split, path=args.data_path, image_size=args.image_size)
        model = _load_model(args, clean.num_classes)
        if args.corrupted_data:
            corrupted = load_corrupted_benchmark(
                args.corrupted_data, corruptions=None if args.corruptions == "benchmark" else corruptions,
                severities=severities, image_size=args.image_size, subset=args.subset, seed=args.seed)
        else:
            corrupted = build_corrupted_set(
                clean, corruptions=corruptions, severities=severities, table=table, seed=args.seed,
                subset=args.subset, cache_dir=args.cache_dir, backend=args.backend,
                progress=not args.no_progress)
        report = evaluate(model, clean, corrupted, normalization=normalization, batch_size=args.batch_size,
                          device=args.device)
    except ValueError as err:
        raise UserError(str(err)) from err
    print(report.to_table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_flat_dict(), indent=2))
    return 0
