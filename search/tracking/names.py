"""Turning our keys and values into what MLflow accepts.

MLflow metric and parameter names may hold letters, digits, ``_ - . / :`` and spaces, at most 250
characters, and must not look like a path that normalises to something else (``a//b``, ``../x``).
Our report keys (``error/gaussian_noise/3``, ``ce/fog``) are already valid; anything else is mapped
by replacing each bad character by ``_``, so the mapping is stable and readable. Slashes are kept on
purpose: the MLflow UI groups ``error/...`` metrics into one section per prefix.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from collections.abc import Mapping
from typing import Any

MAX_KEY_LENGTH = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
MAX_PARAM_LENGTH = 6000  # MAX_PARAM_VAL_LENGTH
MAX_TAG_LENGTH = 8000  # MAX_TAG_VAL_LENGTH
_BAD_CHARACTERS = re.compile(r"[^/\w.\- :]")


def mlflow_key(key: str) -> str:
    """A valid MLflow metric/param name for ``key`` (unchanged when it is already valid)."""
    name = _BAD_CHARACTERS.sub("_", str(key))
    name = re.sub(r"/{2,}", "/", name).strip("/")  # no empty path parts
    parts = [("_" if part in (".", "..") else part) for part in name.split("/")]
    name = "/".join(parts) or "_"
    name = name[:MAX_KEY_LENGTH]
    if posixpath.normpath(name) != name:  # e.g. a trailing "/" left by the cut
        name = name.rstrip("/") or "_"
    return name


def param_value(value: Any) -> str:
    """A parameter value as MLflow stores it: a string, lists as JSON, cut to the length limit."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple | dict):
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    return text[:MAX_PARAM_LENGTH]


def tag_value(value: Any) -> str:
    """A tag value cut to MLflow's limit (a failure reason can be a long traceback: keep its end)."""
    text = str(value)
    return text if len(text) <= MAX_TAG_LENGTH else "..." + text[-(MAX_TAG_LENGTH - 3) :]


def finite_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    """The numeric, finite entries of ``values`` under valid MLflow names (booleans and text dropped)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(float(value)):
            out[mlflow_key(key)] = float(value)
    return out


def flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one flat dict with dotted keys (``{"train": {"lr": 1}} -> {"train.lr": 1}``)."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat
