"""Corrupted test sets: built once from a seed, cached on disk under a content hash, reused.

A corrupted set holds, for every (corruption, severity), the corrupted copies of the same N test
images, so every model is judged on exactly the same pixels. :func:`build_corrupted_set` is a pure
function of its inputs: the content of the chosen clean images (hashed, so the data set, split and
image size are covered), the subset size and seed that chose them, the corruptions, severities,
parameter table, backend, device type and the engine version. The result is stored as
``cache_dir/corrupted-<hash>.pt`` (uint8 tensors, ``torch.save``) and loaded when present.

Two processes building the same set at once are safe: a lock file serialises them (the second
finds the file the first wrote), and the file is written to a temporary name and renamed
atomically, so a reader never sees half a file. Files are readable by everyone (mode 0644), so a
shared cache folder serves every user.

The cache never lies: each file stores a SHA-256 of its tensors and its spec, verified on every
load, and the stored spec is compared with the one asked for. A file that fails either check
(flipped bytes, truncated, another set's file under this name) is rebuilt by
:func:`build_corrupted_set` and refused by :func:`load_cached` with a one-line
:class:`CacheError` naming the file.

Pre-made benchmarks on disk (ImageNet-C, CIFAR-10-C) are read as :class:`CorruptedSet` too, see
:mod:`evaluation.data.corrupted_benchmarks`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from evaluation.corruptions import ALL_CORRUPTIONS, SEVERITIES, corrupt, parse_corruptions, table_name

ENGINE_VERSION = "5"  # bump when any corruption's output changes, so old caches are not reused
CALL_PIXELS = 64 * 224 * 224
"""Pixels per call of the engine (64 images at 224 px, 3,136 at 32 px): bounds the memory of a
call and is fixed, so results never depend on a batch-size setting; within a call the engine
runs its own chunks on every core."""


class CacheError(ValueError):
    """A cache file that cannot be trusted: unreadable, truncated, altered, or another set's."""


