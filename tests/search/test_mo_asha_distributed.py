"""MO-ASHA with ``--address`` on the multi-node test cluster: a node lost while its trial has just
been judged at a rung and promoted (it trains towards the next rung) is retried on the other node
from its last checkpoint, and the rung judges it once: the decision it got stays, no rung forgets it.

The cluster, the space and the node killer are the node-loss tests' (tests/search/test_distributed.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.local_cluster import LocalCluster, trial_nodes
from test_distributed import _epochs_on, _search_killing_a_node, _space_file, cluster  # noqa: F401  (fixture)

from search.results.run_folder import rungs_file
from search.space import load_space
from search.trial.rungs import rung_key

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

EPOCHS = 6
RUNGS = (1, 2, 4)  # grace 1, reduction factor 2, strictly before epoch 6


def test_node_lost_after_a_rung_the_trial_resumes_with_its_rung_decision(
        cluster: LocalCluster, tmp_path: Path) -> None:  # noqa: F811  (the node-loss tests' fixture)
    path = _space_file(tmp_path, "moasha_node", num_trials=4, train_subset=1024, epochs=EPOCHS)
    path.write_text(path.read_text().replace(
        "max_failures: 2}", "max_failures: 2, scheduler: {type: mo_asha, grace_period: 1, reduction_factor: 2}}"))
    space = load_space(path)
    seen: dict = {}

    def promoted(record) -> bool:
        """Running, its last epoch a rung it was judged at, epochs to go: its node is killed."""
        last = record.history[-1] if record.history else {}
        return (record.status == "running" and last.get("epoch") in RUNGS and rung_key("mce") in last
                and len(record.history) < EPOCHS - 1)

    result = _search_killing_a_node(cluster, space, promoted, seen)

    assert seen, "no trial was caught just after a rung"
    assert result.status == "finished"
    records = {r.trial_id: r for r in result.records}
    assert len(records) == 4 and all(r.status in ("finished", "stopped") for r in records.values())
    # The caught trial went on on the other node, from its checkpoint at the rung or before it.
    rows = trial_nodes(space.experiment_path)[seen["trial"]]
    before = _epochs_on(rows, seen["ip"])
    others = {ip for ip, _ in rows} - {seen["ip"]}
    assert before and len(others) == 1, rows
    caught = records[seen["trial"]]
    epochs = [h["epoch"] for h in caught.history]
    assert epochs == sorted(set(epochs)) and epochs[0] == 1, epochs  # every epoch once in its record
    # Each rung holds every trial that reached it once, with the values of its record and the
    # decision its record shows: promoted trials were never stopped there, stopped ones trained no further.
    state = json.loads(rungs_file(space.run_folder).read_text())
    for rung in state["brackets"][0]:
        reached = {t for t, r in records.items() if any(h["epoch"] == rung["epoch"] for h in r.history)}
        assert set(rung["values"]) == reached, (rung["epoch"], rung["values"], reached)
        for t in reached:
            assert rung["decisions"][t] == ("stop" if records[t].stop_epoch == rung["epoch"] else "continue")
    judged_at = [e for e in RUNGS if e <= before[-1]]
    assert all(state["brackets"][0][RUNGS.index(e)]["decisions"][seen["trial"]] == "continue" for e in judged_at)
