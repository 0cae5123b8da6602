"""The registries a space file is checked against (the zoo's mixers and stems, timm's model and
optimizer names, the corruptions, which keyword a timm model takes), kept on disk between runs.

Reading them means importing torch, timm and the zoo: several seconds before ``search validate``
or ``search show`` can say anything. Their answers change only when the code that defines them
changes, so the first run stores them in one JSON file and later runs read it. The file's name is
a key over everything the answers depend on: the source files of ``components``, ``evaluation``
and ``search.space`` (size, modification time and path), and the installed versions of torch,
timm and torchvision. Any change there gives another key, hence another file: a stale answer is
never read. Computing the key reads no module's code and imports nothing heavy.

The file lives in ``$XDG_CACHE_HOME/robust-vit-search/`` (``~/.cache`` by default);
``SEARCH_REGISTRY_CACHE`` names another folder, or ``off`` to compute every registry in-process
as before. A folder that cannot be written only costs the speed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from search.user_cache import cache_folder

_ENV = "SEARCH_REGISTRY_CACHE"
_PACKAGES = ("components", "evaluation", "search.space")
_DISTRIBUTIONS = ("torch", "timm", "torchvision")
T = TypeVar("T")
_MISSING = object()


def _folder() -> Path | None:
    setting = os.environ.get(_ENV, "")
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting)
    return cache_folder()


def _package_dir(package: str) -> Path | None:
    """The source folder of ``package`` without executing it (its ``__init__`` imports torch)."""
    try:
        spec = importlib.util.find_spec(package) if "." not in package else None
    except (ImportError, ValueError):
        return None
    if "." in package:  # a sub-package: its folder is under the top package's
        top = _package_dir(package.split(".")[0])
        return None if top is None else top / Path(*package.split(".")[1:])
    locations = spec.submodule_search_locations if spec else None
    return Path(next(iter(locations))) if locations else None


@functools.cache
def cache_key() -> str:
    """A digest of what the registries depend on (see the module docstring)."""
    digest = hashlib.sha256()
    for package in _PACKAGES:
        folder = _package_dir(package)
        if folder is None:
            continue
        for path in sorted(folder.rglob("*.py")):
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    for name in _DISTRIBUTIONS:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{name}=={version}\n".encode())
    return digest.hexdigest()[:24]


class _Store:
    """The answers of this key: read once from the file, written back (atomically) on each new one."""

    def __init__(self) -> None:
        self._answers: dict[str, Any] | None = None

    @property
    def path(self) -> Path | None:
        folder = _folder()
        return None if folder is None else folder / f"registries-{cache_key()}.json"

    def _load(self) -> dict[str, Any]:
        if self._answers is None:
            self._answers = {}
            path = self.path
            if path is not None and path.is_file():
                try:
                    data = json.loads(path.read_text())
                    self._answers = data if isinstance(data, dict) else {}
                except (OSError, ValueError):
                    self._answers = {}  # unreadable or half-written by a killed process: recompute
        return self._answers

    def get(self, key: str) -> Any:
        return self._load().get(key, _MISSING)

    def put(self, key: str, value: Any) -> None:
        answers = self._load()
        answers[key] = value
        path = self.path
        if path is None:
            return
        from search.results.json_files import write_json

        try:
            write_json(path, answers)
        except OSError:
            pass  # a read-only home: every run computes the registries itself

    def clear(self) -> None:
        """Forget what was read (the file stays): for tests that point the cache elsewhere."""
        self._answers = None


STORE = _Store()


def _as_stored(value: Any) -> Any:
    """JSON has lists, not tuples: the registries hold tuples, so every list read back is one."""
    if isinstance(value, list):
        return tuple(_as_stored(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_stored(v) for k, v in value.items()}
    return value


def registry(function: Callable[..., T]) -> Callable[..., T]:
    """Memoise ``function`` (arguments: strings) in memory and in the cache file.

    The answer must be JSON data (tuples come back as tuples, see :func:`_as_stored`).
    """

    @functools.cache
    @functools.wraps(function)
    def wrapper(*args: str) -> T:
        key = ":".join((function.__qualname__, *args))
        stored = STORE.get(key)
        if stored is not _MISSING:
            return _as_stored(stored)
        value = function(*args)
        STORE.put(key, value)
        return value

    return wrapper
