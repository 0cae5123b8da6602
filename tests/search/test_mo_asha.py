"""MO-ASHA's promotion rule on scripted results whose non-dominated ranking is known, and its Ray adapter.

Objectives throughout: clean accuracy (max) and mCE (min), written as ``(accuracy, mce)``.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from search.trial.rungs import rung_epochs, rung_key
from search.tune.schedulers.mo_asha import CONTINUE, STOP, MOASHARule, admitted, priority_order
from search.tune.schedulers.ray_adapter import MOASHAScheduler

DIRS = ("max", "min")


def test_priority_order_fronts_then_crowding_then_first_objective():
    # A, B, D are mutually non-dominated (front 1); C is dominated by A (front 2).
    a, b, c, d = (90, 50), (80, 40), (70, 60), (85, 45)
    # Front 1 by crowding: A and B are its extremes (infinite distance; A has the better accuracy),
    # D lies between them; then front 2.
    assert priority_order([a, b, c, d], DIRS) == [0, 1, 3, 2]
    # Three fronts in a chain: each point dominates the next.
    assert priority_order([(70, 30), (90, 10), (80, 20)], DIRS) == [1, 2, 0]


def test_priority_order_puts_missing_values_last_and_breaks_exact_ties_by_arrival():
    assert priority_order([(80, math.nan), (70, 60), (90, 10)], DIRS) == [2, 1, 0]
    assert priority_order([(80, 40), (80, 40), (80, 40)], DIRS) == [0, 1, 2]
    assert priority_order([(math.nan, 1.0)], DIRS) == [0]


def test_admitted_is_floor_n_over_eta_at_least_one():
    assert [admitted(n, 2) for n in range(1, 7)] == [1, 1, 1, 2, 2, 3]
    assert [admitted(n, 3) for n in range(1, 8)] == [1, 1, 1, 1, 1, 2, 2]


def test_rung_epochs_strictly_before_the_last_epoch():
    assert rung_epochs(1, 2, 8) == (1, 2, 4)
    assert rung_epochs(1, 2, 9) == (1, 2, 4, 8)
    assert rung_epochs(1, 3, 8) == (1, 3)
    assert rung_epochs(2, 3, 10) == (2, 6)
    assert rung_epochs(1, 2, 2) == (1,)
    assert rung_epochs(1, 2, 8, bracket=1) == (2, 4)
    assert rung_epochs(3, 1.1, 6) == (3, 4, 5)  # ceilings, each rung once
    with pytest.raises(ValueError, match="reduction_factor > 1"):
        rung_epochs(1, 1.0, 8)


def scripted_rule() -> MOASHARule:
    """rf 2, rungs at epochs 1 and 2 (8 epochs: 1, 2, 4)."""
    return MOASHARule(DIRS, grace_period=1, reduction_factor=2, epochs=8)


def test_asynchronous_decisions_on_a_scripted_sequence():
    rule = scripted_rule()
    # Each trial is judged against what rung 1 has seen so far (n points, floor(n / 2) admitted).
    assert rule.decide("t1", 1, (90, 50)) == CONTINUE  # first at the rung
    assert rule.decide("t2", 1, (80, 60)) == STOP  # dominated by t1; 1 of 2 admitted
    # t3 and t1 form front 1 (both extremes); t3 has the better accuracy: first of 3, 1 admitted.
    assert rule.decide("t3", 1, (95, 70)) == CONTINUE
    # Front 1 is now t3, t1, t4 (t4 dominates t2); t4 is an extreme, second of 4, 2 admitted.
    assert rule.decide("t4", 1, (85, 40)) == CONTINUE
    # Dominated by all: fifth of 5, 2 admitted.
    assert rule.decide("t5", 1, (60, 90)) == STOP
    rung = rule.brackets[0][0]
    assert list(rung.values) == ["t1", "t2", "t3", "t4", "t5"]
    assert rung.decisions == {"t1": CONTINUE, "t2": STOP, "t3": CONTINUE, "t4": CONTINUE, "t5": STOP}


def test_a_rung_judges_a_trial_once_and_epochs_between_rungs_continue():
    rule = scripted_rule()
    rule.decide("t1", 1, (90, 50))
    assert rule.decide("t2", 1, (80, 60)) == STOP
    # A resumed trial re-reports rung 1 with other values: same answer, the rung unchanged.
    assert rule.decide("t2", 1, (99, 1)) == STOP
    assert rule.decide("t1", 1, (10, 99)) == CONTINUE
    assert rule.brackets[0][0].values == {"t1": [90.0, 50.0], "t2": [80.0, 60.0]}
    # Epoch 3 lies between rungs 2 and 4: t1 was judged at rung 2 meanwhile, so it continues.
    assert rule.decide("t1", 2, (91, 49)) == CONTINUE
    assert rule.decide("t1", 3, (0, 100)) == CONTINUE
    assert rule.brackets[0][1].values == {"t1": [91.0, 49.0]}


def test_a_missing_objective_ranks_last():
    rule = scripted_rule()
    rule.decide("t1", 1, (50, 90))
    assert rule.decide("t2", 1, (99, math.nan)) == STOP  # better accuracy, but no mCE


def test_one_objective_reduces_to_ashas_top_fraction():
    rule = MOASHARule(("max",), grace_period=1, reduction_factor=2, epochs=4)
    decisions = [rule.decide(f"t{i}", 1, (v,)) for i, v in enumerate([5, 3, 7, 1, 6, 8])]
    # n = 1..6 admit 1, 1, 1, 2, 2, 3: 5 first; 3 < 5; 7 best; 1 last; 6 second of 5; 8 best.
    assert decisions == [CONTINUE, STOP, CONTINUE, STOP, CONTINUE, CONTINUE]


def test_same_order_same_decisions_and_state_round_trip():
    script = [("a", 1, (90, 50)), ("b", 1, (80, 60)), ("c", 1, (95, 70)), ("a", 2, (92, 45)),
              ("d", 1, (85, 40)), ("c", 2, (96, 65)), ("e", 1, (60, 90)), ("d", 2, (70, 80))]
    first, second = scripted_rule(), scripted_rule()
    assert [first.decide(*s) for s in script] == [second.decide(*s) for s in script]
    # Half-way state, saved as JSON and loaded into a fresh rule: the rest goes the same way.
    whole, resumed = scripted_rule(), scripted_rule()
    for s in script[:4]:
        whole.decide(*s)
    resumed.load_state(json.loads(json.dumps(whole.state())))
    assert [resumed.decide(*s) for s in script[4:]] == [whole.decide(*s) for s in script[4:]]
    assert resumed.state() == whole.state()
    # Resumed trials re-report what they reported before the snapshot: nothing changes.
    assert [resumed.decide(*s) for s in script[:4]] == [CONTINUE, STOP, CONTINUE, CONTINUE]
    assert resumed.state() == whole.state()
    other = MOASHARule(DIRS, grace_period=2, reduction_factor=2, epochs=8)
    with pytest.raises(ValueError, match="saved rungs"):
        other.load_state(whole.state())


def test_brackets_start_at_later_rungs_and_are_drawn_per_trial_id():
    rule = MOASHARule(DIRS, grace_period=1, reduction_factor=2, epochs=8, brackets=3, seed=1)
    assert [[r.epoch for r in b] for b in rule.brackets] == [[1, 2, 4], [2, 4], [4]]
    assert rule.rung_epochs == (1, 2, 4)
    ids = [f"trial_{i:05d}" for i in range(300)]
    drawn = [rule.bracket_of(t) for t in ids]
    again = MOASHARule(DIRS, grace_period=1, reduction_factor=2, epochs=8, brackets=3, seed=1)
    assert [again.bracket_of(t) for t in reversed(ids)][::-1] == drawn  # order does not matter
    counts = [drawn.count(s) for s in range(3)]
    assert counts[0] > counts[1] > counts[2] > 0  # Ray's softmax weights e^0, e^-1, e^-2
    # A bracket-2 trial is first judged at epoch 4: epochs 1 and 2 continue without a rung.
    t = ids[drawn.index(2)]
    assert rule.decide(t, 1, (1, 99)) == CONTINUE and rule.decide(t, 2, (1, 99)) == CONTINUE
    assert rule.brackets[2][0].values == {} and rule.brackets[0][0].values == {}


def result(epoch, acc=None, mce=None, **extra):
    """An epoch result (clean accuracy on the whole test set, as every epoch reports it), a rung
    result when ``acc`` is given (the rung set's values; its clean accuracy the same)."""
    out = {"epoch": epoch, "clean_accuracy": 50.0 if acc is None else acc, **extra}
    if acc is not None:
        out.update({rung_key("clean_accuracy"): acc, rung_key("mce"): mce})
    return out


def test_ray_adapter_ranks_clean_accuracy_by_the_epochs_whole_test_set_and_mce_by_the_rung_set():
    scheduler = MOASHAScheduler(scripted_rule(), ["clean_accuracy", "mce"])
    # The rung set's 10 clean images say 100 %; the epoch's whole test set says 91 %. mCE has no epoch
    # value: its rung value counts, whatever else the result carries under "mce".
    rung = {"epoch": 1, "clean_accuracy": 91.0, rung_key("clean_accuracy"): 100.0, rung_key("mce"): 40.0, "mce": 1.0}
    assert scheduler.rung_point(rung) == [91.0, 40.0]
    assert scheduler.rung_point({"epoch": 1, "clean_accuracy": 91.0}) is None  # not a rung result
    # No epoch value (an older trial's result): the rung set's.
    assert scheduler.rung_point({"epoch": 1, rung_key("clean_accuracy"): 70.0, rung_key("mce"): 40.0}) == [70.0, 40.0]
    t1, t2 = (SimpleNamespace(trial_id=t, status=Trial.RUNNING) for t in ("t1", "t2"))
    for t in (t1, t2):
        scheduler.on_trial_add(None, t)
    assert scheduler.on_trial_result(None, t1, result(1, 92, 40)) == TrialScheduler.CONTINUE
    # By the rung set t2 would dominate t1 (100 against 92, same mCE); by the whole test set it does not.
    assert scheduler.on_trial_result(None, t2, rung) == TrialScheduler.STOP
    assert scheduler.rule.brackets[0][0].values == {"t1": [92.0, 40.0], "t2": [91.0, 40.0]}


def test_ray_adapter_judges_rung_results_only_and_keeps_its_rungs_in_the_run_folder(tmp_path):
    trial = {t: SimpleNamespace(trial_id=t, status=Trial.RUNNING) for t in ("t1", "t2", "t3")}
    state = tmp_path / "rungs.json"
    scheduler = MOASHAScheduler(scripted_rule(), ["clean_accuracy", "mce"], state_path=state)
    for t in trial.values():
        scheduler.on_trial_add(None, t)
    assert scheduler.on_trial_result(None, trial["t1"], result(1, 90, 50)) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, trial["t2"], result(1)) == TrialScheduler.CONTINUE  # no rung values
    assert scheduler.on_trial_result(None, trial["t2"], result(1, 80, 60)) == TrialScheduler.STOP
    assert scheduler.num_stopped == 1 and "1/2 continued" in scheduler.debug_string()
    assert json.loads(state.read_text()) == scheduler.rule.state()  # written at every decision
    assert scheduler.set_search_properties("x", "max") is True

    # A search killed now and run again: the scheduler reads the file. Ray restored t1 and t2 from an
    # older snapshot (both pending again), never knew "ghost", and adds a new trial t3.
    ghost = SimpleNamespace(trial_id="ghost", status=Trial.RUNNING)
    scheduler.on_trial_add(None, ghost)
    scheduler.on_trial_result(None, ghost, result(1, 99, 1))
    resumed = MOASHAScheduler(scripted_rule(), ["clean_accuracy", "mce"], state_path=state)
    assert set(resumed.rule.brackets[0][0].values) == {"t1", "t2", "ghost"}
    for t in trial.values():
        t.status = Trial.PENDING
    controller = SimpleNamespace(get_trials=lambda: list(trial.values()), stopped=[])
    controller.stop_trial = lambda t: (controller.stopped.append(t.trial_id), setattr(t, "status", Trial.TERMINATED))
    assert resumed.choose_trial_to_run(controller).trial_id == "t1"
    assert controller.stopped == ["t2"]  # stopped at a rung before the kill: not trained again
    assert list(resumed.rule.brackets[0][0].values) == ["t1", "t2"]  # the ghost is forgotten, in the file too
    assert "ghost" not in json.loads(state.read_text())["brackets"][0][0]["values"]
    # t1 re-reports rung 1 (resumed from an older checkpoint): its first decision; t2 would stay stopped.
    assert resumed.on_trial_result(None, trial["t1"], result(1, 10, 99)) == TrialScheduler.CONTINUE
    assert resumed.on_trial_result(None, trial["t2"], result(2)) == TrialScheduler.STOP
    assert resumed.on_trial_result(None, trial["t3"], result(1, 95, 70)) == TrialScheduler.CONTINUE
    assert list(resumed.rule.brackets[0][0].values) == ["t1", "t2", "t3"]


def test_a_stopped_trial_stays_stopped_and_unknown_trials_are_forgotten():
    rule = scripted_rule()
    rule.decide("t1", 1, (90, 50))
    assert rule.decide("t2", 1, (80, 60)) == STOP and rule.stopped("t2") and not rule.stopped("t1")
    assert rule.decide("t2", 2, (99, 1)) == STOP and rule.brackets[0][1].values == {}
    assert rule.forget(["t2"]) == ["t1"] and rule.brackets[0][0].values == {"t2": [80.0, 60.0]}
