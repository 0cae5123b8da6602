"""The tracker's memory lives in a folder of its own (Ray writes its stale copies of the experiment
folder's top-level .json files back at every snapshot of a resumed search), and an older run folder's
``tracking.json`` is still read."""

from __future__ import annotations

import json

from search.tracking.state import TrackingState


def test_the_state_is_saved_under_tracking_and_a_legacy_file_is_read(tmp_path):
    state = TrackingState(finish_order=["a"], hypervolume=[[1.0, 1.0]])
    state.save(tmp_path)
    assert (tmp_path / "tracking" / "state.json").is_file() and not (tmp_path / "tracking.json").exists()
    assert TrackingState.load(tmp_path) == state

    old = tmp_path / "old"
    old.mkdir()
    (old / "tracking.json").write_text(json.dumps({"search_id": "s1", "finish_order": ["t"], "search_status": "finished"}))
    loaded = TrackingState.load(old)
    assert loaded.search_id == "s1" and loaded.finish_order == ["t"] and loaded.search_status == "finished"
