"""The promotion rule of MO-ASHA: asynchronous successive halving ranked over every objective.

Plain Python (no Ray): :mod:`search.tune.schedulers.ray_adapter` turns it into a Ray Tune scheduler.

A bracket has rungs at epochs ``grace_period * reduction_factor ** k`` (k >= the bracket's index),
strictly before the last epoch (:func:`search.trial.rungs.rung_epochs`). When a trial reports its
values at a rung, it is judged against what that rung has seen so far, as Ray's ASHA judges it
(asynchronous: nobody waits for the rung to fill):

1. the rung's points, the new one last, are put in priority order (:func:`priority_order`):
   non-dominated sorting (front 1 first, then front 2, ...), and inside a front the crowding
   distance of NSGA-II, largest first (the extremes of a front, infinitely far, lead); a tie goes to
   the better first objective, then to the earlier arrival; a point with a missing or NaN value
   comes after every complete one;
2. the rung admits the best ``max(1, floor(n / reduction_factor))`` of its ``n`` points: the new
   trial continues when it is among them, else it stops. The first trial at a rung always continues.

The tie-break is crowding distance rather than Syne Tune's epsilon-net (``NonDominatedPriority``):
both spread the admitted points along the front; crowding distance needs no random seed item, so
the decision is a pure function of the rung's points in arrival order. A trial judged at a rung is
never judged there again: a result of the same rung (a trial resumed from an earlier checkpoint)
gets the decision it got the first time, so no trial is promoted twice and none is stopped after a
promotion; a trial stopped at a rung stays stopped, whatever it reports later. The whole state (the points and decisions of every rung, each trial's bracket) is plain
data (:meth:`MOASHARule.state`) so that a resumed search continues with the same rungs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from search.results.pareto import pareto_ranks
from search.trial.rungs import rung_epochs

CONTINUE, STOP = "continue", "stop"


def _crowding(points: list[list[float]]) -> list[float]:
    """NSGA-II's crowding distance of each point of one front (minimisation view); equal points
    share one distance (that of their value, computed once)."""
    unique = list(dict.fromkeys(tuple(p) for p in points))
    distance = dict(zip(unique, _crowding_distinct([list(u) for u in unique]), strict=True))
    return [distance[tuple(p)] for p in points]


def _crowding_distinct(values: list[list[float]]) -> list[float]:
    n = len(values)
    distance = [0.0] * n
    if n <= 2:
        return [math.inf] * n
    for k in range(len(values[0])):
        order = sorted(range(n), key=lambda i: values[i][k])
        lo, hi = values[order[0]][k], values[order[-1]][k]
        distance[order[0]] = distance[order[-1]] = math.inf
        if hi == lo:
            continue
        for a, i, b in zip(order, order[1:], order[2:], strict=False):
            distance[i] += (values[b][k] - values[a][k]) / (hi - lo)
    return distance


def priority_order(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """The indices of ``points`` best first: by non-dominated front, then crowding distance within
    the front (largest first), then the first objective, then the index (earlier first). Points with
    a non-finite value come last, in index order."""
    complete = [i for i, p in enumerate(points) if all(math.isfinite(float(v)) for v in p)]
    rest = sorted(set(range(len(points))) - set(complete))
    if not complete:
        return rest
    signs = [-1.0 if d == "max" else 1.0 for d in directions]
    minimised = {i: [float(v) * s for v, s in zip(points[i], signs, strict=True)] for i in complete}
    ranks = pareto_ranks([points[i] for i in complete], directions)
    order: list[int] = []
    for front in sorted(set(ranks)):
        members = [i for i, r in zip(complete, ranks, strict=True) if r == front]
        crowd = _crowding([minimised[i] for i in members])
        order += [i for _, i in sorted(zip(crowd, members, strict=True),
                                       key=lambda ci: (-ci[0], minimised[ci[1]][0], ci[1]))]
    return order + rest


def admitted(n: int, reduction_factor: float) -> int:
    """How many of a rung's ``n`` points continue: ``max(1, floor(n / reduction_factor))``."""
    return max(1, math.floor(n / reduction_factor + 1e-9))


@dataclass
class Rung:
    """One rung: its epoch and, in arrival order, each judged trial's values and decision."""

    epoch: int
    values: dict[str, list[float]] = field(default_factory=dict)
    decisions: dict[str, str] = field(default_factory=dict)


