"""A new run folder's MLflow store, copied from an empty one made once per MLflow version.

MLflow makes a new SQLite store by creating its first tables and running every schema migration
since (alembic), one by one: about 1.5 s of pure Python for each new run folder on two CPU cores,
and the same again for every test that starts a search. A copy of a store already at the head
revision takes milliseconds (``benchmarks/bench_store.py``). The empty store is made once per
MLflow version, by MLflow's own table set-up, in this user's cache folder
(:func:`search.user_cache.cache_folder`). It holds tables only, no experiment: MLflow adds its
Default experiment, with the opening process's artifact root, when it first opens the copy, as
it does for a store it made itself.

Anything that goes wrong here (a cache folder that cannot be written, an MLflow whose set-up
routine moved) only costs the speed: the store is then left for MLflow to make.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from search.user_cache import cache_folder

log = logging.getLogger("search.tracking")


def seed_new_store(db_path: str | os.PathLike) -> bool:
    """Put an empty MLflow store at ``db_path`` when nothing is there; True when one was copied."""
    target = Path(db_path)
    if target.exists():
        return False
    try:
        template = _template()
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        shutil.copyfile(template, partial)
        os.replace(partial, target)  # never a half-copied store under the real name
        return True
    except Exception as err:  # noqa: BLE001  only the speed is lost: MLflow makes the store itself
        log.debug("no store template for %s (%s); MLflow creates the store", target, err)
        return False


def template_path() -> Path:
    """Where the empty store of the installed MLflow lives."""
    from importlib.metadata import version

    return cache_folder() / f"mlflow-{version('mlflow')}-empty.db"


def _template() -> Path:
    path = template_path()
    if path.is_file():
        return path
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables  # what MLflow's SqlAlchemyStore runs on a new store

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    partial.unlink(missing_ok=True)
    engine = sqlalchemy.create_engine(f"sqlite:///{partial}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()
    os.replace(partial, path)  # two processes making it at once: the last one wins, both whole
    return path
