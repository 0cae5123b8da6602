"""Metric functions against values computed by hand."""

from __future__ import annotations

import json
import math

import pytest
import torch

from evaluation.metrics import (
    ALEXNET,
    ALEXNET_ERRORS,
    Baseline,
    attention_stability,
    head_diversity,
    load_baseline,
    summarize_errors,
)


def test_alexnet_ce_by_hand():
    # gaussian_noise: errors 50..90 (sum 350) over AlexNet's 5 x 88.6428 = 443.214 -> 78.969...
    errors = {"gaussian_noise": {1: 50, 2: 60, 3: 70, 4: 80, 5: 90},
              "brightness": dict.fromkeys(range(1, 6), 56.4592)}
    out = summarize_errors(errors, clean_error=20.0, baseline=ALEXNET)
    assert out.ce["gaussian_noise"] == pytest.approx(100 * 350 / 443.214)
    assert out.ce["brightness"] == pytest.approx(100.0)  # equal to AlexNet -> CE 100
    assert out.mce == pytest.approx((100 * 350 / 443.214 + 100) / 2)
    # relative: (350 - 5 * 20) / (443.214 - 5 * 43.45) = 250 / 225.964
    assert out.relative_ce["gaussian_noise"] == pytest.approx(100 * 250 / 225.964)
    # mean corruption error over all 10 numbers; retention = corrupted acc / clean acc
    mean_err = (350 + 5 * 56.4592) / 10
    assert out.mean_corruption_error == pytest.approx(mean_err)
    assert out.corrupted_accuracy == pytest.approx(100 - mean_err)
    assert out.retention == pytest.approx(100 * (100 - mean_err) / 80)


def test_severity_subset_uses_mean_baseline():
    out = summarize_errors({"fog": {3: 40.0}}, clean_error=10.0, baseline=ALEXNET)
    assert out.ce["fog"] == pytest.approx(100 * 40 / ALEXNET_ERRORS["fog"])


def test_extra_corruptions_have_no_alexnet_ce():
    out = summarize_errors({"fog": {1: 40.0}, "spatter": {1: 10.0}}, 5.0, ALEXNET)
    assert set(out.ce) == {"fog"}
    assert out.mean_corruption_error == pytest.approx(25.0)  # both count here


def test_unnormalised_cifar_convention():
    errors = {"fog": {1: 10.0, 2: 30.0}, "snow": {1: 20.0, 2: 40.0}}
    out = summarize_errors(errors, clean_error=5.0, baseline=None)
    assert out.ce == {"fog": 20.0, "snow": 30.0}
    assert out.mce == pytest.approx(25.0) and out.mean_corruption_error == pytest.approx(25.0)
    assert out.relative_ce == {"fog": 15.0, "snow": 25.0}
    assert out.retention == pytest.approx(100 * 75 / 95)


def test_baseline_json_and_csv(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps(
        {"clean": 30.0, "errors": {"fog": 50.0, "snow": [10, 20, 30, 40, 50]}}))
    b = load_baseline(tmp_path / "b.json")
    assert b.clean == 30.0 and b.total("fog", [1, 2]) == 100.0 and b.total("snow", [2, 5]) == 70.0
    out = summarize_errors({"snow": {2: 20.0, 5: 50.0}}, 10.0, b)
    assert out.ce["snow"] == pytest.approx(100.0)
    assert out.relative_ce["snow"] == pytest.approx(100 * (70 - 20) / (70 - 60))
    (tmp_path / "b.csv").write_text("corruption,severity,error\nclean,,30\nfog,mean,50\n"
                                    + "".join(f"snow,{s},{10 * s}\n" for s in range(1, 6)))
    c = load_baseline(tmp_path / "b.csv")
    assert c.clean == 30.0 and c.errors["fog"] == 50.0 and c.errors["snow"] == (10, 20, 30, 40, 50)
    (tmp_path / "bad.json").write_text('{"errors": {"fog": [1, 2]}}')
    with pytest.raises(ValueError, match="5 values"):
        load_baseline(tmp_path / "bad.json")
    (tmp_path / "bad.csv").write_text("name,value\nfog,3\n")
    with pytest.raises(ValueError, match="corruption,severity,error"):
        load_baseline(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="does not exist"):
        load_baseline(tmp_path / "none.json")


def test_baseline_without_clean_has_no_relative():
    out = summarize_errors({"fog": {1: 10.0}}, 5.0, Baseline("b", {"fog": 20.0}))
    assert out.ce["fog"] == pytest.approx(50.0) and math.isnan(out.relative_mce)


def test_attention_stability_by_hand():
    # one layer, one image, one head, two rows
    clean = [torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])]
    same = attention_stability(clean, clean)
    assert same.tolist() == pytest.approx([1.0])
    other = [torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]]])]
    # row 1: orthogonal -> 0; row 2: identical -> 1; mean 0.5
    assert attention_stability(clean, other).tolist() == pytest.approx([0.5])
    # two layers average: 1 and 0.5 -> 0.75
    assert attention_stability(clean * 2, clean + other).tolist() == pytest.approx([0.75])
    with pytest.raises(ValueError, match="same"):
        attention_stability(clean, clean * 2)


def test_head_diversity_by_hand():
    identical = torch.full((1, 3, 2, 2), 0.5)
    assert head_diversity([identical]).tolist() == pytest.approx([1.0])
    disjoint = torch.zeros(1, 2, 2, 2)
    disjoint[0, 0, :, 0] = 1  # head 0 attends token 0, head 1 token 1
    disjoint[0, 1, :, 1] = 1
    assert head_diversity([disjoint]).tolist() == pytest.approx([0.0])
    # layers average: 1 and 0 -> 0.5 (with 3 heads vs 2 heads)
    assert head_diversity([identical, disjoint]).tolist() == pytest.approx([0.5])


def test_attention_stability_broadcasts_groups():
    g = torch.Generator().manual_seed(0)
    clean = [torch.rand(3, 2, 4, 4, generator=g).softmax(-1) for _ in range(2)]
    corr = [torch.rand(5, 3, 2, 4, 4, generator=g).softmax(-1) for _ in range(2)]
    grouped = attention_stability(clean, corr)
    assert grouped.shape == (5, 3)
    for i in range(5):
        assert torch.allclose(grouped[i], attention_stability(clean, [m[i] for m in corr]))
