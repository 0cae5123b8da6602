"""The registries a space is checked against are kept on disk: a second ``search validate`` or
``search show`` gives the same answer without importing torch, and any change to the code or the
installed versions the answers depend on gives another cache file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from search.space import registry_cache

ROOT = Path(__file__).resolve().parents[2]
# Runs a CLI command, then says which heavy modules it imported.
PROBE = (
    "import sys; from search.cli import main; code = main(sys.argv[1:]); "
    "print('IMPORTED', sorted(m for m in ('torch', 'timm', 'ray', 'mlflow') if m in sys.modules)); "
    "sys.exit(code)"
)


def _cli(cache: Path | str, *args: str) -> tuple[str, list[str]]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "SEARCH_REGISTRY_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out, _, imported = done.stdout.rpartition("IMPORTED ")
    return out, eval(imported)  # a list literal printed by PROBE


@pytest.mark.timeout(600)
@pytest.mark.parametrize("command", ["validate", "show"])
def test_second_run_answers_the_same_without_torch(tmp_path, command):
    space = "spaces/quickstart.yaml"
    first, first_imports = _cli(tmp_path, command, space)
    second, second_imports = _cli(tmp_path, command, space)
    assert "torch" in first_imports  # the first run computed the registries
    assert second == first
    assert second_imports == []  # neither torch, timm, Ray nor MLflow
    assert len(list(tmp_path.glob("registries-*.json"))) == 1


def test_cache_off_computes_in_process(tmp_path, monkeypatch):
    out, imported = _cli("off", "validate", "--skip-paths", "spaces/quickstart.yaml")
    assert "valid: quickstart" in out and "torch" in imported
    assert not list(tmp_path.iterdir())


def test_key_follows_the_sources(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "names.py").write_text("MIXERS = ('mlp',)\n")
    monkeypatch.setattr(registry_cache, "_PACKAGES", ("pkg",))
    monkeypatch.setattr(registry_cache, "_package_dir", lambda name: package)
    registry_cache.cache_key.cache_clear()
    before = registry_cache.cache_key()
    registry_cache.cache_key.cache_clear()
    assert registry_cache.cache_key() == before  # nothing changed: same key
    (package / "names.py").write_text("MIXERS = ('mlp', 'fan')\n")
    registry_cache.cache_key.cache_clear()
    assert registry_cache.cache_key() != before
    registry_cache.cache_key.cache_clear()


def test_unreadable_file_is_recomputed_and_tuples_come_back(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_REGISTRY_CACHE", str(tmp_path))
    store = registry_cache._Store()
    monkeypatch.setattr(registry_cache, "STORE", store)
    store.path.write_text('{"half-writ')  # a process killed mid-write (before the rename)
    calls = []

    @registry_cache.registry
    def names(group: str) -> tuple[str, ...]:
        calls.append(group)
        return ("a", group)

    assert names("b") == ("a", "b") and calls == ["b"]
    assert json.loads(store.path.read_text()) == {
        "test_unreadable_file_is_recomputed_and_tuples_come_back.<locals>.names:b": ["a", "b"]}
    store.clear()
    names.cache_clear()
    assert names("b") == ("a", "b") and isinstance(names("b"), tuple) and calls == ["b"]  # read back
