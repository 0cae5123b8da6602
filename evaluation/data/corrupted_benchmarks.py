"""Pre-made corruption benchmarks on disk, read as :class:`~evaluation.corrupted_set.CorruptedSet`.

* ImageNet-C (and any folder in its layout): ``PATH/<corruption>/<severity>/<class>/<image>``,
  severities ``1`` .. ``5``. Images were stored at 224 px after Resize(256) + CenterCrop(224), so
  they are only centre-cropped (or, for another ``image_size``, resized on the shorter side and
  cropped). Items are the ``<class>/<image>`` paths of the first corruption/severity folder; the
  others must hold the same files. Read lazily.
* CIFAR-10-C / CIFAR-100-C: ``PATH/<corruption>.npy``, uint8 (5 N, 32, 32, 3), severity-major
  (rows ``(s - 1) N .. s N - 1`` are severity s), and ``PATH/labels.npy`` (5 N or N labels). Item i
  is test image i of CIFAR, so clean and corrupted copies pair up (``source_indices``). Memory-mapped.

:func:`check_against_clean` pairs a pre-made set with the clean test set of the run and refuses
what does not fit (another number of classes or images, other labels, an ImageNet-C folder read
at another size than its images'), so clean and corrupted accuracy come from the same images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from evaluation.corrupted_set import CorruptedSet
from evaluation.corruptions import ALL_CORRUPTIONS, SEVERITIES
from evaluation.data.base import resize_batch
from evaluation.data.imagefolder import list_images, read_image

IMAGENET_C_LAYOUT = "an ImageNet-C folder is PATH/<corruption>/<severity 1-5>/<class>/<image>"
CIFAR_C_LAYOUT = ("a CIFAR-10-C/100-C folder is PATH/<corruption>.npy (uint8, 5N x 32 x 32 x 3, "
                  "severity-major) plus PATH/labels.npy")


def _subset_positions(n: int, subset: int | None, seed: int) -> torch.Tensor:
    if subset is None or subset >= n:
        return torch.arange(n)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=g)[:subset].sort().values


class ImageNetCFolderSet(CorruptedSet):
    """An ImageNet-C style folder, read lazily image by image."""

    def __init__(self, root: Path, corruptions: Sequence[str], severities: Sequence[int],
                 items: list[str], labels: torch.Tensor, num_classes: int, image_size: int,
                 subset: int | None = None, seed: int = 0):
        super().__init__(corruptions, severities, labels, None, num_classes)
        self.root, self.items, self.image_size = root, items, image_size
        self.subset, self.seed = subset, seed

    def describe(self) -> dict:
        return {"table": "pre-made (ImageNet-C folder)", "seed": self.seed, "subset": self.subset,
                "backend": None, "source": str(self.root)}

    def stored_size(self) -> tuple[int, int]:
        """(width, height) of the folder's first image as stored."""
        from PIL import Image

        with Image.open(self.root / self.corruptions[0] / str(self.severities[0]) / self.items[0]) as im:
            return im.size

    def _load(self, corruption, severity, positions):
        out = []
        for p in positions.tolist():
            file = self.root / corruption / str(severity) / self.items[p]
            if not file.is_file():
                raise ValueError(f"{file} is missing; every corruption/severity folder must hold the "
                                 f"same images ({IMAGENET_C_LAYOUT})")
            out.append(read_image(file, self.image_size, crop_fraction=1.0))
        return torch.stack(out)


class CifarCSet(CorruptedSet):
    """CIFAR-10-C / CIFAR-100-C ``.npy`` files, memory-mapped."""

    def __init__(self, arrays: dict[str, np.ndarray], per_severity: int, positions: torch.Tensor,
                 labels: torch.Tensor, severities: Sequence[int], num_classes: int, image_size: int,
                 root: Path | None = None, subset: int | None = None, seed: int = 0):
        super().__init__(list(arrays), severities, labels, positions, num_classes)
        self.arrays, self.per_severity, self.positions, self.image_size = arrays, per_severity, positions, image_size
        self.root, self.subset, self.seed = root, subset, seed

    def describe(self) -> dict:
        return {"table": "pre-made (CIFAR-C .npy)", "seed": self.seed, "subset": self.subset,
                "backend": None, "source": str(self.root)}

    def _load(self, corruption, severity, positions):
        rows = (severity - 1) * self.per_severity + self.positions[positions].numpy()
        imgs = torch.from_numpy(np.ascontiguousarray(self.arrays[corruption][rows])).permute(0, 3, 1, 2)
        return resize_batch(imgs.contiguous(), self.image_size)


def _pick(found: Sequence[str], corruptions: Sequence[str] | None, where: Path, layout: str) -> list[str]:
    if corruptions is None:
        return [c for c in ALL_CORRUPTIONS if c in found] + sorted(c for c in found if c not in ALL_CORRUPTIONS)
    missing = [c for c in corruptions if c not in found]
    if missing:
        raise ValueError(f"{where}: no data for {missing} (found {sorted(found)}); {layout}")
    return list(corruptions)


