"""How Optuna samples a space: the define-by-run function and the sampler of the space's choice.

:class:`SpaceSampler` is the define-by-run ``space`` of Ray's ``OptunaSearch``: it asks the Optuna
trial for every searched parameter in file order, skips a conditional parameter when its condition
does not hold (a TAP setting when TAP is off, a mixer for a model without one), and returns the
flat trial spec dict of what applies.
It is a plain class (not a closure) because ``OptunaSearch.save`` pickles it with the standard
``pickle`` into the experiment state that a resumed search restores.

Optuna's categorical choices must be None, bool, int, float or str; list-valued choices (a TAP
dilation set, a list of blocks) are offered to Optuna as JSON strings and decoded back.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import optuna

from search.space import schema
from search.space.loader import Param, SearchSpace, applies

_PRIMITIVE = (type(None), bool, int, float, str)


def encode_choice(value: Any) -> Any:
    """The Optuna-safe form of a choice: primitives as they are, sequences as JSON text."""
    return value if isinstance(value, _PRIMITIVE) else json.dumps(list(value))


class SpaceSampler:
    """Define-by-run space: ``sampler(optuna_trial) -> flat trial spec dict``.

    Args:
        params: the searched parameters (``SearchSpace.params``).
        constants: every other value of a trial (fixed values, ``num_classes``...).
        model_fields: ``SearchSpace.model_fields``: which model-dependent keys apply to each model.
    """

    def __init__(self, params: tuple[Param, ...], constants: dict[str, Any],
                 model_fields: dict[str, frozenset[str]] | None = None) -> None:
        self.params = params
        self.constants = dict(constants)
        self.model_fields = dict(model_fields or {})

    @classmethod
    def for_space(cls, space: SearchSpace, **extra: Any) -> SpaceSampler:
        return cls(space.params, {**space.fixed_values(), **extra}, space.model_fields)

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        model_fields = getattr(self, "model_fields", {})  # {} in a sampler pickled before it existed
        values: dict[str, Any] = dict(self.constants)
        for p in self.params:
            if not applies(p.name, values, model_fields):
                values.pop(p.name, None)
                continue  # not asked: Optuna sees a dynamic (conditional) space
            values[p.name] = self.suggest(trial, p)
        # A value that does not apply (a TAP setting with TAP off, a mixer for a ResNet) is left out.
        return {k: v for k, v in values.items() if applies(k, values, model_fields)}

    @staticmethod
    def suggest(trial: optuna.Trial, p: Param) -> Any:
        if p.kind == "choice":
            encoded = [encode_choice(c) for c in p.choices]
            picked = trial.suggest_categorical(p.name, encoded)
            return p.choices[encoded.index(picked)]
        if p.kind == "int":
            return trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        return trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)


def make_sampler(search: dict[str, Any]) -> optuna.samplers.BaseSampler:
    """The Optuna sampler named by ``search.sampler``, seeded with ``search.seed``.

    TPE is multivariate with ``group=True``, the variant that models conditional spaces (each
    group of parameters that appear together gets its own joint density).
    """
    seed = search.seed
    name = search.sampler
    startup = {} if search.n_startup_trials is None else {"n_startup_trials": search.n_startup_trials}
    population = {} if search.population_size is None else {"population_size": search.population_size}
    with warnings.catch_warnings():  # group=True and NSGA-III are marked experimental by Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, **startup)
        if name == "nsga3":
            return optuna.samplers.NSGAIIISampler(seed=seed, **population)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, **population)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False, **startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"search.sampler must be one of {schema.SAMPLERS}, got {name!r}")
