"""A new run folder's MLflow store is a copy of an empty one made once per MLflow version: at
MLflow's head schema, with the Default experiment of the process that opens it, never over an
existing store, and MLflow makes the store itself when the cache cannot be used."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from search.tracking.store import make_client
from search.tracking.store_template import seed_new_store, template_path

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "robust-vit-search"


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as con:
        return con.execute("select version_num from alembic_version").fetchone()[0]


def test_new_stores_are_copies_of_one_empty_store_at_mlflows_head(cache, tmp_path, monkeypatch):
    from mlflow.store.db.utils import _get_latest_schema_revision

    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    client = make_client(f"sqlite:///{first}")
    template = template_path()
    assert template.parent == cache and template.is_file()
    made = template.stat().st_mtime_ns
    # MLflow's Default experiment is made when the copy is first opened, with this process's root.
    (default,) = client.search_experiments()
    assert (default.experiment_id, default.name) == ("0", "Default")
    assert default.artifact_location == str(tmp_path / "mlruns" / "0")
    with sqlite3.connect(template) as con:  # the template itself holds no experiment
        assert con.execute("select count(*) from experiments").fetchone()[0] == 0

    other = make_client(f"sqlite:///{second}")
    assert template.stat().st_mtime_ns == made  # made once, copied since
    assert _revision(first) == _revision(second) == _get_latest_schema_revision()
    run = other.create_run(other.create_experiment("x"))
    other.log_metric(run.info.run_id, "clean_accuracy", 91.5, step=1)
    assert make_client(f"sqlite:///{second}").get_run(run.info.run_id).data.metrics == {"clean_accuracy": 91.5}


def test_an_existing_store_is_never_replaced(cache, tmp_path):
    db = tmp_path / "mlflow.db"
    client = make_client(f"sqlite:///{db}")
    run_id = client.create_run(client.create_experiment("kept")).info.run_id
    assert seed_new_store(db) is False
    assert make_client(f"sqlite:///{db}").get_run(run_id).info.run_id == run_id


def test_without_a_usable_cache_mlflow_makes_the_store(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    db = tmp_path / "run" / "mlflow.db"
    db.parent.mkdir()
    assert seed_new_store(db) is False and not db.exists()
    client = make_client(f"sqlite:///{db}")
    assert [e.name for e in client.search_experiments()] == ["Default"] and db.is_file()