class CorruptedSet:
    """Corrupted copies of N test images for each (corruption, severity).

    Subclasses implement :meth:`_load` (uint8 (B, 3, H, W) images of items ``positions`` at one
    corruption/severity).

    Attributes:
        corruptions: corruption names, in order.
        severities: severities, in order.
        labels: int64 (N,) labels of the N items.
        source_indices: int64 (N,) index of each item in the clean data set it came from, or
            ``None`` when unknown (then attention stability cannot pair clean and corrupted).
        num_classes: number of classes.
    """

    def __init__(self, corruptions: Sequence[str], severities: Sequence[int], labels: torch.Tensor,
                 source_indices: torch.Tensor | None, num_classes: int):
        self.corruptions = tuple(corruptions)
        self.severities = tuple(int(s) for s in severities)
        self.labels = labels.long()
        self.source_indices = None if source_indices is None else source_indices.long()
        self.num_classes = int(num_classes)

    def __len__(self) -> int:
        return len(self.labels)

    def describe(self) -> dict:
        """How this set was made, for reports: ``table``, ``seed``, ``subset``, ``backend``, ``source``."""
        return {}

    def _load(self, corruption: str, severity: int, positions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check(self, corruption: str, severity: int) -> None:
        if corruption not in self.corruptions or severity not in self.severities:
            raise ValueError(
                f"({corruption!r}, {severity}) is not in this set: corruptions {list(self.corruptions)}, "
                f"severities {list(self.severities)}"
            )

    def load(self, corruption: str, severity: int, positions: torch.Tensor) -> torch.Tensor:
        """Float (B, 3, H, W) images in [0, 1] of the items at ``positions`` (int64 (B,))."""
        self._check(corruption, severity)
        return self._load(corruption, severity, positions).float() / 255

    def batches(self, corruption: str, severity: int, batch_size: int = 256
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield ``(images float (B, 3, H, W) in [0, 1], labels (B,), positions (B,))`` in order."""
        self._check(corruption, severity)
        for start in range(0, len(self), batch_size):
            pos = torch.arange(start, min(start + batch_size, len(self)))
            yield self._load(corruption, severity, pos).float() / 255, self.labels[pos], pos

    def view(self, corruption: str, severity: int) -> Dataset:
        """A ``Dataset`` of ``(image, label)`` for one corruption and severity."""
        self._check(corruption, severity)
        return _View(self, corruption, severity)


class _View(Dataset):
    def __init__(self, owner: CorruptedSet, corruption: str, severity: int):
        self.owner, self.corruption, self.severity = owner, corruption, severity
        self.num_classes = owner.num_classes

    def __len__(self) -> int:
        return len(self.owner)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.owner._load(self.corruption, self.severity, torch.tensor([i]))[0]
        return img.float() / 255, int(self.owner.labels[i])


class TensorCorruptedSet(CorruptedSet):
    """A corrupted set in memory: ``images`` uint8 (C, S, N, 3, H, W) in corruption/severity order."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, source_indices: torch.Tensor | None,
                 corruptions: Sequence[str], severities: Sequence[int], num_classes: int,
                 spec: dict | None = None):
        super().__init__(corruptions, severities, labels, source_indices, num_classes)
        expected = (len(self.corruptions), len(self.severities), len(labels))
        if images.dtype != torch.uint8 or tuple(images.shape[:3]) != expected:
            raise ValueError(f"images must be uint8 with leading shape {expected}, got "
                             f"{images.dtype} {tuple(images.shape)}")
        self.images = images
        self.spec = spec or {}
        self.path: Path | None = None

    def describe(self) -> dict:
        keys = ("table", "seed", "subset", "backend")
        return {**{k: self.spec.get(k) for k in keys}, "source": str(self.path) if self.path else "in memory"}

    def _load(self, corruption: str, severity: int, positions: torch.Tensor) -> torch.Tensor:
        ci, si = self.corruptions.index(corruption), self.severities.index(severity)
        return self.images[ci, si, positions]

    def batches(self, corruption, severity, batch_size=256):
        self._check(corruption, severity)
        block = self.images[self.corruptions.index(corruption), self.severities.index(severity)]
        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            yield block[start:stop].float() / 255, self.labels[start:stop], torch.arange(start, stop)


def _chunk_seed(seed: int, corruption: str, severity: int, chunk: int) -> int:
    # Independent of which other corruptions are in the set: keyed by the global corruption index.
    ss = np.random.SeedSequence([int(seed), ALL_CORRUPTIONS.index(corruption), int(severity), int(chunk)])
    return int(ss.generate_state(2, dtype=np.uint64)[0] % (2**62))


def select_clean(dataset: Dataset, subset: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The clean images chosen for a corrupted set: uint8 (N, 3, H, W), labels (N,), indices (N,)."""
    n = len(dataset)
    if subset is None or subset >= n:
        idx = torch.arange(n)
    else:
        if subset < 1:
            raise ValueError(f"subset must be a positive integer or None, got {subset!r}")
        g = torch.Generator().manual_seed(int(seed))
        idx = torch.randperm(n, generator=g)[:subset].sort().values
    images, labels = [], []
    for i in idx.tolist():
        img, label = dataset[i]
        images.append((img.clamp(0, 1) * 255).round().to(torch.uint8))
        labels.append(int(label))
    return torch.stack(images), torch.tensor(labels, dtype=torch.long), idx


def corrupted_set_key(clean: torch.Tensor, labels: torch.Tensor, spec: dict) -> str:
    """Content hash of the clean images, labels and build settings (hex, 20 characters)."""
    h = hashlib.sha256()
    h.update(clean.contiguous().numpy().tobytes())
    h.update(labels.numpy().astype(np.int64).tobytes())
    h.update(json.dumps(spec, sort_keys=True).encode())
    return h.hexdigest()[:20]


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive advisory lock on ``path`` (no-op where fcntl is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _progress(done: int, total: int, label: str, start: float, enabled: bool) -> None:
    if not enabled:
        return
    elapsed = time.time() - start
    end = "\n" if done == total else ""
    sys.stderr.write(f"\rbuilding corrupted set: {done}/{total} {label:<28s} {elapsed:6.1f}s{end}")
    sys.stderr.flush()


def _content_digest(blob: dict) -> str:
    """SHA-256 of a cache blob's tensors, class count and spec (what :func:`load_cached` verifies)."""
    h = hashlib.sha256()
    for key in ("images", "labels", "source_indices"):
        t = blob[key].contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    h.update(f"{int(blob['num_classes'])}:{blob['spec']}".encode())
    return h.hexdigest()


def load_cached(path: str | os.PathLike, expected_spec: dict | None = None) -> TensorCorruptedSet:
    """Open a corrupted set written by :func:`build_corrupted_set`, verified.

    Raises :class:`CacheError` (one line naming the file) when the file is unreadable or
    truncated, when its content hash does not match, or when ``expected_spec`` is given and the
    stored spec differs from it.
    """
    what = "a corrupted-set cache file written by build_corrupted_set; delete it to rebuild"
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        digest, spec = blob["sha256"], json.loads(blob["spec"])
        ok = digest == _content_digest(blob)
    except FileNotFoundError:
        raise CacheError(f"cache file {path} does not exist") from None
    except Exception as err:  # truncated or garbled: torch/pickle/zip errors of every kind
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise CacheError(f"cache file {path} is unreadable ({type(err).__name__}: {first[:120]}); {what}") from None
    if not ok:
        raise CacheError(f"cache file {path} fails its content check (SHA-256 mismatch: altered bytes); {what}")
    if expected_spec is not None and spec != json.loads(json.dumps(expected_spec, sort_keys=True)):
        diff = sorted(k for k in set(spec) | set(expected_spec) if spec.get(k) != expected_spec.get(k))
        raise CacheError(f"cache file {path} holds another corrupted set (its spec differs in {diff}); {what}")
    src = blob["source_indices"]
    out = TensorCorruptedSet(blob["images"], blob["labels"], src if src.numel() else None,
                             spec["corruptions"], spec["severities"], int(blob["num_classes"]), spec)
    out.path = Path(path)
    return out


def build_corrupted_set(dataset: Dataset, *, corruptions: Sequence[str] | str = "benchmark",
                        severities: Sequence[int] = SEVERITIES, table: str = "imagenet_c", seed: int = 0,
                        subset: int | None = None, cache_dir: str | os.PathLike = ".cache/corrupted",
                        backend: str = "torch", progress: bool = True, device: str = "cpu"
                        ) -> TensorCorruptedSet:
    """Build (or load from ``cache_dir``) the corrupted copies of a test set.

    Args:
        dataset: the clean test set (``(image, label)`` items, ``num_classes`` attribute).
        corruptions: names, or ``"benchmark"`` / ``"extra"`` / ``"all"``.
        severities: severities 1..5.
        table: corruption parameter table (``"imagenet_c"``, ``"imagecorruptions"``, ``"cifar10"``).
        seed: picks the subset and seeds every corruption.
        subset: number of clean images to use (seeded random choice); ``None`` = all.
        cache_dir: folder of the cached sets (created if missing).
        backend: ``"torch"`` or ``"reference"`` (part of the key: the two differ in random draws).
        progress: print a progress line on stderr while building.
        device: where the torch backend runs (``"cpu"``, ``"cuda"``); its type is part of the key.

    Returns:
        A :class:`TensorCorruptedSet` whose ``path`` is the cache file.
    """
    names = parse_corruptions(corruptions)
    sevs = tuple(int(s) for s in severities)
    for s in sevs:
        if s not in SEVERITIES:
            raise ValueError(f"severities must be in 1..5, got {list(severities)}")
    table = table_name(table)  # an alias stored under the table's own name
    clean, labels, idx = select_clean(dataset, subset, seed)
    spec = {
        "engine": ENGINE_VERSION, "corruptions": list(names), "severities": list(sevs), "table": table,
        "seed": int(seed), "subset": subset, "backend": backend, "device": torch.device(device).type,
        "image_shape": list(clean.shape[1:]), "num_images": len(clean),
    }
    key = corrupted_set_key(clean, labels, spec)
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"corrupted-{key}.pt"
    with _file_lock(folder / f"corrupted-{key}.lock"):
        if path.is_file():
            try:
                return load_cached(path, spec)
            except CacheError as err:  # never use a file that fails its checks: build it again
                sys.stderr.write(f"{err}: rebuilding it\n")
        n = len(clean)
        images = torch.empty((len(names), len(sevs), *clean.shape), dtype=torch.uint8)
        total, done, start = len(names) * len(sevs), 0, time.time()
        for ci, name in enumerate(names):
            for si, sev in enumerate(sevs):
                _progress(done, total, f"{name} s{sev}", start, progress)
                step = max(1, CALL_PIXELS // (clean.shape[-2] * clean.shape[-1]))
                for k, lo in enumerate(range(0, n, step)):
                    batch = clean[lo:lo + step].to(device).float() / 255
                    out = corrupt(batch, name, sev, table=table, backend=backend,
                                  seed=_chunk_seed(seed, name, sev, k))
                    images[ci, si, lo:lo + step] = (out * 255).round().to(torch.uint8).cpu()
                done += 1
        _progress(done, total, "done", start, progress)
        blob = {"images": images, "labels": labels, "source_indices": idx,
                "num_classes": int(dataset.num_classes), "spec": json.dumps(spec, sort_keys=True)}
        blob["sha256"] = _content_digest(blob)
        fd, tmp = tempfile.mkstemp(prefix=f".corrupted-{key}-", suffix=".tmp", dir=folder)
        os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files: a shared cache folder needs them readable
        try:
            torch.save(blob, tmp)
            os.replace(tmp, path)  # atomic: readers see the old state or the whole file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return load_cached(path, spec)
