"""ImageNet-style folder trees: ``PATH/<split>/<class>/<image>`` (split "train", "val", ...).

Classes are the sorted sub-folder names of the split (like torchvision's ``ImageFolder``). Each
image is read with Pillow, converted to RGB, resized so the shorter side is
``round(image_size / 0.875)`` (timm's default crop fraction) and centre-cropped to ``image_size``.
Images are read lazily, so large trees are fine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
CROP_FRACTION = 0.875
LAYOUT = "imagefolder expects PATH/<split>/<class>/<image> (e.g. PATH/train/n01440764/x.JPEG, PATH/val/...)"


def list_images(folder: Path) -> list[Path]:
    """Image files directly under ``folder`` (sorted)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def read_image(file: Path, image_size: int, crop_fraction: float = CROP_FRACTION) -> torch.Tensor:
    """Read ``file`` as uint8 (3, image_size, image_size): resize the shorter side, centre crop."""
    with Image.open(file) as im:
        im = im.convert("RGB")
        w, h = im.size
        short = round(image_size / crop_fraction)
        if min(w, h) != short:
            scale = short / min(w, h)
            im = im.resize((max(short, round(w * scale)), max(short, round(h * scale))), Image.BILINEAR)
            w, h = im.size
        left, top = (w - image_size) // 2, (h - image_size) // 2
        im = im.crop((left, top, left + image_size, top + image_size))
        return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)


class ImageFolderDataset(Dataset):
    """``(image, label)`` pairs from a list of files and labels, read lazily."""

    def __init__(self, files: list[Path], labels: list[int], classes: list[str], image_size: int,
                 crop_fraction: float = CROP_FRACTION):
        self.files = files
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.classes = classes
        self.num_classes = len(classes)
        self.image_size = image_size
        self.crop_fraction = crop_fraction

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = read_image(self.files[i], self.image_size, self.crop_fraction)
        return img.float() / 255, int(self.labels[i])


def scan_classes(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """Files, labels and class names of ``root/<class>/<image>``; ValueError if none."""
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder; {LAYOUT}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    files, labels = [], []
    for label, cls in enumerate(classes):
        for f in list_images(root / cls):
            files.append(f)
            labels.append(label)
    if not files:
        raise ValueError(f"{root} holds no class folders with images; {LAYOUT}")
    return files, labels, classes


def load_imagefolder(split: str, *, path: str | None, image_size: int = 224) -> ImageFolderDataset:
    """The ``split`` sub-tree of the image folder at ``path``."""
    if path is None:
        raise ValueError(f"imagefolder needs a path; {LAYOUT}")
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root} does not exist; {LAYOUT}")
    if not (root / split).is_dir():
        splits = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise ValueError(f"{root} has no split folder {split!r} (found {splits}); {LAYOUT}")
    files, labels, classes = scan_classes(root / split)
    return ImageFolderDataset(files, labels, classes, image_size)