class MOASHARule:
    """MO-ASHA's rungs and decisions (see the module docstring).

    Args:
        directions: ``"max"`` / ``"min"`` per objective.
        grace_period, reduction_factor, epochs: the rungs of bracket 0 (:func:`rung_epochs`).
        brackets: number of brackets (bracket s starts at the s-th rung; a bracket without rungs
            runs its trials to the end, as the full-budget bracket of Hyperband).
        seed: seeds which bracket a trial joins (a hash of the seed and the trial id, so that the
            assignment does not depend on the order trials arrive in).
    """

    def __init__(self, directions: Sequence[str], grace_period: int, reduction_factor: float, epochs: int,
                 brackets: int = 1, seed: int = 0) -> None:
        if brackets < 1:
            raise ValueError(f"brackets must be >= 1; given {brackets}")
        self.directions = tuple(directions)
        self.reduction_factor = float(reduction_factor)
        self.seed = int(seed)
        self.brackets = [[Rung(e) for e in rung_epochs(grace_period, reduction_factor, epochs, s)]
                         for s in range(brackets)]
        self.assigned: dict[str, int] = {}

    @property
    def rung_epochs(self) -> tuple[int, ...]:
        """Every epoch that is a rung of some bracket (where trials are judged on the rung set)."""
        return tuple(sorted({r.epoch for rungs in self.brackets for r in rungs}))

    # ---- brackets ----
    def bracket_of(self, trial_id: str) -> int:
        """The bracket of ``trial_id``, drawn once (Ray's ASHA weights: e ** (rungs - most rungs))."""
        if trial_id not in self.assigned:
            sizes = [len(b) for b in self.brackets]
            weights = [math.exp(s - max(sizes)) for s in sizes]
            digest = hashlib.sha256(f"{self.seed}:{trial_id}".encode()).digest()
            u = int.from_bytes(digest[:8], "big") / 2**64 * sum(weights)
            acc, chosen = 0.0, len(weights) - 1
            for i, w in enumerate(weights):
                acc += w
                if u < acc:
                    chosen = i
                    break
            self.assigned[trial_id] = chosen
        return self.assigned[trial_id]

    # ---- the decision ----
    def decide(self, trial_id: str, epoch: int, values: Sequence[float]) -> str:
        """:data:`CONTINUE` or :data:`STOP` for a trial that reports ``values`` (one per objective)
        at ``epoch``: judged at the highest rung of its bracket at or below ``epoch``, once."""
        if len(values) != len(self.directions):
            raise ValueError(f"one value per objective ({len(self.directions)}) needed; given {list(values)}")
        if self.stopped(trial_id):
            return STOP  # stopped at a rung: stays stopped (a resumed trial reporting a later epoch)
        for rung in reversed(self.brackets[self.bracket_of(trial_id)]):
            if epoch < rung.epoch:
                continue
            if trial_id in rung.decisions:
                return rung.decisions[trial_id]  # judged here before: the same answer
            points = [*rung.values.values(), [float(v) for v in values]]
            position = priority_order(points, self.directions).index(len(points) - 1)
            decision = CONTINUE if position < admitted(len(points), self.reduction_factor) else STOP
            rung.values[trial_id] = [float(v) for v in values]
            rung.decisions[trial_id] = decision
            return decision
        return CONTINUE  # below the first rung

    def stopped(self, trial_id: str) -> bool:
        """True when a rung stopped ``trial_id``."""
        return any(r.decisions.get(trial_id) == STOP for rungs in self.brackets for r in rungs)

    def forget(self, keep: Sequence[str]) -> list[str]:
        """Drop every trial but ``keep`` from the rungs and brackets (trials that a resumed experiment
        does not know: started after Ray's last snapshot, they are run again under other ids);
        returns the ids dropped."""
        known = set(keep)
        gone = sorted({t for rungs in self.brackets for r in rungs for t in r.values} - known)
        for rungs in self.brackets:
            for r in rungs:
                for t in gone:
                    r.values.pop(t, None)
                    r.decisions.pop(t, None)
        for t in [t for t in self.assigned if t not in known]:
            del self.assigned[t]
        return gone

    # ---- state (a resumed search continues with it) ----
    def state(self) -> dict[str, Any]:
        """The rungs and brackets as plain data (JSON-ready apart from NaN values)."""
        return {
            "assigned": dict(self.assigned),
            "brackets": [[{"epoch": r.epoch, "values": dict(r.values), "decisions": dict(r.decisions)} for r in rungs]
                         for rungs in self.brackets],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Take the rungs of :meth:`state`; a space whose rungs differ cannot resume into them."""
        epochs = [[r["epoch"] for r in rungs] for rungs in state["brackets"]]
        if epochs != [[r.epoch for r in rungs] for rungs in self.brackets]:
            raise ValueError(f"the saved rungs {epochs} are not this scheduler's "
                             f"{[[r.epoch for r in rungs] for rungs in self.brackets]}")
        self.assigned = dict(state["assigned"])
        self.brackets = [[Rung(r["epoch"], {k: list(v) for k, v in r["values"].items()}, dict(r["decisions"]))
                          for r in rungs] for rungs in state["brackets"]]

    def summary(self) -> str:
        """One line per bracket: each rung's epoch and its continued / judged counts."""
        lines = []
        for s, rungs in enumerate(self.brackets):
            parts = [f"epoch {r.epoch}: {sum(d == CONTINUE for d in r.decisions.values())}/{len(r.decisions)} continued"
                     for r in rungs]
            lines.append(f"bracket {s}: " + ("; ".join(parts) or "no rung (full budget)"))
        return "\n".join(lines)
