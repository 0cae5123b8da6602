"""CIFAR-10 / CIFAR-100 from the standard python-pickle layout on disk.

Expected layout (as unpacked from ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``)::

    cifar10:  PATH/data_batch_1 .. data_batch_5, PATH/test_batch   (keys b"data", b"labels")
    cifar100: PATH/train, PATH/test                                  (keys b"data", b"fine_labels")

``PATH`` may also be the parent folder holding ``cifar-10-batches-py`` / ``cifar-100-python``.
``data`` is uint8 (N, 3072), row-major 3 x 32 x 32.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from evaluation.data.base import ImageDataset, resize_batch

LAYOUTS = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "label_key": b"labels",
        "classes": 10,
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "label_key": b"fine_labels",
        "classes": 100,
    },
}


def _layout_text(name: str) -> str:
    lay = LAYOUTS[name]
    files = ", ".join(lay["train"] + lay["test"])
    return f"{name} expects a folder with the python-pickle files {files} (or its parent holding {lay['folder']}/)"


def _read_batch(file: Path, label_key: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(file, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except Exception as err:  # any unreadable or malformed batch is a layout problem
        raise ValueError(f"{file} is not a valid {name} pickle batch ({err}); {_layout_text(name)}") from err
    if len(data) != len(labels):
        raise ValueError(f"{file}: {len(data)} images but {len(labels)} labels; {_layout_text(name)}")
    return data, labels


def load_cifar(name: str, split: str, *, path: str | None, image_size: int = 32) -> ImageDataset:
    """CIFAR ``split`` ("train" or "test") from ``path``, resized to ``image_size`` if not 32."""
    if split not in ("train", "test"):
        raise ValueError(f"{name} has splits 'train' and 'test', got {split!r}")
    if path is None:
        raise ValueError(f"{name} needs a path; {_layout_text(name)}")
    lay = LAYOUTS[name]
    root = Path(path)
    if (root / lay["folder"]).is_dir():
        root = root / lay["folder"]
    missing = [f for f in lay[split] if not (root / f).is_file()]
    if missing:
        raise ValueError(f"{root}: missing {', '.join(missing)}; {_layout_text(name)}")
    parts = [_read_batch(root / f, lay["label_key"], name) for f in lay[split]]
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    return ImageDataset(resize_batch(images, image_size), labels, num_classes=lay["classes"])
