"""Cached corrupted sets: pure function of the inputs, on disk under a content hash, safe in parallel."""

from __future__ import annotations

import subprocess
import sys

import torch

from evaluation.corrupted_set import build_corrupted_set, load_cached
from evaluation.corruptions import corrupt
from evaluation.data import load_dataset

SPEC = {"corruptions": ["gaussian_noise", "pixelate"], "severities": [1, 4], "table": "cifar10", "subset": 10}


def _build(cache, seed=0, **kw):
    clean = load_dataset("digits", "test")
    return build_corrupted_set(clean, seed=seed, cache_dir=cache, progress=False, **{**SPEC, **kw})


def test_build_store_reuse(tmp_path, capsys):
    clean = load_dataset("digits", "test")
    cs = build_corrupted_set(clean, seed=0, cache_dir=tmp_path, progress=True, **SPEC)
    assert "building corrupted set: 4/4" in capsys.readouterr().err
    assert cs.path.parent == tmp_path and cs.path.name.startswith("corrupted-")
    assert cs.images.dtype == torch.uint8 and cs.images.shape == (2, 2, 10, 3, 32, 32)
    # items pair with the clean images they came from
    assert torch.equal(cs.labels, clean.labels[cs.source_indices])
    x = clean.images[cs.source_indices].float() / 255
    assert torch.equal(cs.images[1, 0].float() / 255, corrupt(x, "pixelate", 1, table="cifar10"))
    mtime = cs.path.stat().st_mtime_ns
    again = build_corrupted_set(clean, seed=0, cache_dir=tmp_path, progress=True, **SPEC)
    assert "building" not in capsys.readouterr().err  # loaded, not rebuilt
    assert again.path == cs.path and again.path.stat().st_mtime_ns == mtime
    assert torch.equal(again.images, cs.images)


def test_pure_function_of_inputs(tmp_path):
    a = _build(tmp_path / "a")
    b = _build(tmp_path / "b")  # rebuilt from scratch elsewhere: same key, same pixels
    assert a.path.name == b.path.name and torch.equal(a.images, b.images)
    c = _build(tmp_path / "a", seed=1)
    d = _build(tmp_path / "a", table="imagenet")
    assert len({a.path, c.path, d.path}) == 3
    assert not torch.equal(a.images, c.images)
    # a corruption's images do not depend on which others are in the set
    e = _build(tmp_path / "a", corruptions=["pixelate", "fog"])
    assert torch.equal(e.images[0], a.images[1])


def test_load_cached_roundtrip(tmp_path):
    a = _build(tmp_path)
    b = load_cached(a.path)
    assert b.corruptions == a.corruptions and b.severities == a.severities
    imgs, labels, pos = next(b.batches("gaussian_noise", 4, batch_size=4))
    assert imgs.shape == (4, 3, 32, 32) and torch.equal(labels, a.labels[:4])


def test_two_processes_build_at_once(tmp_path):
    code = (
        "from evaluation.data import load_dataset\n"
        "from evaluation.corrupted_set import build_corrupted_set\n"
        f"cs = build_corrupted_set(load_dataset('digits', 'test'), seed=3, cache_dir={str(tmp_path)!r}, "
        f"progress=False, **{SPEC!r})\n"
        "print(cs.path.name, int(cs.images.sum()))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={"OMP_NUM_THREADS": "1", "PYTHONPATH": ".", "PATH": ""}) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    files = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pt")
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))


# ---- issue 15: the cache must not lie ----------------------------------------------------------------
def test_cache_files_are_readable_by_everyone(tmp_path):
    cs = _build(tmp_path)
    assert cs.path.stat().st_mode & 0o777 == 0o644  # mkstemp's 0600 would hide a shared cache from others


def test_flipped_bytes_are_caught(tmp_path, capsys):
    import pytest

    from evaluation.corrupted_set import CacheError

    cs = _build(tmp_path)
    good = cs.images.clone()
    raw = bytearray(cs.path.read_bytes())
    at = raw.find(bytes(good[0, 0, 0].flatten()[:16].tolist()))  # inside the images' storage
    assert at > 0
    raw[at:at + 8] = bytes(255 - b for b in raw[at:at + 8])
    cs.path.write_bytes(bytes(raw))
    with pytest.raises(CacheError, match=f"{cs.path}.*content check") as err:
        load_cached(cs.path)
    assert "\n" not in str(err.value)
    again = _build(tmp_path)  # the builder rebuilds instead of using the altered file
    assert "rebuilding" in capsys.readouterr().err and torch.equal(again.images, good)


def test_another_sets_file_under_this_name_is_caught(tmp_path, capsys):
    import pytest

    from evaluation.corrupted_set import CacheError

    mine = _build(tmp_path / "a")
    other = _build(tmp_path / "b", seed=1)
    mine.path.write_bytes(other.path.read_bytes())  # a valid file, but another set's
    with pytest.raises(CacheError, match="another corrupted set.*'seed'"):
        load_cached(mine.path, mine.spec)
    again = _build(tmp_path / "a")
    assert "rebuilding" in capsys.readouterr().err and torch.equal(again.images, mine.images)


def test_truncated_file_is_one_line_naming_it(tmp_path):
    import pytest

    from evaluation.corrupted_set import CacheError

    cs = _build(tmp_path)
    cs.path.write_bytes(cs.path.read_bytes()[:5000])
    with pytest.raises(CacheError, match=f"cache file {cs.path} is unreadable") as err:
        load_cached(cs.path)
    assert "\n" not in str(err.value)
    assert torch.equal(_build(tmp_path).images, cs.images)  # rebuilt
