"""The schema of a search space file: every section, every field, its type, default and valid values.

This module is data plus small value checkers; :mod:`search.space.loader` walks a YAML document against it.
A checker takes a raw YAML value and returns the normalised value or raises :class:`Invalid` with a
phrase saying what is valid (the loader adds the file, the field path and the given value).

Names that belong to other packages (mixers, stems, models, optimisers, corruptions) are read from
those packages' own registries, lazily, so that the lists are never written twice.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from search.space.registry_cache import registry


class Invalid(Exception):
    """A value failed its check; ``expected`` says what is valid, ``hint`` is an optional did-you-mean."""

    def __init__(self, expected: str, hint: str | None = None) -> None:
        super().__init__(expected)
        self.expected = expected
        self.hint = hint


def did_you_mean(given: Any, valid: Sequence[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest valid name, or None when nothing is close."""
    if not isinstance(given, str):
        return None
    close = difflib.get_close_matches(given, list(valid), n=1, cutoff=0.6)
    if not close:  # 'minimize' -> 'min': a prefix is a good guess too
        close = [v for v in valid if given.lower().startswith(v.lower()) or v.lower().startswith(given.lower())]
    return f"did you mean {close[0]!r}?" if close else None


# ---- value checkers -------------------------------------------------------------------------------
Checker = Callable[[Any], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bounds_phrase(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi}")
    return " and ".join(parts)


def integer(lo: int | None = None, hi: int | None = None) -> Checker:
    """An int within [lo, hi] (bool is not an int here)."""
    phrase = "an integer" + (f" {_bounds_phrase(lo, hi, False, False)}" if lo is not None or hi is not None else "")

    def check(value: Any) -> int:
        if not _is_int(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
            raise Invalid(phrase)
        return int(value)

    check.kind = "int"  # type: ignore[attr-defined]
    check.phrase = phrase  # type: ignore[attr-defined]
    return check


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False) -> Checker:
    """A finite float (ints accepted) within the bounds (YAML's ``.nan`` and ``.inf`` are refused)."""
    bounds = _bounds_phrase(lo, hi, lo_open, hi_open)
    phrase = "a number" + (f" {bounds}" if bounds else "")

    def check(value: Any) -> float:
        if not _is_number(value):
            raise Invalid(phrase)
        v = float(value)
        if not math.isfinite(v):
            raise Invalid(f"a finite number{f' {bounds}' if bounds else ''} (not .nan or .inf)")
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise Invalid(phrase)
        if hi is not None and (v > hi or (hi_open and v == hi)):
            raise Invalid(phrase)
        return v

    check.kind = "float"  # type: ignore[attr-defined]
    check.phrase = phrase  # type: ignore[attr-defined]
    return check


def boolean(value: Any) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise Invalid("true or false")
    return value


boolean.kind = "bool"  # type: ignore[attr-defined]


def one_of(choices: Sequence[str] | Callable[[], Sequence[str]], label: str | None = None) -> Checker:
    """A string among ``choices`` (a list, or a function returning it, read when first needed).

    ``label`` describes a long list (timm's models) instead of spelling out every name.
    """

    def check(value: Any) -> str:
        valid = list(choices() if callable(choices) else choices)
        if not isinstance(value, str) or value not in valid:
            phrase = label or "one of " + ", ".join(repr(c) for c in valid)
            raise Invalid(phrase, did_you_mean(value, valid))
        return value

    check.kind = "str"  # type: ignore[attr-defined]
    return check


def optional(inner: Checker) -> Checker:
    """``null`` or a value that ``inner`` accepts."""

    def check(value: Any) -> Any:
        if value is None:
            return None
        try:
            return inner(value)
        except Invalid as err:
            raise Invalid(f"null or {err.expected}", err.hint) from None

    check.kind = getattr(inner, "kind", None)  # type: ignore[attr-defined]
    return check


def int_list(lo: int, hi: int | None = None, *, min_len: int = 1) -> Checker:
    """A list of distinct ints within [lo, hi], at least ``min_len`` long; returned sorted, as a tuple."""
    phrase = f"a list of at least {min_len} distinct integers {_bounds_phrase(lo, hi, False, False)}"

    def check(value: Any) -> tuple[int, ...]:
        if not isinstance(value, list | tuple) or len(value) < min_len:
            raise Invalid(phrase)
        if not all(_is_int(v) and v >= lo and (hi is None or v <= hi) for v in value) or len(set(value)) != len(value):
            raise Invalid(phrase)
        return tuple(sorted(int(v) for v in value))

    check.kind = "list"  # type: ignore[attr-defined]
    return check


TAP_BLOCK_KEYWORDS = ("all", "first_half", "last_half")


def tap_blocks(value: Any) -> str | tuple[int, ...]:
    """Which blocks get TAP: a keyword or a list of block indices (checked against the depth later)."""
    if isinstance(value, str) and value in TAP_BLOCK_KEYWORDS:
        return value
    try:
        return int_list(0)(value)
    except Invalid:
        raise Invalid(
            "one of " + ", ".join(repr(k) for k in TAP_BLOCK_KEYWORDS) + " or a list of distinct block indices >= 0",
            did_you_mean(value, TAP_BLOCK_KEYWORDS),
        ) from None


tap_blocks.kind = "list"  # type: ignore[attr-defined]


def mixer(value: Any) -> str | tuple[str, ...]:
    """A mixer name, or (fixed only) one mixer name per block."""
    if isinstance(value, list | tuple) and value:
        return tuple(one_of(mixer_names)(v) for v in value)
    return one_of(mixer_names)(value)


mixer.kind = "str"  # type: ignore[attr-defined]


CORRUPTION_GROUPS = ("benchmark", "extra", "all")


def corruptions(value: Any) -> tuple[str, ...]:
    """``benchmark`` (the 15 of ImageNet-C), ``extra`` (4), ``all`` (19) or a list of names."""
    names = corruption_names()
    if isinstance(value, str):
        if value in CORRUPTION_GROUPS:
            return corruption_group(value)
        raise Invalid(
            "one of " + ", ".join(repr(g) for g in CORRUPTION_GROUPS) + " or a list of corruption names",
            did_you_mean(value, [*CORRUPTION_GROUPS, *names]),
        )
    if not isinstance(value, list) or not value:
        raise Invalid("one of " + ", ".join(repr(g) for g in CORRUPTION_GROUPS) + " or a non-empty list of corruption names")
    for item in value:
        if item not in names:
            raise Invalid(
                f"corruption names among {', '.join(names)} (got {item!r})", did_you_mean(item, names)
            )
    if len(set(value)) != len(value):
        raise Invalid("a list of distinct corruption names")
    return tuple(value)


def severities(value: Any) -> tuple[int, ...]:
    """A list of distinct severities 1..5."""
    return int_list(1, 5)(value)


NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def attacks(value: Any) -> tuple[str, ...]:
    """A list of distinct adversarial attacks (``fgsm``, ``pgd``); empty: none."""
    ATTACKS = attack_names()
    if not isinstance(value, (list, tuple)) or any(v not in ATTACKS for v in value) or len(set(value)) != len(value):
        raise Invalid(f"a list of distinct attacks from {list(ATTACKS)} (empty: no adversarial accuracy)")
    return tuple(value)


def shift_sets(value: Any) -> dict[str, str]:
    """A mapping ``{name: folder}`` of distribution-shift sets (names of evaluation.data.shifts)."""
    SHIFT_SETS = shift_set_names()
    if not isinstance(value, dict) or any(k not in SHIFT_SETS or not isinstance(v, str) or not v
                                          for k, v in value.items()):
        raise Invalid(f"a mapping of shift-set names {list(SHIFT_SETS)} to folders")
    return dict(value)


def normalization(value: Any) -> str:
    """``alexnet``, ``none`` or the path of a baseline's errors (``.json`` / ``.csv``)."""
    if isinstance(value, str) and (value in NORMALIZATIONS or value.lower().endswith((".json", ".csv"))):
        return value
    raise Invalid("'alexnet', 'none' or a baseline file (.json or .csv)", did_you_mean(value, NORMALIZATIONS))


def run_name(value: Any) -> str:
    """A folder-safe name."""
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise Invalid("a name of letters, digits, '_', '.', '-' (starting with a letter or digit)")
    return value


def is_rand_augment(value: Any) -> bool:
    """A timm RandAugment config string (``rand-m9-mstd0.5-inc1``): ``rand`` then ``-``-joined options."""
    return isinstance(value, str) and (value == "rand" or value.startswith("rand-"))


def augmentation(value: Any) -> str:
    """One of :data:`AUGMENTATIONS`, or a RandAugment string that timm accepts."""
    if is_rand_augment(value):
        refusal = rand_augment_refusal(value)
        if refusal is not None:
            raise Invalid(f"a RandAugment string timm accepts, like 'rand-m9-mstd0.5-inc1' (timm: {refusal})")
        return value
    return one_of(AUGMENTATIONS)(value)


augmentation.kind = "str"  # type: ignore[attr-defined]


def text(value: Any) -> str:
    """Any non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid("a non-empty string")
    return value


# ---- registries of the other packages (they import torch: kept on disk, see search.space.registry_cache) --
@registry
def mixer_names() -> tuple[str, ...]:
    import components

    return tuple(components.MIXERS)


@registry
def stem_names() -> tuple[str, ...]:
    import components

    return tuple(components.STEMS)


@registry
def pos_embed_names() -> tuple[str, ...]:
    import components

    return tuple(components.POS_EMBEDS)


@registry
def drop_path_schedules() -> tuple[str, ...]:
    from components.model import DROP_PATH_SCHEDULES

    return tuple(DROP_PATH_SCHEDULES)


@registry
def dataset_names() -> tuple[str, ...]:
    from evaluation.data import DATASETS

    return tuple(DATASETS)


@registry
def model_names() -> tuple[str, ...]:
    import timm

    import components  # noqa: F401  (registers the zoo with timm)

    return tuple(timm.list_models())


@registry
def optimizer_names() -> tuple[str, ...]:
    import timm.optim

    return tuple(timm.optim.list_optimizers())


@registry
def rand_augment_refusal(value: str) -> str | None:
    """What timm's RandAugment parser says against ``value`` (None: it accepts it)."""
    from timm.data.auto_augment import rand_augment_transform

    try:
        rand_augment_transform(value, {})
    except Exception as err:  # noqa: BLE001  timm's parser says what is wrong in its own words
        return str(err)
    return None


@registry
def attack_names() -> tuple[str, ...]:
    from evaluation.axes import ATTACKS

    return tuple(ATTACKS)


@registry
def shift_set_names() -> tuple[str, ...]:
    from evaluation.data.shifts import SHIFT_SETS

    return tuple(SHIFT_SETS)


@registry
def corruption_names() -> tuple[str, ...]:
    from evaluation import corruptions as corr

    return tuple(corr.ALL_CORRUPTIONS)


@registry
def corruption_group(group: str) -> tuple[str, ...]:
    from evaluation import corruptions as corr

    return tuple({"benchmark": corr.BENCHMARK_CORRUPTIONS, "extra": corr.EXTRA_CORRUPTIONS, "all": corr.ALL_CORRUPTIONS}[group])


DATASETS_NEEDING_PATH = ("cifar10", "cifar100", "imagefolder")
SAMPLERS = ("tpe", "nsga2", "nsga3", "gp", "random")
# timm's create_scheduler_v2 names, plus "none" (a constant learning rate).
SCHEDULERS = ("none", "cosine", "step", "multistep", "plateau", "poly", "tanh")
AUGMENTATIONS = ("none", "flip", "randaug_lite")  # see search.trial.augment
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # see search.trial.recipe
TABLES = ("imagenet_c", "imagecorruptions", "cifar10", "imagenet")  # imagenet: the former name of imagecorruptions
NORMALIZATIONS = ("alexnet", "none")  # or a baseline file (.json / .csv), see evaluation.metrics
DIRECTIONS = ("max", "min")
EARLY_STOPPERS = ("asha", "mo_asha", "mo_hyperband")
MULTI_OBJECTIVE_STOPPERS = ("mo_asha", "mo_hyperband")  # every objective judged at the rungs

# Metrics of a trial besides the robustness report: usable as objectives too.
TRAINING_METRICS = ("train_loss", "train_accuracy", "params_m", "train_time_s")
# Metrics reported after every epoch (an early-stopping scheduler can rank on these only).
EPOCH_METRICS = ("clean_accuracy", "train_loss", "train_accuracy")
# Scalar keys of RobustnessReport.to_flat_dict() (per-corruption keys are added from eval.corruptions).
REPORT_METRICS = (
    "clean_accuracy",
    "mce",
    "relative_mce",
    "mean_corruption_error",
    "retention",
    "corrupted_accuracy",
    "attention_stability",
    "head_diversity",
    # the other robustness axes (evaluation.axes; reported when eval.adversarial / lesion / shift_sets ask)
    "adv_accuracy/fgsm",
    "adv_accuracy/pgd",
    "lesion_accuracy/mean",
    "lesion_accuracy/worst",
    "shift_accuracy/imagenet_r",
    "shift_accuracy/imagenet_a",
    "shift_accuracy/imagenet_sketch",
    "shift_accuracy/cifar10_1",
)


# ---- the sections ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One field of a section.

    ``searchable`` fields accept ``{choice: [...]}``, ``{int: [lo, hi]}`` or ``{float: [lo, hi]}``;
    ``when`` names a condition under which the field applies (otherwise the trial does not get it).
    A model field whose default is :data:`MODEL_DEFAULT` reaches the model only when the space sets it.
    """

    check: Checker
    default: Any = None
    searchable: bool = False
    required: bool = False
    doc: str = ""
    when: str | None = None


class _ModelDefault:
    """The value of a model field that the space leaves unset: nothing is passed to the model, which
    keeps its own default (a preset its architecture, any timm model its own arguments)."""

    def __repr__(self) -> str:
        return "model default"


MODEL_DEFAULT = _ModelDefault()
# Training fields that apply only to some models: ADL needs a model that returns attention maps.
ATTENTION_FIELDS = ("adl_weight", "adl_threshold")

# Conditions of conditional parameters: the name, the field it depends on, and when it holds.
CONDITIONS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "tap_on": ("tap", lambda v: bool(v)),
    "adl_on": ("adl_weight", lambda v: float(v) > 0.0),
}

DATA: dict[str, Field] = {
    "dataset": Field(one_of(dataset_names), "digits", doc="data set name"),
    "path": Field(optional(text), None, doc="root folder of the data set (required except for digits)"),
    "image_size": Field(integer(8, 1024), 32, doc="side of the square images fed to the model"),
    "train_split": Field(text, "train", doc="split of the training images (an image folder's sub-folder)"),
    "test_split": Field(text, "test", doc="split of the test images ('val' for an ImageNet folder)"),
    "train_subset": Field(optional(integer(1)), None, doc="train on this many images (null: all)"),
    "test_subset": Field(optional(integer(1)), None, doc="judge on this many test images (null: all)"),
    "num_workers": Field(integer(0, 64), 0, doc="DataLoader worker processes per trial"),
}

MODEL: dict[str, Field] = {
    "name": Field(one_of(model_names, "a model registered with timm (timm.list_models(); the zoo: components.PRESETS)"), "robust_vit", searchable=True, doc="timm model name (the zoo is registered; any timm model is a baseline)"),
    "patch_size": Field(integer(1, 64), MODEL_DEFAULT, searchable=True),
    "embed_dim": Field(integer(8, 4096), MODEL_DEFAULT, searchable=True),
    "depth": Field(integer(1, 64), MODEL_DEFAULT, searchable=True),
    "num_heads": Field(integer(1, 64), MODEL_DEFAULT, searchable=True),
    "mlp_ratio": Field(number(0.25, 16), MODEL_DEFAULT, searchable=True),
    "mixer": Field(mixer, MODEL_DEFAULT, searchable=True, doc="channel mixer of every block (or a list, one per block)"),
    "stem": Field(one_of(stem_names), MODEL_DEFAULT, searchable=True),
    "pos_embed": Field(one_of(pos_embed_names), MODEL_DEFAULT, searchable=True, doc="position encoding"),
    "tap": Field(boolean, MODEL_DEFAULT, searchable=True, doc="token-aware average pooling on or off (TAP's fields apply when on)"),
    "tap_dilations": Field(
        int_list(1, 16), (1, 2), searchable=True, when="tap_on",
        doc="dilations of the TAP branches (K = len + 1 with the identity)",
    ),
    "tap_blocks": Field(tap_blocks, "all", searchable=True, when="tap_on", doc="blocks with TAP"),
    "drop_rate": Field(number(0.0, 1.0, hi_open=True), MODEL_DEFAULT, searchable=True),
    "drop_path_rate": Field(number(0.0, 1.0, hi_open=True), MODEL_DEFAULT, searchable=True),
    "layer_scale_init": Field(optional(number(0.0, lo_open=True)), MODEL_DEFAULT, searchable=True),
    "class_attn_layers": Field(integer(0, 8), MODEL_DEFAULT, searchable=True, doc="CaiT class-attention head layers (0: pool)"),
    "drop_path_schedule": Field(one_of(drop_path_schedules), MODEL_DEFAULT, doc="'uniform' or 'linear' over depth"),
}

TRAIN: dict[str, Field] = {
    "epochs": Field(integer(1, 10_000), 10, doc="the budget of every trial"),
    "batch_size": Field(integer(1, 65_536), 64, searchable=True),
    "optimizer": Field(one_of(optimizer_names, "an optimizer of timm.optim.list_optimizers() (adamw, sgd, lamb, ...)"), "adamw", searchable=True, doc="timm.optim.create_optimizer_v2 name"),
    "lr": Field(number(0.0, lo_open=True), 1e-3, searchable=True),
    "weight_decay": Field(number(0.0), 0.05, searchable=True),
    "momentum": Field(number(0.0, 1.0, hi_open=True), 0.9, searchable=True, doc="for SGD-like optimisers"),
    "scheduler": Field(one_of(SCHEDULERS), "cosine", searchable=True, doc="timm.scheduler.create_scheduler_v2 name"),
    "warmup_epochs": Field(integer(0, 1000), 0, searchable=True),
    "min_lr": Field(number(0.0), 1e-5, searchable=True),
    "adl_weight": Field(number(0.0), 0.0, searchable=True, doc="lambda of CE + lambda * ADL (0: no ADL)"),
    "adl_threshold": Field(number(0.0, lo_open=True), 2.0, searchable=True, when="adl_on", doc="ADL threshold"),
    "augmentation": Field(augmentation, "flip", searchable=True,
                          doc="none, flip, randaug_lite or a timm RandAugment string (rand-m9-mstd0.5-inc1)"),
    "random_erasing": Field(number(0.0, 1.0, hi_open=True), 0.0, searchable=True,
                            doc="probability of timm's RandomErasing per image (0: off)"),
    "label_smoothing": Field(number(0.0, 1.0, hi_open=True), 0.0, searchable=True),
    "grad_clip": Field(optional(number(0.0, lo_open=True)), None, doc="clip the gradient norm (null: no clipping)"),
    "precision": Field(one_of(PRECISIONS), "auto", searchable=True,
                       doc="auto (bf16 on a GPU that has it, else fp32), fp32, bf16 or fp16 (with a gradient scaler)"),
    "channels_last": Field(boolean, False, doc="channels-last memory format (faster conv stems on a GPU)"),
    "compile": Field(boolean, False, doc="torch.compile the model before training"),
    "mixup": Field(number(0.0), 0.0, searchable=True, doc="Mixup alpha (timm.data.Mixup; 0: off)"),
    "cutmix": Field(number(0.0), 0.0, searchable=True, doc="CutMix alpha (timm.data.Mixup; 0: off)"),
    "ema_decay": Field(optional(number(0.0, 1.0, lo_open=True, hi_open=True)), None,
                       doc="decay of an EMA of the weights (timm.utils.ModelEmaV3), judged with them (null: off)"),
}

EVAL: dict[str, Field] = {
    "corruptions": Field(corruptions, "benchmark", doc="'benchmark' | 'extra' | 'all' | list of names"),
    "severities": Field(severities, (1, 2, 3, 4, 5)),
    "table": Field(optional(one_of(TABLES)), None, doc="corruption parameter table (null: from the data set)"),
    "normalization": Field(normalization, "alexnet", doc="mCE normalisation: alexnet, none or a baseline file"),
    "subset": Field(optional(integer(1)), None, doc="corrupt this many test images (null: all test images)"),
    "seed": Field(integer(0), 0, doc="seed of the corruptions"),
    "batch_size": Field(integer(1), 256),
    "backend": Field(one_of(("torch", "reference")), "torch"),
    "cache_dir": Field(text, ".cache/corrupted", doc="where the corrupted test set is cached"),
    "benchmark_path": Field(optional(text), None,
                            doc="a pre-made benchmark (CIFAR-10-C .npy folder, ImageNet-C folder) instead of "
                                "corrupting the test set (null: corrupt it, cached)"),
    "adversarial": Field(attacks, (), doc="attacks judged at the end: [fgsm, pgd] (L-inf, pixel space; "
                                          "adv_accuracy/<attack>)"),
    "adv_epsilon": Field(number(0.0, 1.0, lo_open=True), 1 / 255, doc="L-inf radius in [0, 1] pixel units"),
    "adv_steps": Field(integer(1, 1000), 10, doc="PGD steps (step size 2.5 epsilon / steps, seeded random start)"),
    "adv_subset": Field(optional(integer(1)), 256, doc="test images attacked (seeded by eval.seed; null: all)"),
    "lesion": Field(boolean, False, doc="lesion robustness: accuracy with each token block skipped "
                                        "(lesion_accuracy/mean, /worst; the per-block curve logged)"),
    "shift_sets": Field(shift_sets, {}, doc="distribution-shift sets judged at the end: {imagenet_r: PATH, "
                                            "imagenet_a: PATH, imagenet_sketch: PATH, cifar10_1: PATH}"),
    "rung_subset": Field(integer(1), 10, doc="items of the corrupted set judged at the rungs of mo_asha (each at "
                                               "every corruption and severity; seeded by eval.seed)"),
}

SCHEDULER: dict[str, Field] = {
    "type": Field(one_of(EARLY_STOPPERS), "asha"),
    "grace_period": Field(integer(1), 1, doc="epochs before a trial can be stopped"),
    "reduction_factor": Field(number(1.0, lo_open=True), 3.0),
    "brackets": Field(optional(integer(1, 32)), None, doc="brackets of asynchronous Hyperband (null: 1; every "
                                                          "bracket for mo_hyperband)"),
}

SEARCH: dict[str, Field] = {
    "sampler": Field(one_of(SAMPLERS), "tpe"),
    "num_trials": Field(integer(1, 100_000), 8),
    "concurrency": Field(integer(1, 10_000), 1, doc="trials running at once"),
    "seed": Field(integer(0), 0, doc="seed of the sampler and of every trial's training"),
    "n_startup_trials": Field(optional(integer(0)), None, doc="random trials before TPE/GP model (null: Optuna's)"),
    "population_size": Field(optional(integer(2)), None, doc="NSGA-II/III population (null: Optuna's)"),
    "scheduler": Field(lambda v: v, None, doc="early stopping: null or {type: asha | mo_asha | mo_hyperband, ...}"),
    "max_failures": Field(integer(0, 100), 1, doc="retries of a trial after an infrastructure failure"),
    "resume_errored": Field(boolean, False, doc="on resume, retry trials that had errored"),
}

RESOURCES: dict[str, Field] = {
    "cpus_per_trial": Field(number(0.0, lo_open=True), 1.0),
    "gpus_per_trial": Field(number(0.0), 0.0, doc="fractions allowed (0.5: two trials per GPU)"),
    "num_cpus": Field(optional(integer(1)), None, doc="CPUs of a local Ray (null: cpus_per_trial x concurrency)"),
}

STORAGE: dict[str, Field] = {
    "path": Field(text, "runs", doc="local folder or URI (s3://, gs://) for Ray's experiment"),
    "local": Field(text, "runs", doc="local folder for records and databases when path is a URI"),
}

SECTIONS: dict[str, dict[str, Field]] = {
    "data": DATA,
    "model": MODEL,
    "train": TRAIN,
    "eval": EVAL,
    "search": SEARCH,
    "resources": RESOURCES,
    "storage": STORAGE,
}
TOP_LEVEL = ("name", "description", *SECTIONS, "objectives")


def _section_type(class_name: str, section: str, fields: dict[str, Field]) -> type:
    """A frozen dataclass with one attribute per field of ``section`` (made from the schema, so that
    the field names are written once): what a loaded space holds instead of string-keyed dicts."""
    cls = dataclasses.make_dataclass(class_name, [(k, Any) for k in fields], frozen=True)
    cls.__module__ = __name__  # picklable: a module attribute of this very name holds it
    cls.__doc__ = f"The validated ``{section}`` section of a space file (fields: search.space.schema.{section.upper()})."
    return cls


DataSection = _section_type("DataSection", "data", DATA)
ModelSection = _section_type("ModelSection", "model", MODEL)
TrainSection = _section_type("TrainSection", "train", TRAIN)
EvalSection = _section_type("EvalSection", "eval", EVAL)
SearchSection = _section_type("SearchSection", "search", SEARCH)
ResourcesSection = _section_type("ResourcesSection", "resources", RESOURCES)
StorageSection = _section_type("StorageSection", "storage", STORAGE)
SchedulerSection = _section_type("SchedulerSection", "scheduler", SCHEDULER)
SECTION_TYPES: dict[str, type] = {
    "data": DataSection, "model": ModelSection, "train": TrainSection, "eval": EvalSection,
    "search": SearchSection, "resources": ResourcesSection, "storage": StorageSection,
}


def section_items(section: Any) -> list[tuple[str, Any]]:
    """``(field, value)`` pairs of a typed section, in schema order (values as they are, not copied)."""
    return [(f.name, getattr(section, f.name)) for f in dataclasses.fields(section)]
SEARCHABLE_SECTIONS = ("model", "train")
DEFAULT_OBJECTIVES = (("clean_accuracy", "max"), ("mce", "min"))


# Keys of a search spec: exactly one kind, plus its options.
SPEC_KINDS = ("choice", "int", "float")
SPEC_OPTIONS = {"choice": (), "int": ("step", "log"), "float": ("step", "log")}
