"""Rung truth: Spearman's rho between what a scheduler ranked trials by at a rung and their final
objectives, over the trials that ran to the end."""

from __future__ import annotations

import pytest

from search.results.records import TrialRecord
from search.results.rung_truth import rung_correlations, spearman

OBJECTIVES = [("clean_accuracy", "max"), ("mce", "min")]


def _record(trial_id: str, epoch_acc: float, rung_acc: float, rung_mce: float, final_acc: float,
            final_mce: float) -> TrialRecord:
    history = [{"epoch": 1, "clean_accuracy": epoch_acc, "rung/clean_accuracy": rung_acc, "rung/mce": rung_mce},
               {"epoch": 2, "clean_accuracy": final_acc}]
    return TrialRecord(trial_id, status="finished", history=history, full_budget=True,
                       final={"clean_accuracy": final_acc, "mce": final_mce})


def test_spearman_is_scipys_with_ties_and_refuses_too_little():
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)
    assert spearman([1, 2, 2, 3], [4, 3, 2, 1]) == pytest.approx(-0.9486833)  # ties: mean ranks
    assert spearman([1, 2], [1, 2]) is None  # fewer than 3 trials
    assert spearman([5, 5, 5], [1, 2, 3]) is None  # a constant side has no rank order


def test_an_epoch_metric_is_judged_by_the_epochs_value_and_mce_by_the_rung_sets():
    # The rung set's 10 clean images rank the trials backwards; the epoch's value (the whole test
    # set, what ASHA and MO-ASHA rank by) ranks them as the end does. mCE exists only on the rung set.
    records = [
        _record("a", epoch_acc=50, rung_acc=90, rung_mce=80, final_acc=60, final_mce=70),
        _record("b", epoch_acc=60, rung_acc=80, rung_mce=70, final_acc=70, final_mce=60),
        _record("c", epoch_acc=70, rung_acc=70, rung_mce=60, final_acc=80, final_mce=50),
        _record("d", epoch_acc=80, rung_acc=60, rung_mce=90, final_acc=90, final_mce=40),
    ]
    by_metric = {c.metric: c for c in rung_correlations(records, OBJECTIVES, [1])}
    assert by_metric["clean_accuracy"].rho == pytest.approx(1.0)  # the rung set's values would give -1
    assert by_metric["mce"].rho == pytest.approx(spearman([80, 70, 60, 90], [70, 60, 50, 40]))
    assert by_metric["mce"].trials == 4


def test_stopped_or_unfinished_trials_do_not_count():
    records = [_record(t, e, e, e, e, e) for t, e in (("a", 1.0), ("b", 2.0), ("c", 3.0))]
    records.append(TrialRecord("s", status="stopped", history=records[0].history, stop_epoch=1,
                               final={"clean_accuracy": 0.0, "mce": 99.0}))
    assert {c.trials for c in rung_correlations(records, OBJECTIVES, [1])} == {3}
