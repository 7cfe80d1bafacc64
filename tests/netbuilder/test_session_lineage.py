"""Runs as a tree through the Qt-free session: a run keeps its replay log and per-epoch
checkpoints, a branch starts from a checkpoint (carried onto an edited graph), the tree
survives the run's bundle (save and reopen, as crash recovery does), and a replay matches."""

from __future__ import annotations

import numpy as np
from monitorkit import example

import engine
from netbuilder.session import RunSession
from netbuilder.session.lineage import branch_start, replay_run
from netbuilder.session.runs import RunsStore, run_from_bundle


def widened(doc, units=12):
    doc = {**doc, "nodes": [dict(n) for n in doc["nodes"]]}
    for n in doc["nodes"]:
        if n["id"] == "hidden":
            n["params"] = {**n["params"], "units": units}
    return doc


def run_doc(session, doc, **kw):
    g = engine.Graph.from_dict(doc)
    run = session.start(g, g.training, threads=1, **kw)
    assert session.run_until_done(timeout_s=300)
    assert run.status == "completed", run.message
    return run


def test_a_branch_is_a_child_with_its_diff_and_the_tree_survives_the_bundle(tmp_path):
    session = RunSession()
    doc = example("xor_mlp", epochs=3)
    parent = run_doc(session, doc)
    assert sorted(parent.checkpoints) == [1, 2, 3] and parent.replay is not None
    assert parent.replay.threads == 1 and len(parent.replay.orders) == 3
    child_doc = widened(example("xor_mlp", epochs=2, optimizer={"type": "sgd", "lr": 0.05,
                                                                "momentum": 0.9}))
    g = engine.Graph.from_dict(child_doc)
    start, report = branch_start(parent, 1, g, g.training)
    assert report.reinitialised == ["hidden", "logits"]
    child = run_doc(session, child_doc, start=start, parent=parent)
    assert child.parent_run is parent and child.parent_epoch == 1
    assert child.step_offset == parent.checkpoints[1].step and child.epoch_offset == 1
    assert child.diff_text() == "from Run 1 at epoch 1: changed hidden: units 8→12"
    assert "on xor" in child.describe_settings()
    assert replay_run(child).match and replay_run(parent).match

    path = child.save_bundle(tmp_path / "child.nbmodel")
    store = RunsStore()
    back = run_from_bundle(path, store.next_number(), store)
    store.add(back)
    first, again = store.runs
    assert again is back and back.parent_run is first
    assert first.run_id == parent.run_id and back.run_id == child.run_id
    assert back.diff_text().endswith("changed hidden: units 8→12")
    assert back.step_offset == child.step_offset and sorted(first.checkpoints) == [1, 2, 3]
    for k, v in child.weights.items():
        np.testing.assert_array_equal(back.weights[k], v)
    verdict = replay_run(back)
    assert verdict.match, verdict.text
    assert engine.lineage.run_of(engine.load_bundle(path).manifest).parent["run_id"] \
        == parent.run_id
    # a second bundle of the same tree links to the runs already there
    again_path = parent.save_bundle(tmp_path / "parent.nbmodel")
    n = len(store.runs)
    dup = run_from_bundle(again_path, store.next_number(), store)
    assert len(store.runs) == n and dup.run_id == parent.run_id and dup.parent_run is None


def test_a_replay_with_another_setting_says_where_it_differs():
    session = RunSession()
    run = run_doc(session, example("xor_mlp", epochs=2))
    run.replay.settings["optimizer"] = {"type": "sgd", "lr": 0.2, "momentum": 0.9}
    verdict = replay_run(run)
    assert not verdict.match and "hidden.weight" in verdict.text
