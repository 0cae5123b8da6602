"""What ``search run`` checks before it starts anything (Ray, the data, the corrupted set, MLflow).

A validated space file can still name things that are not there on this machine. Found later, they
cost a Ray start and the corrupted set's build first, and left a run folder behind. :func:`preflight`
checks, in this order, and creates nothing:

1. ``data.path`` is an existing folder (and an image folder's ``train_split`` / ``test_split``
   sub-folders are in it);
2. the folders the search writes (``storage`` or ``storage.local``, ``eval.cache_dir``) exist or
   can be created: no part of them is a regular file, and the nearest existing folder is writable;
3. a tracking store named by ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` answers (one try, a
   short timeout; the default, a SQLite file in the run folder, is covered by 2).

Each failure is a :class:`search.errors.UserError` naming the file, the field and what is valid.
What only the loaded data can tell (``eval.subset`` larger than the test set) is found once Ray has
started; :func:`first_missing` and :func:`discard` then remove the run folder that the failed start
created, so that a bad file leaves nothing behind either way.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from search.errors import UserError


def preflight(space: Any, tracking_uri: str | None = None) -> None:
    """Raise :class:`UserError` for the first thing of ``space`` that this machine lacks (see above)."""
    check_paths(space)
    if space.storage_is_uri:
        _check_writable(space, "storage.local", space.storage.local)
    else:
        _check_writable(space, "storage", space.storage.path)
    _check_writable(space, "eval.cache_dir", space.eval.cache_dir)
    _check_tracking(space, tracking_uri)


def check_paths(space: Any) -> None:
    """Every path that the space reads exists: ``data.path`` (and an image folder's splits),
    ``eval.benchmark_path``, each ``eval.shift_sets`` folder and a baseline file of
    ``eval.normalization`` (``search validate`` checks these too; relative to the working folder)."""
    _check_data(space)
    ev = space.eval
    given = [("eval.benchmark_path", ev.benchmark_path, "a pre-made benchmark's folder")]
    given += [(f"eval.shift_sets.{name}", folder, f"the {name} folder") for name, folder in ev.shift_sets.items()]
    for field, path, what in given:
        if path and not Path(path).expanduser().is_dir():
            state = "is not a folder" if Path(path).expanduser().exists() else "does not exist"
            raise UserError(f"{space.source}: {field}: given {path!r}; expected {what} "
                            f"({Path(path).expanduser().resolve()} {state})")
    baseline = ev.normalization
    if baseline.lower().endswith((".json", ".csv")) and not Path(baseline).expanduser().is_file():
        raise UserError(f"{space.source}: eval.normalization: given {baseline!r}; expected 'alexnet', 'none' or an "
                        f"existing baseline file ({Path(baseline).expanduser().resolve()} does not exist)")


def _check_data(space: Any) -> None:
    given = space.data.path
    if not given:
        return
    root = Path(given).expanduser()
    if not root.is_dir():
        state = "is not a folder" if root.exists() else "does not exist"
        raise UserError(f"{space.source}: data.path: given {given!r}; expected the data set's root folder "
                        f"({root.resolve()} {state})")
    if space.data.dataset == "imagefolder":
        for key in ("train_split", "test_split"):
            split = getattr(space.data, key)
            if not (root / split).is_dir():
                raise UserError(f"{space.source}: data.{key}: given {split!r}; expected a sub-folder of data.path "
                                f"({(root / split).resolve()} does not exist)")


def _check_writable(space: Any, field: str, given: str) -> None:
    """``given`` is a folder, or can be made one: its nearest existing part is a writable folder."""
    folder = Path(given).expanduser().resolve()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        where = "is a file" if existing == folder else f"is a file, not a folder, so {folder} cannot be created"
        raise UserError(f"{space.source}: {field}: given {given!r}; expected a folder the search can write "
                        f"({existing} {where})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{space.source}: {field}: given {given!r}; expected a folder the search can write "
                        f"({existing} is not writable)")


def _check_tracking(space: Any, tracking_uri: str | None) -> None:
    if not (tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "").strip():
        return  # the run folder's own SQLite store: created with the run folder, checked above
    from search.tracking.store import check_reachable, resolve_tracking_uri  # imports MLflow: 1-2 s

    check_reachable(resolve_tracking_uri(space.run_folder, tracking_uri))


def first_missing(folder: Path) -> Path | None:
    """The outermost part of ``folder`` that does not exist yet (None: it exists)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    return missing[-1] if missing else None


def discard(created: Path | None) -> None:
    """Remove a folder that this search created (see :func:`first_missing`) when it stopped before it
    started (a bad data set, say, after the MLflow store was opened in it)."""
    if created is not None and created.is_dir():
        shutil.rmtree(created, ignore_errors=True)
