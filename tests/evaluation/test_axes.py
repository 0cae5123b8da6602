"""The other robustness axes: adversarial accuracy (checked against torchattacks), lesion robustness
and distribution-shift readers on tiny synthetic layouts (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from evaluation.axes import AXIS_METRICS, attack, judge_axes, lesion_curve, skipped
from evaluation.data import load_dataset, normalize
from evaluation.data.shifts import imagenet_synsets, load_shift_set
from tests.evaluation.conftest import tiny_vit_kwargs


@pytest.fixture(scope="module")
def vit():
    import timm

    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", **tiny_vit_kwargs()).eval()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "test")


class PixelSpace(nn.Module):
    """torchattacks attacks models that take [0, 1] images: normalisation inside."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(normalize(x))


def test_fgsm_and_pgd_are_torchattacks(vit, digits):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = digits.images[:12].float() / 255, digits.labels[:12]
    eps = 8 / 255
    ours = attack(vit, x, y, kind="fgsm", epsilon=eps)
    ref = torchattacks.FGSM(PixelSpace(vit), eps=eps)(x, y)
    assert (ours - ref).abs().max() < 1e-6
    torch.manual_seed(3)  # torchattacks draws its random start from the global generator
    ref = torchattacks.PGD(PixelSpace(vit), eps=eps, alpha=2.5 * eps / 5, steps=5, random_start=True)(x, y)
    ours = attack(vit, x, y, kind="pgd", epsilon=eps, steps=5, generator=torch.Generator().manual_seed(3))
    assert (ours - ref).abs().max() < 1e-5
    assert (ours - x).abs().max() <= eps + 1e-6 and ours.min() >= 0 and ours.max() <= 1


def test_lesion_skips_each_block(vit, digits):
    x = normalize(digits.images[:4].float() / 255)
    with skipped(vit.blocks[1]):
        lesioned = vit(x)
    h = vit.norm_pre(vit._pos_embed(vit.patch_embed(x)))
    h = vit.blocks[0](h)  # block 1 removed
    assert torch.allclose(lesioned, vit.forward_head(vit.norm(h)), atol=1e-5)
    assert not torch.allclose(lesioned, vit(x))  # the hook is gone after the context
    curve = lesion_curve(vit, digits, positions=torch.arange(20))
    assert len(curve) == len(vit.blocks)
    with pytest.raises(ValueError, match="model.blocks"):
        lesion_curve(nn.Linear(3, 3), digits)


def _tree(root, wnids, per=2, size=20):
    for k, w in enumerate(wnids):
        (root / w).mkdir(parents=True)
        for i in range(per):
            Image.fromarray(np.full((size, size, 3), 10 * k + i, np.uint8)).save(root / w / f"{i}.png")


class Oracle(nn.Module):
    """1,000-class logits: high for the class whose index is stored in the image's brightness."""

    def __init__(self, index_of_level):
        super().__init__()
        self.index_of_level = index_of_level

    def forward(self, x):
        from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

        pix = x * torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1) + torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1)
        level = (pix[:, 0, 0, 0] * 255).round().long() // 10
        logits = torch.zeros(len(x), 1000)
        logits[torch.arange(len(x)), torch.tensor([self.index_of_level[int(v)] for v in level])] = 1
        logits[:, 999] = 5  # a class outside the 200: ignored by the ImageNet-R protocol
        return logits


def test_imagenet_r_maps_onto_the_1000_classes(tmp_path):
    import os

    import timm.data

    info = os.path.join(os.path.dirname(timm.data.__file__), "_info")
    r_wnids = open(os.path.join(info, "imagenet_r_synsets.txt")).read().split()[:3]
    r_index = [int(v) for v in open(os.path.join(info, "imagenet_r_indices.txt")).read().split()[:3]]
    _tree(tmp_path / "r", r_wnids)
    shift = load_shift_set("imagenet_r", tmp_path / "r", image_size=16, num_classes=1000)
    assert [imagenet_synsets().index(w) for w in r_wnids] == r_index  # timm's own R mapping
    assert shift.class_subset.tolist() == sorted(r_index)
    assert sorted(set(shift.dataset.labels.tolist())) == sorted(r_index)
    metrics, _ = judge_axes(Oracle(dict(enumerate(r_index))), load_shift_set(
        "imagenet_r", tmp_path / "r", image_size=16, num_classes=1000).dataset,
        shift_sets={"imagenet_r": str(tmp_path / "r")}, image_size=16)
    assert metrics == {"shift_accuracy/imagenet_r": 100.0}  # class 999 (outside the subset) never wins
    with pytest.raises(ValueError, match="not classes of the model"):
        _tree(tmp_path / "bad", ["n99999999"])
        load_shift_set("imagenet_a", tmp_path / "bad", image_size=16, num_classes=1000)
    with pytest.raises(ValueError, match="1,000 ImageNet classes"):
        load_shift_set("imagenet_sketch", tmp_path / "r", image_size=16, num_classes=3)


def test_cifar10_1_reader(tmp_path):
    np.save(tmp_path / "cifar10.1_v6_data.npy", np.zeros((5, 32, 32, 3), np.uint8))
    np.save(tmp_path / "cifar10.1_v6_labels.npy", np.arange(5))
    shift = load_shift_set("cifar10_1", tmp_path, image_size=32, num_classes=10)
    assert len(shift.dataset) == 5 and shift.class_subset is None
    with pytest.raises(ValueError, match="no CIFAR-10.1 files"):
        load_shift_set("cifar10_1", tmp_path / "..", image_size=32, num_classes=10)
    with pytest.raises(ValueError, match="valid names"):
        load_shift_set("imagenet_v2", tmp_path, image_size=32, num_classes=10)


def test_judge_axes_names_are_objective_names(vit, digits):
    metrics, curves = judge_axes(vit, digits, attacks=("fgsm", "pgd"), epsilon=2 / 255, steps=2, adv_subset=8,
                                 lesion=True, positions=torch.arange(16))
    assert set(metrics) <= set(AXIS_METRICS) and len(metrics) == 4
    assert len(curves["lesion_accuracy"]) == 2 and metrics["lesion_accuracy/worst"] == min(curves["lesion_accuracy"])
    with pytest.raises(ValueError, match="valid attacks"):
        judge_axes(vit, digits, attacks=("cw",))
