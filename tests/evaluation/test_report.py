"""evaluate() -> RobustnessReport on real digits, with hand-checkable models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evaluation.corrupted_set import TensorCorruptedSet, build_corrupted_set
from evaluation.data import load_dataset
from evaluation.metrics import ALEXNET_ERRORS
from evaluation.report import evaluate

CONTRACT_KEYS = {"clean_accuracy", "mce", "relative_mce", "mean_corruption_error", "retention",
                 "corrupted_accuracy"}


class AlwaysZero(nn.Module):
    """Predicts class 0 for every image (a real, if useless, classifier)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 10)
        logits[:, 0] = 1
        return logits


@pytest.fixture(scope="module")
def digits_set(tmp_path_factory):
    clean = load_dataset("digits", "test")
    cs = build_corrupted_set(clean, corruptions=["gaussian_noise", "fog", "spatter"], severities=[1, 5],
                             table="cifar10", seed=0, subset=40, cache_dir=tmp_path_factory.mktemp("c"),
                             progress=False)
    return clean, cs


def test_bookkeeping_by_hand(digits_set):
    clean, cs = digits_set
    report = evaluate(AlwaysZero(), clean, cs, normalization="alexnet", batch_size=16)
    # the corrupted set's 40 images, not all 360: clean and corrupted accuracy on the same images
    clean_acc = 100 * (clean.labels[cs.source_indices] == 0).float().mean().item()
    assert report.num_clean == 40
    err = 100 - 100 * (cs.labels == 0).float().mean().item()
    assert report.clean_accuracy == pytest.approx(clean_acc)
    assert report.errors == {c: {1: pytest.approx(err), 5: pytest.approx(err)} for c in cs.corruptions}
    assert set(report.ce) == {"gaussian_noise", "fog"}  # spatter has no AlexNet error
    assert report.ce["fog"] == pytest.approx(100 * err / ALEXNET_ERRORS["fog"])
    assert report.retention == pytest.approx(100 * (100 - err) / clean_acc)
    assert report.attention_stability is None and report.head_diversity is None
    flat = report.to_flat_dict()
    assert CONTRACT_KEYS <= set(flat) and "attention_stability" not in flat
    assert flat["ce/fog"] == report.ce["fog"] and flat["error/spatter/5"] == pytest.approx(err)
    assert all(isinstance(v, float) for v in flat.values())
    table = report.to_table()
    assert "gaussian_noise" in table and "mCE" in table and "clean accuracy" in table


def test_attention_metrics(digits_set, attention_vit):
    clean, cs = digits_set
    report = evaluate(attention_vit, clean, cs, normalization="none", batch_size=32)
    flat = report.to_flat_dict()
    assert {"attention_stability", "head_diversity"} <= set(flat)
    assert 0 < flat["attention_stability"] <= 1 and 0 <= flat["head_diversity"] <= 1
    assert set(report.attention_stability_per_corruption) == set(cs.corruptions)
    assert flat["mce"] == pytest.approx(flat["mean_corruption_error"])  # unnormalised convention


def test_identity_corruption_is_perfectly_stable(digits_set, attention_vit):
    clean, cs = digits_set
    same = clean.images[cs.source_indices][None, None]  # "corrupted" = clean: (1, 1, N, 3, H, W)
    ident = TensorCorruptedSet(same, cs.labels, cs.source_indices, ["contrast"], [1], 10)
    report = evaluate(attention_vit, clean, ident, normalization="none")
    assert report.attention_stability == pytest.approx(1.0, abs=1e-5)
    sub_acc = 100 - report.errors["contrast"][1]
    with torch.no_grad():
        from evaluation.data import normalize

        pred = attention_vit(normalize(same[0, 0].float() / 255)).argmax(-1)
    assert sub_acc == pytest.approx(100 * (pred == cs.labels).float().mean().item())


def test_bad_normalization(digits_set):
    clean, cs = digits_set
    with pytest.raises(ValueError, match="alexnet"):
        evaluate(AlwaysZero(), clean, cs, normalization="imagenet")
    with pytest.raises(ValueError, match="forward_with_attention"):
        evaluate(AlwaysZero(), clean, cs, attention=True)


def test_zoo_model_with_attention(digits_set):
    pytest.importorskip("components")  # the zoo (issue 2); skipped where it is not installed
    import timm

    clean, cs = digits_set
    model = timm.create_model("robust_vit_digits_p4_32", num_classes=10)
    flat = evaluate(model, clean, cs, normalization="none", batch_size=64).to_flat_dict()
    assert 0 < flat["attention_stability"] <= 1 + 1e-6 and 0 <= flat["head_diversity"] <= 1 + 1e-6


def test_attention_sample_keeps_accuracies(digits_set, attention_vit):
    clean, cs = digits_set
    full = evaluate(attention_vit, clean, cs, normalization="none", attention_items=None, batch_size=32)
    part = evaluate(attention_vit, clean, cs, normalization="none", attention_items=8, batch_size=32)
    assert part.errors == full.errors and part.clean_accuracy == full.clean_accuracy
    assert part.attention_stability is not None and part.head_diversity is not None
    off = evaluate(attention_vit, clean, cs, normalization="none", attention=False)
    assert off.errors == full.errors and off.attention_stability is None


def test_subset_judges_clean_and_corrupted_on_the_same_images(digits_set):
    """Issue 15: with a subset, clean accuracy came from all 360 test images and corrupted accuracy
    from the 40 of the subset, so retention and relative mCE mixed two image sets."""
    clean, cs = digits_set
    inside = set(cs.source_indices.tolist())

    class RightOutsideSubset(nn.Module):  # right on the 320 images outside the subset, wrong inside
        def forward(self, x):
            hits = (clean.images.float()[None] / 255 - _unnormalize(x)[:, None]).abs().flatten(2).amax(2) < 1e-3
            idx = hits.float().argmax(1)
            wrong = torch.tensor([int(i) in inside for i in idx.tolist()])
            labels = clean.labels[idx]
            return nn.functional.one_hot(torch.where(wrong, (labels + 1) % 10, labels), 10).float()

    report = evaluate(RightOutsideSubset(), clean, cs, normalization="none", batch_size=64)
    assert report.clean_accuracy == 0.0 and report.num_clean == len(cs)


def _unnormalize(x):
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    return x * torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1) + torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1)


def test_report_names_its_setup_and_relative_ce(digits_set):
    clean, cs = digits_set
    plain = evaluate(AlwaysZero(), clean, cs, normalization="none", batch_size=64)
    table = plain.to_table()
    assert "table cifar10, seed 0, backend torch, subset 40 images" in table
    head = next(line for line in table.splitlines() if line.startswith("corruption"))
    assert head.split() == ["corruption", "s1", "s5", "mean", "rel", "CE"]  # no CE column equal to the mean
    flat = plain.to_flat_dict()
    assert set(plain.relative_ce) == set(cs.corruptions)
    assert all(f"relative_ce/{c}" in flat for c in cs.corruptions)
    assert plain.to_json_dict()["setup"]["table"] == "cifar10"
    normed = evaluate(AlwaysZero(), clean, cs, normalization="alexnet", batch_size=64).to_table()
    assert next(line for line in normed.splitlines() if line.startswith("corruption")).split()[-3:] == ["CE", "rel", "CE"]
