"""A search space file, loaded and validated: :func:`load_space` -> :class:`SearchSpace`.

Every value is checked against :mod:`search.space.schema` before anything starts. An error is one
:class:`search.errors.UserError` naming the file, the field path, the value given and what is valid
(with a did-you-mean for names), which the CLI turns into exit code 2. The loaded space knows its
searched parameters (:class:`Param`, in file order so that a condition's parent comes first), its
fixed values, its objectives, and its size.
"""

from __future__ import annotations

import os
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.errors import UserError
from search.space import schema
from search.space.schema import Field, Invalid
from search.space.yaml_load import load_yaml

# Flat trial spec key of a field, where it differs from the field's own name.
FLAT_NAMES = {("model", "name"): "model_name"}
# Flat keys that apply only to the models that take them (see SearchSpace.applies).
MODEL_DEPENDENT = frozenset({*(k for k in schema.MODEL if k != "name"), "img_size", *schema.ATTENTION_FIELDS})


@dataclass(frozen=True)
class Param:
    """One searched parameter: ``choice`` over values, or an ``int`` / ``float`` range."""

    name: str  # flat trial spec key, e.g. "mixer"
    path: str  # field path in the file, e.g. "model.mixer"
    kind: str  # "choice" | "int" | "float"
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    when: str | None = None  # a key of schema.CONDITIONS: sampled only when it holds

    def size(self) -> int | None:
        """Number of values, or None when continuous."""
        if self.kind == "choice":
            return len(self.choices)
        if self.kind == "int":
            return int((self.high - self.low) // (self.step or 1)) + 1
        if self.step:
            return int(round((self.high - self.low) / self.step)) + 1
        return None

    def values(self) -> list[Any] | None:
        """Every value when discrete (None when continuous)."""
        if self.kind == "choice":
            return list(self.choices)
        n = self.size()
        if n is None or n > 100_000:
            return None
        step = self.step or 1
        vals = [self.low + i * step for i in range(n)]
        return [int(v) for v in vals] if self.kind == "int" else vals

    def describe(self) -> str:
        """``choice ['mlp', 'fan']``, ``int [2, 6] step 2``, ``float [1e-4, 1e-2] log``."""
        if self.kind == "choice":
            text = f"choice {[_plain(c) for c in self.choices]}"
        else:
            text = f"{self.kind} [{self.low:g}, {self.high:g}]"
            if self.step:
                text += f" step {self.step:g}"
            if self.log:
                text += " log"
        if self.when:
            parent, _ = schema.CONDITIONS[self.when]
            text += f"  (only when {parent} {'> 0' if self.when == 'adl_on' else 'is true'})"
        return text


def applies(key: str, values: dict[str, Any], model_fields: dict[str, frozenset[str]]) -> bool:
    """See :meth:`SearchSpace.applies` (a function too: the sampler is pickled without the space)."""
    name = values.get("model_name")
    if name in model_fields and key in MODEL_DEPENDENT and key not in model_fields[name]:
        return False
    spec = _field_of(key)
    if spec is None or not spec.when:
        return True
    parent, holds = schema.CONDITIONS[spec.when]
    return parent in values and holds(values[parent]) and applies(parent, values, model_fields)


def _field_of(key: str) -> Field | None:
    """The schema field of a flat key (``model_name`` is ``model.name``)."""
    if key == "model_name":
        return schema.MODEL["name"]
    for section in schema.SEARCHABLE_SECTIONS:
        if key in schema.SECTIONS[section]:
            return schema.SECTIONS[section][key]
    return None


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space file.

    Attributes:
        name: the run name (``name`` or the file's stem); the run folder is ``<storage>/<name>``.
        source: the file it was loaded from; ``text``: its content (copied into the run folder).
        sections: the typed sections by name (``space.data``, ``space.model``, ... for each), defaults
            filled in; searched fields hold a :class:`Param`, a model field left unset
            ``schema.MODEL_DEFAULT``; ``search.scheduler`` is None or a ``SchedulerSection``.
        params: the searched parameters, in file order.
        objectives: ``(metric, "max" | "min")`` pairs.
        model_fields: per model name, the model-dependent keys that apply to it (see :meth:`applies`).
    """

    name: str
    source: str
    text: str
    description: str
    sections: dict[str, Any]
    params: tuple[Param, ...]
    objectives: tuple[tuple[str, str], ...]
    _fixed: dict[str, Any] = field(default_factory=dict, repr=False)
    # For each model the space can build: the flat keys set by the space that depend on the model and
    # apply to it (model fields it takes, img_size when it has one, ADL when it gives attention maps).
    model_fields: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    # ---- sections (typed, frozen: see search.space.schema) --------------------------------------
    @property
    def data(self) -> schema.DataSection:
        return self.sections["data"]

    @property
    def model(self) -> schema.ModelSection:
        return self.sections["model"]

    @property
    def train(self) -> schema.TrainSection:
        return self.sections["train"]

    @property
    def eval(self) -> schema.EvalSection:
        return self.sections["eval"]

    @property
    def search(self) -> schema.SearchSection:
        return self.sections["search"]

    @property
    def resources(self) -> schema.ResourcesSection:
        return self.sections["resources"]

    @property
    def storage(self) -> schema.StorageSection:
        return self.sections["storage"]

    @property
    def metrics(self) -> list[str]:
        return [m for m, _ in self.objectives]

    @property
    def directions(self) -> list[str]:
        return [d for _, d in self.objectives]

    @property
    def corruption_table(self) -> str:
        """The eval table, or the one that fits the data set (CIFAR-sized images use 'cifar10')."""
        from evaluation.corruptions import auto_table, table_name

        if self.eval.table:
            return table_name(self.eval.table)  # the former name 'imagenet' is imagecorruptions'
        return auto_table(self.data.image_size) if self.data.dataset == "imagefolder" else "cifar10"

    # ---- where the results go -----------------------------------------------------------------------
    @property
    def storage_is_uri(self) -> bool:
        return "://" in self.storage.path

    @property
    def experiment_path(self) -> str:
        """Ray Tune's experiment folder: ``<storage.path>/<name>`` (a local path or a URI)."""
        base = self.storage.path
        if self.storage_is_uri:
            return base.rstrip("/") + "/" + self.name
        return str(Path(base).expanduser().resolve() / self.name)

    @property
    def run_folder(self) -> Path:
        """The local run folder (records, Optuna and MLflow databases, the space copy).

        It is Ray's experiment folder when storage is local (or NFS); with a URI storage it is
        ``<storage.local>/<name>`` on the driver.
        """
        if self.storage_is_uri:
            return Path(self.storage.local).expanduser().resolve() / self.name
        return Path(self.experiment_path)

    # ---- values ---------------------------------------------------------------------------------
    def fixed_values(self) -> dict[str, Any]:
        """The flat trial spec values that are not searched (num_classes is added by the runner)."""
        return dict(self._fixed)

    def applies(self, key: str, values: dict[str, Any]) -> bool:
        """Whether the flat key ``key`` is part of a trial whose other values are ``values``.

        A model-dependent key applies only to a model that takes it; a conditional field (TAP's
        settings, ADL's threshold) only when its condition holds for a value that applies itself.
        """
        return applies(key, values, self.model_fields)

    def size(self) -> int | None:
        """Number of distinct trial specs, or None when a float range makes it continuous."""
        parents = {"model_name", *(schema.CONDITIONS[c][0] for c in schema.CONDITIONS)}

        def count(i: int, values: dict[str, Any]) -> int | None:
            # Branch only on the values that decide what else applies; multiply the rest.
            if i == len(self.params):
                return 1
            p = self.params[i]
            if not self.applies(p.name, values):
                return count(i + 1, values)
            if p.name in parents:
                options = p.values()
                if options is None:
                    return None
                total = 0
                for value in options:
                    n = count(i + 1, {**values, p.name: value})
                    if n is None:
                        return None
                    total += n
                return total
            n, rest = p.size(), count(i + 1, values)
            return None if n is None or rest is None else n * rest

        return count(0, dict(self._fixed))

    def size_text(self) -> str:
        n = self.size()
        return "continuous" if n is None else f"{n} combinations"

    def resolved(self) -> dict[str, Any]:
        """The resolved space as plain data (for ``search show`` and MLflow params)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        for section, values in self.sections.items():
            out[section] = {k: (v.describe() if isinstance(v, Param) else _plain(v)) for k, v in
                            schema.section_items(values) if v is not schema.MODEL_DEFAULT}
        out["objectives"] = [{"metric": m, "direction": d} for m, d in self.objectives]
        return out


def _plain(value: Any) -> Any:
    """Tuples to lists and sections to dicts, recursively (for YAML/JSON output)."""
    if isinstance(value, schema.SchedulerSection):
        return {k: _plain(v) for k, v in schema.section_items(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ---- loading --------------------------------------------------------------------------------------
def load_space(path: str | os.PathLike) -> SearchSpace:
    """Read and validate a search space file; raise UserError naming what is wrong."""
    path = Path(path)
    label = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{label}: file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as err:
        raise UserError(f"{label}: cannot read the file ({err.__class__.__name__}: {err})") from None
    document = load_yaml(text, label)  # strict: duplicate keys, self-referencing anchors, alias bombs, empty
    return parse_space(document, source=label, text=text, default_name=path.stem)


def parse_space(document: Any, *, source: str, text: str = "", default_name: str = "space") -> SearchSpace:
    """Validate an already parsed YAML document (see :func:`load_space`)."""
    return _Parser(source).parse(document, text, default_name)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    # ---- errors -------------------------------------------------------------------------------
    def fail(self, path: str, value: Any, expected: str, hint: str | None = None) -> UserError:
        message = f"{self.source}: {path}: given {_show(value)}; expected {expected}"
        return UserError(message + (f"; {hint}" if hint else ""))

    def check_keys(self, mapping: Mapping, valid: Iterable[str], path: str) -> None:
        valid = list(valid)
        for key in mapping:
            if key not in valid:
                hint = schema.did_you_mean(key, valid)
                where = f"{path}.{key}" if path else str(key)
                raise UserError(
                    f"{self.source}: {where}: unknown key; valid keys: {', '.join(valid)}" + (f"; {hint}" if hint else "")
                )

    def mapping(self, value: Any, path: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, value, "a mapping of keys to values")
        return value

    # ---- the document ---------------------------------------------------------------------------
    def parse(self, document: Any, text: str, default_name: str) -> SearchSpace:
        if document is None:
            document = {}
        if not isinstance(document, dict):
            raise UserError(f"{self.source}: the file must be a mapping of sections ({', '.join(schema.TOP_LEVEL)}), "
                            f"given {_show(document)}")
        self.check_keys(document, schema.TOP_LEVEL, "")
        name = self.value("name", document.get("name", default_name), Field(schema.run_name))
        description = document.get("description") or ""
        if not isinstance(description, str):
            raise self.fail("description", description, "a string")

        raw_storage = document.get("storage")
        if isinstance(raw_storage, str):
            raw_storage = {"path": raw_storage}
        elif raw_storage is not None and not isinstance(raw_storage, dict):
            raise self.fail("storage", raw_storage, "a folder or URI, or {path: FOLDER_OR_URI, local: FOLDER}")
        sections: dict[str, dict[str, Any]] = {}
        params: list[Param] = []
        for section, fields in schema.SECTIONS.items():
            raw = raw_storage if section == "storage" else document.get(section)
            raw = self.mapping(raw, section)
            self.check_keys(raw, fields, section)
            values: dict[str, Any] = {}
            for key, spec in fields.items():
                path = f"{section}.{key}"
                if section == "search" and key == "scheduler":
                    values[key] = self.scheduler(raw.get(key), path)
                elif key in raw and isinstance(raw[key], dict) and spec.searchable:
                    param = self.param(raw[key], path, spec, FLAT_NAMES.get((section, key), key))
                    values[key] = param
                    params.append(param)
                elif key in raw and isinstance(raw[key], dict) and section in schema.SEARCHABLE_SECTIONS:
                    raise self.fail(path, raw[key], f"a fixed value ({key} is not searchable)")
                elif key in raw:
                    values[key] = self.value(path, raw[key], spec)
                elif spec.default is schema.MODEL_DEFAULT or (
                        spec.when and values.get(schema.CONDITIONS[spec.when][0]) is schema.MODEL_DEFAULT):
                    values[key] = schema.MODEL_DEFAULT  # unset: the model keeps its own default
                else:
                    # Defaults go through the same check: keywords expand ('benchmark' -> names).
                    values[key] = self.value(path, spec.default, spec)
            sections[section] = values
        if sections["data"]["dataset"] in schema.DATASETS_NEEDING_PATH and not sections["data"]["path"]:
            raise self.fail("data.path", None, f"the data set's root folder (required when data.dataset is "
                            f"{sections['data']['dataset']!r})")
        objectives = self.objectives(document.get("objectives"), sections)
        sched = sections["search"]["scheduler"]
        if sched and sched["type"] == "asha" and objectives[0][0] not in schema.EPOCH_METRICS:
            raise self.fail("objectives[0].metric", objectives[0][0],
                            "a metric reported every epoch with search.scheduler.type 'asha' (it ranks trials on "
                            f"the first objective): one of {', '.join(schema.EPOCH_METRICS)}, or type 'mo_asha' "
                            "(every objective judged at the rungs)")
        self.cross_checks(sections, document)
        fixed = self.fixed(sections, name)
        model_fields = self.model_fields(sections)
        if sections["search"]["scheduler"] is not None:
            sections["search"]["scheduler"] = schema.SchedulerSection(**sections["search"]["scheduler"])
        typed = {name: schema.SECTION_TYPES[name](**values) for name, values in sections.items()}
        return SearchSpace(
            name=name, source=self.source, text=text, description=description, sections=typed,
            params=tuple(params), objectives=objectives, _fixed=fixed, model_fields=model_fields,
        )

    # ---- which fields each model takes ------------------------------------------------------------
    def model_fields(self, sections: dict) -> dict[str, frozenset[str]]:
        """Per model name of the space: the model-dependent keys that apply to it.

        A field set for a fixed model that cannot take it, or for a searched model none of whose
        choices can, is an error naming the field and the model(s); ADL likewise needs a model that
        returns attention maps.
        """
        from search.space import models

        model, train = sections["model"], sections["train"]
        names = _values(model["name"])
        set_fields = {k: v for k, v in model.items() if k != "name" and v is not schema.MODEL_DEFAULT}
        applies_to: dict[str, set[str]] = {n: set() for n in names}
        for name in names:
            applies_to[name].update(k for k in set_fields if models.takes(name, models.kwarg_of(k)))
            if models.takes(name, "img_size"):
                applies_to[name].add("img_size")
            if models.exposes_attention(name):
                applies_to[name].update(schema.ATTENTION_FIELDS)
        which = f"model.name {names[0]!r}" if len(names) == 1 else f"any model of model.name {names}"
        for key, value in set_fields.items():
            if not any(key in applies_to[n] for n in names):
                raise self.fail(f"model.{key}", _raw(value), f"no model.{key} for {which}: it takes no "
                                f"{models.kwarg_of(key)!r} keyword (the zoo's models take every model field)")
        adl = any(w > 0 for w in (_values(train["adl_weight"]) or [1.0]))
        if adl and not any("adl_weight" in applies_to[n] for n in names):
            raise self.fail("train.adl_weight", _raw(train["adl_weight"]),
                            f"0 for {which}: ADL needs a model that returns its attention maps "
                            "(forward_with_attention), as the zoo's models do")
        return {n: frozenset(keys) for n, keys in applies_to.items()}

    def value(self, path: str, value: Any, spec: Field) -> Any:
        try:
            return spec.check(value)
        except Invalid as err:
            raise self.fail(path, value, err.expected, err.hint) from None

    def param(self, raw: dict, path: str, spec: Field, name: str) -> Param:
        kinds = [k for k in schema.SPEC_KINDS if k in raw]
        if len(kinds) != 1:
            unknown = [k for k in raw if k not in schema.SPEC_KINDS and k not in ("step", "log")]
            hint = schema.did_you_mean(unknown[0], schema.SPEC_KINDS) if unknown else None
            raise self.fail(path, raw, "a value, or exactly one of {choice: [...]}, {int: [low, high]}, "
                            "{float: [low, high]}", hint)
        kind = kinds[0]
        self.check_keys(raw, (kind, *schema.SPEC_OPTIONS[kind]), path)
        field_kind = getattr(spec.check, "kind", None)
        if kind == "choice":
            options = raw["choice"]
            if not isinstance(options, list) or not options:
                raise self.fail(f"{path}.choice", options, "a non-empty list of values")
            checked = [self.value(f"{path}.choice[{i}]", v, spec) for i, v in enumerate(options)]
            if len({repr(c) for c in checked}) != len(checked):
                raise self.fail(f"{path}.choice", options, "distinct values")
            return Param(name, path, "choice", tuple(checked), when=spec.when)
        if field_kind not in ("int", "float") or (kind == "int" and field_kind == "float"):
            valid = "{choice: [...]}" if field_kind not in ("int", "float") else "{float: [low, high]} or {choice: [...]}"
            raise self.fail(path, raw, f"{valid} ({path} is not {'an integer' if kind == 'int' else 'a number'})")
        bounds = raw[kind]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise self.fail(f"{path}.{kind}", bounds, "[low, high]")
        low, high = (self.value(f"{path}.{kind}", b, spec) for b in bounds)
        if kind == "float":
            low, high = float(low), float(high)
        if not low < high:
            raise self.fail(f"{path}.{kind}", bounds, "[low, high] with low < high")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise self.fail(f"{path}.log", log, "true or false")
        if log and low <= 0:
            raise self.fail(f"{path}.{kind}", bounds, "low > 0 with log: true")
        step = raw.get("step")
        if step is not None:
            ok = (isinstance(step, int) and not isinstance(step, bool) and step >= 1) if kind == "int" else (
                isinstance(step, int | float) and not isinstance(step, bool) and 0 < step < float("inf"))
            if not ok:
                raise self.fail(f"{path}.step", step, "an integer >= 1" if kind == "int" else "a finite number > 0")
            if log and step not in (None, 1):
                raise self.fail(f"{path}.step", step, "no step with log: true (Optuna samples log ranges without steps)")
        return Param(name, path, kind, low=low, high=high, step=step, log=log, when=spec.when)

    def scheduler(self, raw: Any, path: str) -> dict | None:
        if raw is None:
            return None
        raw = self.mapping(raw, path)
        self.check_keys(raw, schema.SCHEDULER, path)
        return {k: (self.value(f"{path}.{k}", raw[k], f) if k in raw else f.default) for k, f in schema.SCHEDULER.items()}

    def objectives(self, raw: Any, sections: dict) -> tuple[tuple[str, str], ...]:
        if raw is None:
            return schema.DEFAULT_OBJECTIVES
        if not isinstance(raw, list) or not raw:
            raise self.fail("objectives", raw, "a non-empty list of {metric: NAME, direction: max|min}")
        valid = objective_metrics(sections["eval"]["corruptions"], sections["eval"]["severities"])
        out: list[tuple[str, str]] = []
        for i, item in enumerate(raw):
            path = f"objectives[{i}]"
            item = self.mapping(item, path)
            self.check_keys(item, ("metric", "direction"), path)
            metric, direction = item.get("metric"), item.get("direction")
            if metric not in valid:
                shown = [*schema.REPORT_METRICS, *schema.TRAINING_METRICS, "ce/<corruption>", "error/<corruption>/<severity>"]
                raise self.fail(f"{path}.metric", metric, "a metric of the report: " + ", ".join(shown),
                                schema.did_you_mean(metric, valid))
            if direction not in schema.DIRECTIONS:
                raise self.fail(f"{path}.direction", direction, "'max' or 'min'",
                                schema.did_you_mean(direction, schema.DIRECTIONS))
            if metric in [m for m, _ in out]:
                raise self.fail(f"{path}.metric", metric, "each metric at most once")
            out.append((metric, direction))
        return tuple(out)

    # ---- constraints between fields ---------------------------------------------------------------
    def cross_checks(self, sections: dict, document: dict) -> None:
        model, data, train = sections["model"], sections["data"], sections["train"]
        dims, heads = _effective(model, "embed_dim"), _effective(model, "num_heads")
        if dims and heads:
            for d in dims:
                for h in heads:
                    if d % h:
                        raise self.fail("model.num_heads", _raw(model["num_heads"]),
                                        f"head counts that divide every model.embed_dim ({d} % {h} != 0)")
        patches = _effective(model, "patch_size")
        for p in patches or ():
            if data["image_size"] % p:
                raise self.fail("model.patch_size", _raw(model["patch_size"]),
                                f"patch sizes that divide data.image_size ({data['image_size']} % {p} != 0)")
        depths = _effective(model, "depth")
        blocks = _values(model["tap_blocks"]) or ()
        if depths:
            for b in blocks:
                if isinstance(b, tuple) and max(b) >= min(depths):
                    raise self.fail("model.tap_blocks", _raw(model["tap_blocks"]),
                                    f"block indices < model.depth (smallest depth {min(depths)})")
        taps = _values(model["tap"])
        raw_model = document.get("model") or {}
        if taps in ([False], [schema.MODEL_DEFAULT]):
            for key in ("tap_dilations", "tap_blocks"):
                if key in raw_model:
                    state = "is false" if taps == [False] else "is not set"
                    raise self.fail(f"model.{key}", raw_model[key], f"no {key} while model.tap {state} "
                                    "(set model.tap: true or {choice: [false, true]})")
        warmups = _values(train["warmup_epochs"]) or ()
        if any(w >= train["epochs"] for w in warmups) and train["epochs"] > 1:
            raise self.fail("train.warmup_epochs", _raw(train["warmup_epochs"]), f"fewer than train.epochs ({train['epochs']})")
        sched = sections["search"]["scheduler"]
        if sched and sched["grace_period"] >= train["epochs"]:
            raise self.fail("search.scheduler.grace_period", sched["grace_period"],
                            f"an integer < train.epochs ({train['epochs']}): a trial can be stopped only "
                            "before its last epoch")
        if sched and sched["brackets"] is not None:
            from search.trial.rungs import rung_epochs

            rungs = rung_epochs(sched["grace_period"], sched["reduction_factor"], train["epochs"])
            if sched["brackets"] > len(rungs) + 1:
                raise self.fail("search.scheduler.brackets", sched["brackets"],
                                f"null or an integer <= {len(rungs) + 1} (one bracket per rung {list(rungs)} "
                                "plus the full-budget one)")
        # Values that every trial would fail on (issue 13): a mixer list is one mixer per block, the
        # convnext stem's two stride-2 stages need a patch divisible by 4; digits take no path.
        mixers = [m for m in _values(model["mixer"]) or () if isinstance(m, tuple)]
        for d in [d for d in depths or () if isinstance(d, int)]:
            for m in mixers:
                if len(m) != d:
                    raise self.fail("model.mixer", _raw(model["mixer"]), f"one mixer name, or one per block: "
                                    f"{d} for model.depth {d} (given {len(m)})")
        if "convnext" in (_values(model["stem"]) or ()):
            for p in [p for p in patches or () if isinstance(p, int)]:
                if p % 4:
                    raise self.fail("model.patch_size", _raw(model["patch_size"]), "patch sizes divisible by 4 "
                                    f"with model.stem 'convnext' (its two stride-2 stages; {p} % 4 != 0)")
        if data["dataset"] == "digits" and data["path"]:
            raise self.fail("data.path", data["path"], "null for data.dataset 'digits' (the digits ship with "
                            "scikit-learn; the path would be ignored)")
        res = sections["resources"]
        if res["num_cpus"] is not None and res["num_cpus"] < res["cpus_per_trial"]:
            raise self.fail("resources.num_cpus", res["num_cpus"], f"at least resources.cpus_per_trial ({res['cpus_per_trial']:g})")
        if sections["eval"]["benchmark_path"] and data["test_subset"] is not None:
            raise self.fail("data.test_subset", data["test_subset"],
                            "null with eval.benchmark_path (the benchmark's images pair with the whole test split; "
                            "use eval.subset to judge on fewer)")
        if data["test_subset"] is not None and sections["eval"]["subset"] is not None and \
                sections["eval"]["subset"] > data["test_subset"]:
            raise self.fail("eval.subset", sections["eval"]["subset"], f"at most data.test_subset ({data['test_subset']})")

    def fixed(self, sections: dict, name: str) -> dict[str, Any]:
        fixed: dict[str, Any] = {}
        for section in schema.SEARCHABLE_SECTIONS:
            for key, value in sections[section].items():
                if not isinstance(value, Param) and value is not schema.MODEL_DEFAULT:
                    fixed[FLAT_NAMES.get((section, key), key)] = value
        fixed["img_size"] = sections["data"]["image_size"]
        fixed["seed"] = sections["search"]["seed"]
        return fixed


def objective_metrics(corruptions: Iterable[str], severities: Iterable[int]) -> list[str]:
    """Every metric a trial reports, hence every valid objective."""
    corruptions, severities = list(corruptions), list(severities)
    return [
        *schema.REPORT_METRICS,
        *schema.TRAINING_METRICS,
        *(f"ce/{c}" for c in corruptions),
        *(f"error/{c}/{s}" for c in corruptions for s in severities),
    ]


def _effective(model: dict[str, Any], key: str) -> list[Any] | None:
    """Every value a model field takes over the space's models: the values set (when set), else the
    zoo models' own defaults (other models' defaults are theirs to check); None when continuous."""
    if model[key] is not schema.MODEL_DEFAULT:
        return _values(model[key])
    from search.space import models

    names = [n for n in _values(model["name"]) if models.is_zoo(n)]
    return sorted({models.zoo_defaults(n)[key] for n in names})


def _values(value: Any) -> list[Any] | None:
    """Every value a field can take (a fixed value is one), None when continuous."""
    return value.values() if isinstance(value, Param) else [value]


def _raw(value: Any) -> Any:
    """A field's value as the user wrote it, for messages."""
    if isinstance(value, Param):
        if value.kind == "choice":
            return {"choice": _plain(list(value.choices))}
        return {value.kind: [value.low, value.high]}
    return _plain(value)


class _ShortRepr(reprlib.Repr):
    """``repr`` that stops early in a big value (never builds all of it) and shows tuples as lists."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxdict, self.maxstring, self.maxother = 4, 12, 12, 80, 80

    def repr_tuple(self, x: tuple, level: int) -> str:
        return self.repr_list(list(x[: self.maxlist + 1]), level)

    def repr_dict(self, x: dict, level: int) -> str:  # in the file's order (reprlib sorts the keys)
        if not x or level <= 0:
            return "{...}" if x else "{}"
        items = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}" for k, v in list(x.items())[: self.maxdict]]
        return "{" + ", ".join(items + ["..."] * (len(x) > self.maxdict)) + "}"


_SHORT = _ShortRepr()


def _show(value: Any) -> str:
    text = _SHORT.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
