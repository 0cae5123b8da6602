"""Pareto fronts, ranks and hypervolumes checked by hand and against exact cell counting."""

from __future__ import annotations

import itertools
import random

import pytest

from search.results.pareto import default_reference, hypervolume, non_dominated, pareto_ranks

# Clean accuracy (max) against mCE (min), the default objectives of a search.
ACC_MCE = [
    [90.0, 80.0],  # 0 front
    [85.0, 70.0],  # 1 front
    [80.0, 75.0],  # 2 dominated by 1 -> rank 2
    [70.0, 60.0],  # 3 front
    [60.0, 65.0],  # 4 dominated by 3 (and 1? no: 85>60, 70>65 -> not dominated by 1) -> rank 2
    [50.0, 90.0],  # 5 dominated by everything -> rank 3
]
DIRS = ["max", "min"]


def test_front_of_accuracy_against_mce():
    assert non_dominated(ACC_MCE, DIRS) == [0, 1, 3]


def test_ranks_peel_fronts_one_after_another():
    assert pareto_ranks(ACC_MCE, DIRS) == [1, 1, 2, 1, 2, 3]


def test_duplicates_and_ties_stay_on_the_front():
    points = [[1.0, 1.0], [1.0, 1.0], [1.0, 2.0]]
    # [1, 2] is dominated (worse in the second objective, equal in the first) under min/min.
    assert non_dominated(points, ["min", "min"]) == [0, 1]
    assert pareto_ranks(points, ["min", "min"]) == [1, 1, 2]


def test_direction_matters():
    points = [[1.0, 1.0], [2.0, 2.0]]
    assert non_dominated(points, ["min", "min"]) == [0]
    assert non_dominated(points, ["max", "max"]) == [1]
    assert non_dominated(points, ["max", "min"]) == [0, 1]


def test_empty_and_bad_input():
    assert non_dominated([], DIRS) == []
    assert pareto_ranks([], DIRS) == []
    assert hypervolume([], DIRS, [0.0, 100.0]) == 0.0
    with pytest.raises(ValueError, match="direction 'up'"):
        non_dominated([[1.0]], ["up"])
    with pytest.raises(ValueError, match="finite"):
        non_dominated([[1.0, float("nan")]], DIRS)
    with pytest.raises(ValueError, match="one value per objective"):
        hypervolume([[1.0, 2.0]], DIRS, [0.0])


def test_hypervolume_two_objectives_by_hand():
    # Reference: accuracy 0 (max), mCE 100 (min). Boxes, from the best accuracy down:
    # (90, 80): 90 x 20 = 1800; (85, 70) adds 85 x 10 = 850; (70, 60) adds 70 x 10 = 700.
    assert hypervolume(ACC_MCE, DIRS, [0.0, 100.0]) == pytest.approx(3350.0)
    # Dominated points change nothing.
    front = [ACC_MCE[i] for i in (0, 1, 3)]
    assert hypervolume(front, DIRS, [0.0, 100.0]) == pytest.approx(3350.0)


def test_hypervolume_ignores_points_outside_the_reference():
    assert hypervolume([[2.0, 2.0], [5.0, 0.5]], ["min", "min"], [3.0, 3.0]) == pytest.approx(1.0)
    assert hypervolume([[3.0, 1.0]], ["min", "min"], [3.0, 3.0]) == 0.0


def test_hypervolume_one_and_three_objectives_by_hand():
    assert hypervolume([[2.0], [5.0]], ["max"], [0.0]) == pytest.approx(5.0)
    # Two unit-cornered boxes in 3-D, minimisation, reference (2, 2, 2):
    # (0,0,1) -> 2*2*1 = 4; (1,1,0) -> 1*1*2 = 2; overlap [1,2]x[1,2]x[1,2] = 1 -> union 5.
    assert hypervolume([[0, 0, 1], [1, 1, 0]], ["min"] * 3, [2, 2, 2]) == pytest.approx(5.0)


def _cell_count(points, reference):
    """Exact hypervolume of integer points (minimisation) by counting the unit cells they dominate."""
    ranges = [range(0, r) for r in reference]
    return sum(
        1 for cell in itertools.product(*ranges) if any(all(p[k] <= cell[k] for k in range(len(cell))) for p in points)
    )


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_hypervolume_matches_cell_counting(dims):
    rng = random.Random(dims)
    reference = [6] * dims
    for _ in range(15):
        points = [[rng.randrange(0, 6) for _ in range(dims)] for _ in range(rng.randrange(1, 9))]
        assert hypervolume(points, ["min"] * dims, reference) == pytest.approx(_cell_count(points, reference))


def test_hypervolume_maximisation_is_the_mirror_of_minimisation():
    rng = random.Random(0)
    points = [[rng.uniform(0, 10) for _ in range(3)] for _ in range(12)]
    mirrored = [[-v for v in p] for p in points]
    assert hypervolume(points, ["max"] * 3, [-1.0] * 3) == pytest.approx(
        hypervolume(mirrored, ["min"] * 3, [1.0] * 3)
    )


def test_default_reference_rule():
    assert default_reference(ACC_MCE, DIRS) == [0.0, 180.0]  # accuracy floor 0; twice the worst mCE
    assert default_reference([[-3.0, 1.0], [-1.0, 1.0]], ["max", "min"]) == [-6.0, 2.0]
    ref = default_reference(ACC_MCE, DIRS)
    # Every point lies strictly inside, so every front point contributes.
    assert hypervolume(ACC_MCE, DIRS, ref) > hypervolume(ACC_MCE[:1], DIRS, ref) > 0
