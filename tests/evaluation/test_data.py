"""Data sets read from small files written here in the real on-disk formats."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from evaluation.data import load_dataset, normalize
from evaluation.data.corrupted_benchmarks import load_cifar_c, load_corrupted_benchmark, load_imagenet_c

# ------------------------------------------------------------------------------------ digits


def test_digits_split_is_fixed_stratified_and_rgb():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == 360
    assert train.num_classes == test.num_classes == 10
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 per class
    img, label = test[0]
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32 and 0 <= img.min() and img.max() <= 1
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])  # grey as RGB
    again = load_dataset("digits", "test")
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)
    # train and test are disjoint images
    train_set = {bytes(x.numpy().tobytes()) for x in train.images}
    assert not any(bytes(x.numpy().tobytes()) in train_set for x in test.images[:50])


def test_digits_size_and_subset():
    ds = load_dataset("digits", "test", image_size=48)
    assert ds[0][0].shape == (3, 48, 48)
    a = load_dataset("digits", "test", subset=20, seed=1)
    b = load_dataset("digits", "test", subset=20, seed=1)
    c = load_dataset("digits", "test", subset=20, seed=2)
    assert len(a) == 20 and a.num_classes == 10
    assert torch.equal(a.indices, b.indices) and not torch.equal(a.indices, c.indices)


def test_unknown_names():
    with pytest.raises(ValueError, match="valid names"):
        load_dataset("mnist", "test")
    with pytest.raises(ValueError, match="splits"):
        load_dataset("digits", "val")


def test_normalize_uses_timm_constants():
    x = torch.rand(2, 3, 4, 4)
    y = normalize(x)
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1)
    assert torch.allclose(y, (x - mean) / std)
    assert torch.allclose(normalize(x[0]), y[0])


# ------------------------------------------------------------------------------------ CIFAR


def _write_batch(path, data: np.ndarray, labels: list[int], label_key: bytes) -> None:
    with open(path, "wb") as fh:
        pickle.dump({b"data": data.reshape(len(data), -1), label_key: labels, b"batch_label": b"x"}, fh)


def _cifar_images(n: int, offset: int) -> np.ndarray:
    rng = np.random.default_rng(offset)
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


@pytest.fixture
def cifar10_dir(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for i in range(1, 6):
        _write_batch(root / f"data_batch_{i}", _cifar_images(3, i), [i % 10, (i + 1) % 10, 2], b"labels")
    _write_batch(root / "test_batch", _cifar_images(4, 99), [3, 1, 4, 1], b"labels")
    return tmp_path


def test_cifar10_reads_pickle_batches(cifar10_dir):
    test = load_dataset("cifar10", "test", path=str(cifar10_dir))  # parent folder works too
    assert len(test) == 4 and test.num_classes == 10
    img, label = test[2]
    assert label == 4
    assert torch.equal((img * 255).round().to(torch.uint8), torch.from_numpy(_cifar_images(4, 99)[2]))
    train = load_dataset("cifar10", "train", path=str(cifar10_dir / "cifar-10-batches-py"))
    assert len(train) == 15
    assert load_dataset("cifar10", "test", path=str(cifar10_dir), image_size=48)[0][0].shape == (3, 48, 48)


def test_cifar100_fine_labels(tmp_path):
    _write_batch(tmp_path / "train", _cifar_images(2, 1), [55, 99], b"fine_labels")
    _write_batch(tmp_path / "test", _cifar_images(2, 2), [7, 42], b"fine_labels")
    test = load_dataset("cifar100", "test", path=str(tmp_path))
    assert test.num_classes == 100 and [test[i][1] for i in range(2)] == [7, 42]


def test_cifar_missing_and_malformed(tmp_path, cifar10_dir):
    with pytest.raises(ValueError, match="data_batch_1"):
        load_dataset("cifar10", "test", path=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="needs a path"):
        load_dataset("cifar10", "test")
    (cifar10_dir / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="python-pickle"):
        load_dataset("cifar10", "test", path=str(cifar10_dir))


# ------------------------------------------------------------------------------ image folder


@pytest.fixture
def image_tree(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for k in range(2):
                arr = rng.integers(0, 256, size=(40 + 10 * k, 60, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{k}.png")
                Image.fromarray(arr).save(d / f"{k}.jpg", quality=95)
    return tmp_path


def test_imagefolder(image_tree):
    ds = load_dataset("imagefolder", "val", path=str(image_tree), image_size=24)
    assert len(ds) == 8 and ds.num_classes == 2 and ds.classes == ["cat", "dog"]
    img, label = ds[5]
    assert img.shape == (3, 24, 24) and label == 1 and img.max() <= 1
    with pytest.raises(ValueError, match=r"<split>/<class>/<image>"):
        load_dataset("imagefolder", "test", path=str(image_tree))
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset("imagefolder", "val", path=str(image_tree / "missing"))


# --------------------------------------------------------------------- pre-made corrupted sets


def test_imagenet_c_folder(tmp_path):
    rng = np.random.default_rng(1)
    for c in ("fog", "contrast"):
        for s in (1, 2):
            for cls in ("n01", "n02"):
                d = tmp_path / c / str(s) / cls
                d.mkdir(parents=True)
                for k in range(2):
                    value = 10 * s + (100 if c == "fog" else 0)
                    arr = np.full((36, 36, 3), value, dtype=np.uint8)
                    arr[0, 0] = rng.integers(0, 256, 3)
                    Image.fromarray(arr).save(d / f"img{k}.png")
    cs = load_imagenet_c(tmp_path, severities=(1, 2), image_size=32)
    assert cs.corruptions == ("fog", "contrast")  # benchmark order
    assert len(cs) == 4 and cs.num_classes == 2 and cs.labels.tolist() == [0, 0, 1, 1]
    assert cs.source_indices is None
    imgs, labels, pos = next(cs.batches("fog", 2, batch_size=3))
    assert imgs.shape == (3, 3, 32, 32) and labels.tolist() == [0, 0, 1]
    assert round(imgs[0, 1, 16, 16].item() * 255) == 120  # fog, severity 2
    assert isinstance(load_corrupted_benchmark(tmp_path, severities=(1, 2)).view("contrast", 1)[0][0], torch.Tensor)
    with pytest.raises(ValueError, match="no data for"):
        load_imagenet_c(tmp_path, corruptions=["snow"], severities=(1,))
    with pytest.raises(ValueError, match=r"<corruption>/<severity"):
        load_imagenet_c(tmp_path / "fog" / "1" / "n01")


def test_cifar_c_npy(tmp_path):
    n = 6
    # severity-major: the value of every pixel encodes (severity, item)
    arr = np.zeros((5 * n, 32, 32, 3), dtype=np.uint8)
    for s in range(5):
        for i in range(n):
            arr[s * n + i] = 10 * (s + 1) + i
    np.save(tmp_path / "gaussian_noise.npy", arr)
    np.save(tmp_path / "labels.npy", np.tile(np.arange(n) % 10, 5).astype(np.uint8))
    cs = load_corrupted_benchmark(tmp_path)
    assert cs.corruptions == ("gaussian_noise",) and len(cs) == n and cs.num_classes == 10
    assert cs.source_indices.tolist() == list(range(n))  # pairs with CIFAR test image i
    x = cs.load("gaussian_noise", 3, torch.tensor([4]))
    assert round(x[0, 0, 0, 0].item() * 255) == 34
    sub = load_cifar_c(tmp_path, subset=3, seed=0)
    assert len(sub) == 3 and sub.labels.tolist() == (sub.source_indices % 10).tolist()
    np.save(tmp_path / "fog.npy", np.zeros((7, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="severity-major"):
        load_cifar_c(tmp_path)
    with pytest.raises(ValueError, match="labels.npy"):
        load_cifar_c(tmp_path / "nowhere")


def test_cifar_c_folder_without_labels_or_truncated(tmp_path):
    """Issue 15: a CIFAR-C folder without labels.npy was read as an ImageNet-C folder (a misleading
    error), and a truncated .npy gave a raw error; both now name the file."""
    np.save(tmp_path / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=f"{tmp_path / 'labels.npy'} is missing"):
        load_corrupted_benchmark(tmp_path)
    np.save(tmp_path / "labels.npy", np.zeros(10, np.uint8))
    (tmp_path / "fog.npy").write_bytes((tmp_path / "fog.npy").read_bytes()[:3000])
    with pytest.raises(ValueError, match=f"{tmp_path / 'fog.npy'} is not a readable .npy file"):
        load_corrupted_benchmark(tmp_path)