def load_imagenet_c(path: str | Path, *, corruptions: Sequence[str] | None = None,
                    severities: Sequence[int] = SEVERITIES, image_size: int = 224,
                    subset: int | None = None, seed: int = 0) -> ImageNetCFolderSet:
    """Open an ImageNet-C style folder (see the module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root} does not exist; {IMAGENET_C_LAYOUT}")
    found = [p.name for p in root.iterdir() if p.is_dir() and any((p / str(s)).is_dir() for s in SEVERITIES)]
    if not found:
        raise ValueError(f"{root} holds no <corruption>/<severity>/ folders; {IMAGENET_C_LAYOUT}")
    names = _pick(found, corruptions, root, IMAGENET_C_LAYOUT)
    first = root / names[0] / str(severities[0])
    if not first.is_dir():
        raise ValueError(f"{first} is missing; {IMAGENET_C_LAYOUT}")
    classes = sorted(p.name for p in first.iterdir() if p.is_dir())
    items, labels = [], []
    for label, cls in enumerate(classes):
        for f in list_images(first / cls):
            items.append(f"{cls}/{f.name}")
            labels.append(label)
    if not items:
        raise ValueError(f"{first} holds no <class>/<image> files; {IMAGENET_C_LAYOUT}")
    pos = _subset_positions(len(items), subset, seed)
    return ImageNetCFolderSet(root, names, severities, [items[i] for i in pos.tolist()],
                              torch.tensor(labels)[pos], len(classes), image_size, subset, seed)


def load_cifar_c(path: str | Path, *, corruptions: Sequence[str] | None = None,
                 severities: Sequence[int] = SEVERITIES, image_size: int = 32, subset: int | None = None,
                 seed: int = 0, num_classes: int | None = None) -> CifarCSet:
    """Open a CIFAR-10-C / CIFAR-100-C folder (see the module docstring)."""
    root = Path(path)
    if not (root / "labels.npy").is_file():
        raise ValueError(f"{root / 'labels.npy'} is missing; {CIFAR_C_LAYOUT}")
    found = [p.stem for p in root.glob("*.npy") if p.stem != "labels"]
    if not found:
        raise ValueError(f"{root} holds no <corruption>.npy; {CIFAR_C_LAYOUT}")
    names = _pick(found, corruptions, root, CIFAR_C_LAYOUT)
    labels_all = _load_npy(root / "labels.npy", mmap=False)
    arrays = {c: _load_npy(root / f"{c}.npy", mmap=True) for c in names}
    total = len(next(iter(arrays.values())))
    for c, a in arrays.items():
        if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3 or len(a) % 5 or len(a) != total:
            raise ValueError(f"{root}/{c}.npy has {a.dtype} {a.shape}; {CIFAR_C_LAYOUT}")
    per = total // 5
    if len(labels_all) not in (per, total):
        raise ValueError(f"{root}/labels.npy has {len(labels_all)} labels for {total} images; {CIFAR_C_LAYOUT}")
    pos = _subset_positions(per, subset, seed)
    labels = torch.from_numpy(labels_all[:per].astype(np.int64))[pos]
    k = num_classes or (100 if int(labels_all.max()) >= 10 else 10)
    return CifarCSet(arrays, per, pos, labels, severities, k, image_size, root, subset, seed)


def _load_npy(file: Path, mmap: bool) -> np.ndarray:
    """``np.load`` with a one-line error naming ``file`` when it is truncated or not a ``.npy``."""
    try:
        return np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{file} is not a readable .npy file (truncated? {first[:100]}); {CIFAR_C_LAYOUT}") from None


def check_against_clean(corrupted: CorruptedSet, clean, image_size: int) -> CorruptedSet:
    """Refuse a pre-made set that does not fit the run's clean test set; pair their images.

    * the number of classes must be the clean set's;
    * CIFAR-C: as many images per severity as the clean test set, with the same labels (item i is
      clean image i);
    * ImageNet-C folder: read at its images' own size (``image_size`` must be it: the folder holds
      Resize + CenterCrop images, so another size reads them differently from the clean set), and
      each ``<class>/<image>`` must be an image of the clean set (same class and file name): the
      set then knows its clean images (``source_indices``), so a subset judges both on the same ones.
    """
    where = getattr(corrupted, "root", "the pre-made set")
    if corrupted.num_classes != clean.num_classes:
        raise ValueError(f"{where}: {corrupted.num_classes} classes, but the clean test set has "
                         f"{clean.num_classes}; give the matching data set (--dataset/--data-path)")
    if isinstance(corrupted, CifarCSet):
        if corrupted.per_severity != len(clean):
            raise ValueError(f"{where}: {corrupted.per_severity} images per severity, but the clean test set has "
                             f"{len(clean)}; item i of a CIFAR-C file is clean test image i (no test subset)")
        clean_labels = getattr(clean, "labels", None)
        if clean_labels is not None and not torch.equal(clean_labels[corrupted.positions].long(), corrupted.labels):
            raise ValueError(f"{where}/labels.npy does not match the clean test set's labels (another data set?)")
    elif isinstance(corrupted, ImageNetCFolderSet):
        w, h = corrupted.stored_size()
        if min(w, h) != image_size:
            raise ValueError(f"{where} holds {w} x {h} px images, but the run reads them at {image_size} px; "
                             f"give --image-size {min(w, h)} (data.image_size)")
        files = getattr(clean, "files", None)
        if files is None:
            raise ValueError(f"{where}: an ImageNet-C folder pairs with an imagefolder clean set (--dataset imagefolder)")
        index = {f"{Path(f).parent.name}/{Path(f).stem}": i for i, f in enumerate(files)}
        src = [index.get(str(Path(item).with_suffix(""))) for item in corrupted.items]
        missing = [item for item, i in zip(corrupted.items, src, strict=True) if i is None]
        if missing:
            raise ValueError(f"{where}: {len(missing)} images are not in the clean test set (e.g. {missing[0]}); "
                             "the folder must be the corrupted copy of that split")
        corrupted.source_indices = torch.tensor(src, dtype=torch.long)
    return corrupted


def load_corrupted_benchmark(path: str | Path, **kwargs) -> CorruptedSet:
    """Open a pre-made benchmark: CIFAR-C if ``path`` holds ``.npy`` files, else an ImageNet-C folder."""
    root = Path(path)
    if (root / "labels.npy").is_file() or any(root.glob("*.npy")):
        return load_cifar_c(root, **kwargs)
    return load_imagenet_c(root, **kwargs)
