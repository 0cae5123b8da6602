"""Pareto fronts, non-dominated sorting and hypervolume for several objectives.

Pure Python and NumPy (no Ray, Optuna or MLflow), so the runner, the tracker and the CLI share one
definition of "the front". Every function takes ``points`` (one sequence of objective values per
point, all of the same length) and ``directions`` (one ``"max"`` or ``"min"`` per objective).
Internally everything is turned into minimisation by negating the maximised objectives.

Values must be finite: callers drop failed or unfinished trials (no value) before asking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Direction = str  # "max" | "min"
DIRECTIONS = ("max", "min")


def _as_minimisation(points: Sequence[Sequence[float]], directions: Sequence[Direction]) -> np.ndarray:
    """Return a float array (n_points, n_objectives) where smaller is better in every column."""
    dirs = list(directions)
    for d in dirs:
        if d not in DIRECTIONS:
            raise ValueError(f"direction {d!r} is not valid; expected one of {', '.join(DIRECTIONS)}")
    if not dirs:
        raise ValueError("at least one objective direction is needed; got none")
    arr = np.asarray([list(map(float, p)) for p in points], dtype=float).reshape(-1, len(dirs))
    if arr.shape[0] != len(points):
        raise ValueError(f"every point needs {len(dirs)} values (one per direction); got {list(points)!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("points must hold finite values only; drop trials without a result first")
    signs = np.array([-1.0 if d == "max" else 1.0 for d in dirs])
    return arr * signs  # (n, m), minimise every column


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """True when ``a`` is no worse than ``b`` everywhere and better somewhere (minimisation)."""
    return bool(np.all(a <= b) and np.any(a < b))


def _front_of(values: np.ndarray, candidates: list[int]) -> list[int]:
    """Indices among ``candidates`` that no other candidate dominates (ties stay on the front)."""
    front = []
    for i in candidates:
        if not any(_dominates(values[j], values[i]) for j in candidates if j != i):
            front.append(i)
    return front


def non_dominated(points: Sequence[Sequence[float]], directions: Sequence[Direction]) -> list[int]:
    """Indices (ascending) of the points on the Pareto front.

    A point is on the front when no other point is at least as good in every objective and strictly
    better in one. Duplicate points are all kept on the front.
    """
    if len(points) == 0:
        return []
    values = _as_minimisation(points, directions)
    return _front_of(values, list(range(len(values))))


def pareto_ranks(points: Sequence[Sequence[float]], directions: Sequence[Direction]) -> list[int]:
    """Non-dominated sorting: the rank of every point, 1 for the front, 2 for the front once it is
    removed, and so on (the ranking of NSGA-II)."""
    if len(points) == 0:
        return []
    values = _as_minimisation(points, directions)
    ranks = [0] * len(values)
    remaining = list(range(len(values)))
    rank = 1
    while remaining:
        front = _front_of(values, remaining)
        for i in front:
            ranks[i] = rank
        front_set = set(front)
        remaining = [i for i in remaining if i not in front_set]
        rank += 1
    return ranks


def default_reference(points: Sequence[Sequence[float]], directions: Sequence[Direction]) -> list[float]:
    """A generous reference point for :func:`hypervolume`, worse than every given point.

    Rule, per objective, from the worst value ``w`` among the points and their range ``r``:
    - maximised and all values >= 0 (accuracies, retention, percentages): ``0``;
    - maximised otherwise: ``w - max(|w|, r, 1)``;
    - minimised: ``w + max(|w|, r, 1)`` (twice the worst value for positive errors such as mCE).
    The margin keeps the extreme points of the front contributing; a search fixes the point once
    (see :mod:`search.tracking`) so that its hypervolume history stays comparable step by step.
    """
    values = _as_minimisation(points, directions)  # validates; minimisation view
    if values.shape[0] == 0:
        raise ValueError("a reference point needs at least one point")
    raw = np.asarray([list(map(float, p)) for p in points], dtype=float)
    reference = []
    for k, d in enumerate(directions):
        col = raw[:, k]
        spread = float(col.max() - col.min())
        if d == "max":
            worst = float(col.min())
            reference.append(0.0 if worst >= 0 else worst - max(abs(worst), spread, 1.0))
        else:
            worst = float(col.max())
            reference.append(worst + max(abs(worst), spread, 1.0))
    return reference


def _hv2d(values: np.ndarray, ref: np.ndarray) -> float:
    """Exact 2-D hypervolume (minimisation) by a sweep over the points sorted on the first axis."""
    order = np.lexsort((values[:, 1], values[:, 0]))  # by x, then y
    volume = 0.0
    best_y = ref[1]
    for i in order:
        x, y = values[i]
        if y < best_y:
            volume += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(volume)


def _wfg(values: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume in any dimension: the WFG algorithm (While, Bradstreet, Barone 2012).

    ``values`` holds points that all strictly dominate ``ref`` (minimisation). Each point adds its
    exclusive contribution: its own box minus what the points after it already cover, limited to it.
    """
    if values.shape[0] == 0:
        return 0.0
    if values.shape[1] == 2:
        return _hv2d(values, ref)
    # Sorting by the last objective keeps the limited sets small (the usual WFG heuristic).
    values = values[np.argsort(values[:, -1])]
    volume = 0.0
    for i in range(values.shape[0]):
        point = values[i]
        box = float(np.prod(ref - point))
        rest = values[i + 1 :]
        if rest.shape[0]:
            limited = np.maximum(rest, point)  # each later point clipped to the part inside this box
            keep = _front_of(limited, list(range(limited.shape[0])))
            limited = np.unique(limited[keep], axis=0)
            box -= _wfg(limited, ref)
        volume += box
    return volume


def hypervolume(
    points: Sequence[Sequence[float]],
    directions: Sequence[Direction],
    reference: Sequence[float],
) -> float:
    """The volume of objective space dominated by ``points`` and bounded by ``reference``.

    ``reference`` is given in the objectives' own units and directions (e.g. ``[0.0, 200.0]`` for
    maximised accuracy and minimised mCE); points that are not strictly better than it in every
    objective contribute nothing. Exact for any number of objectives (a sweep for two, WFG beyond);
    one objective gives the length from the best value to the reference.
    """
    if len(reference) != len(directions):
        raise ValueError(f"reference {list(reference)!r} needs one value per objective ({len(directions)})")
    ref_values = [float(r) for r in reference]
    if not all(math.isfinite(r) for r in ref_values):
        raise ValueError(f"reference {list(reference)!r} must hold finite values")
    if len(points) == 0:
        return 0.0
    values = _as_minimisation(points, directions)
    ref = _as_minimisation([ref_values], directions)[0]
    values = values[np.all(values < ref, axis=1)]  # only points inside the reference box count
    if values.shape[0] == 0:
        return 0.0
    if values.shape[1] == 1:
        return float(ref[0] - values[:, 0].min())
    front = _front_of(values, list(range(values.shape[0])))
    values = np.unique(values[front], axis=0)
    return _wfg(values, ref)
