"""Trial records: JSON round trip, strict JSON for NaN, unknown keys and statuses rejected."""

from __future__ import annotations

import json
import math

import pytest

from search.results.records import TrialRecord, load_record, load_records, record_path


def test_round_trip_and_sorted_loading(tmp_path):
    b = TrialRecord("b_00001", status="finished", params={"mixer": "fan", "tap_dilations": (1, 2)},
                    history=[{"epoch": 1.0, "train_loss": 0.5}], final={"mce": 40.0, "clean_accuracy": 90.0},
                    full_budget=True)
    a = TrialRecord("a_00000", status="failed", error="TrialDiverged: the loss is nan at epoch 1, step 3")
    b.save(tmp_path)
    a.save(tmp_path)
    records = load_records(tmp_path)
    assert [r.trial_id for r in records] == ["a_00000", "b_00001"]
    assert records[1].params["tap_dilations"] == [1, 2] and records[1].final["mce"] == 40.0
    assert load_record(tmp_path, "a_00000").error.startswith("TrialDiverged")
    assert load_record(tmp_path, "missing") is None and load_records(tmp_path / "nothing") == []
    assert not list((tmp_path / "trials").glob(".*"))  # no temporary file left behind


def test_nan_is_written_as_strict_json_null(tmp_path):
    TrialRecord("t", final={"mce": math.nan, "clean_accuracy": 1.0}).save(tmp_path)
    text = record_path(tmp_path, "t").read_text()
    assert "NaN" not in text and json.loads(text)["final"]["mce"] is None


def test_bad_status_and_unknown_keys_are_rejected():
    with pytest.raises(ValueError, match="status must be one of"):
        TrialRecord("t", status="done")
    with pytest.raises(ValueError, match=r"unknown TrialRecord keys \['extra'\]"):
        TrialRecord.from_dict({"trial_id": "t", "extra": 1})


def test_a_changed_space_cannot_resume_into_the_same_run_folder(tmp_path, capsys):
    import ray

    from search import cli

    space = tmp_path / "s.yaml"
    space.write_text("name: s\nstorage: " + str(tmp_path / "runs") + "\n")
    folder = tmp_path / "runs" / "s"
    folder.mkdir(parents=True)
    (folder / "space.yaml").write_text("name: s\nsearch: {num_trials: 3}\n")
    assert cli.main(["run", str(space)]) == 2
    err = capsys.readouterr().err
    assert "holds a search of a different version of this space" in err and not ray.is_initialized()
