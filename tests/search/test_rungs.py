"""The rung set: a seeded subset of the search's corrupted set, every corruption and severity kept."""

from __future__ import annotations

import math

import torch

from evaluation.corrupted_set import TensorCorruptedSet
from search.trial.rung_set import RungSet, rung_positions, rung_set
from search.trial.rungs import rung_key, rung_values


def corrupted(n: int = 40) -> TensorCorruptedSet:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 3, n, 3, 4, 4), generator=g, dtype=torch.uint8)
    return TensorCorruptedSet(images, torch.arange(n) % 10, torch.arange(n) + 100, ["fog", "snow"], [1, 3, 5], 10)


def test_rung_set_is_the_same_seeded_items_at_every_corruption_and_severity():
    full = corrupted()
    sub = rung_set(full, 12, seed=3)
    assert isinstance(sub, RungSet) and len(sub) == 12
    assert torch.equal(sub.positions, rung_positions(40, 12, 3))  # the same draw every time
    assert not torch.equal(sub.positions, rung_positions(40, 12, 4))
    assert sub.corruptions == full.corruptions and sub.severities == full.severities
    assert torch.equal(sub.labels, full.labels[sub.positions])
    assert torch.equal(sub.source_indices, full.source_indices[sub.positions])
    for c in full.corruptions:
        for s in full.severities:
            images = torch.cat([x for x, _, _ in sub.batches(c, s, batch_size=5)])
            assert torch.equal(images, full.load(c, s, sub.positions))
    assert rung_set(full, 40, seed=3) is full and rung_set(full, 500, seed=3) is full


def test_rung_values_read_the_rung_keys_only():
    assert rung_values({"epoch": 2, "mce": 80.0}, ["clean_accuracy", "mce"]) is None
    values = rung_values({"epoch": 2, rung_key("mce"): 80.0, "clean_accuracy": 60.0}, ["clean_accuracy", "mce"])
    assert math.isnan(values[0]) and values[1] == 80.0
