"""Run lineage: graph diffs, run records in bundles, and ``netbuilder train --init-from``."""

import io
import itertools
import json

import numpy as np
import pytest
from graphdocs import graph_doc

import engine
from engine import cli
from engine.lineage import GraphDiff, RunRecord, child_record, graph_diff, run_of

BODY = [("in", "Input", {"shape": [2]}), ("d1", "Dense", {"units": 16}), ("r1", "ReLU", {}),
        ("d2", "Dense", {"units": 16}), ("r2", "ReLU", {})]


def model(head_units=2, extra=(), training=None, name="m.json", tmp_path=None):
    nodes = [*BODY, *extra, ("head", "Dense", {"units": head_units}),
             ("out", "Output", {"loss": "cross_entropy"})]
    doc = graph_doc(nodes, list(itertools.pairwise([n[0] for n in nodes])))
    doc["training"] = training or {"dataset": "moons", "epochs": 2, "seed": 1,
                                   "optimizer": {"type": "adam", "lr": 0.01}}
    if tmp_path is None:
        return engine.Graph.from_dict(doc)
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, out, err)
    return code, out.getvalue(), err.getvalue()


def test_graph_diff_names_added_removed_and_changed_nodes():
    parent = model()
    child = model(head_units=3, extra=[("d3", "Dense", {"units": 16})])
    child.nodes["d1"].params["units"] = 32
    child.nodes["d2"].params["init"] = "he"  # the default: no change
    child.set_training("d1", trainable=False)
    child.set_training("d2", lr_mult=0.1)
    child.ui = {"d1": {"pos": [5, 5]}}
    child.remove_node("r1")
    child.connect("d1", "d2")
    diff = graph_diff(parent, child)
    assert diff.added == {"d3": "Dense"} and diff.removed == ["r1"]
    assert diff.changed == {"d1": ["units 16→32", "frozen"], "d2": ["lr_mult 1→0.1"],
                            "head": ["units 2→3"]}
    assert set(diff.edges_added) == {"d1->d2:0", "r2->d3:0", "d3->head:0"}
    assert set(diff.edges_removed) == {"d1->r1:0", "r1->d2:0", "r2->head:0"}
    assert diff.summary().startswith("added d3 (Dense); removed r1; changed d1: units 16→32, "
                                     "frozen;")
    assert GraphDiff.from_dict(json.loads(json.dumps(diff.to_dict()))) == diff
    assert graph_diff(parent, parent.copy()).empty
    assert graph_diff(parent, parent.copy()).summary() == "no change"


def test_a_type_change_under_the_same_id_is_one_change():
    parent = model()
    child = model()
    child.nodes["r1"].type = "Tanh"
    assert graph_diff(parent, child).changed == {"r1": ["type ReLU→Tanh"]}


def test_run_records_round_trip_and_refuse_damage():
    parent = model()
    manifest = {"run": {"run_id": "p1", "epoch": 4}, "metrics": {"epochs": 5}}
    rec = child_record(manifest, parent, model(head_units=3), "runs/p.nbmodel",
                       {"nodes": []}, ["d1"])
    assert rec.parent == {"run_id": "p1", "epoch": 4, "file": "runs/p.nbmodel"}
    assert rec.provenance() == "weights from runs/p.nbmodel, run p1, epoch 4"
    assert rec.diff.changed == {"head": ["units 2→3"]} and rec.frozen == ["d1"]
    back = run_of({"run": json.loads(json.dumps(rec.to_dict()))})
    assert back == rec
    plain = child_record({"metrics": {"epochs": 5}}, parent, parent, None, fine_tune=False)
    assert plain.parent == {"run_id": None, "epoch": 5, "file": None}
    assert plain.weights_from is None and plain.provenance() == ""
    assert run_of({}) is None
    for bad in ({"epoch": 1}, {"run_id": "x", "epoch": -1}, {"run_id": "x", "frozen": "d1"},
                {"run_id": "x", "diff": {"added": ["d1"]}}, {"run_id": "x", "parent": 3},
                {"run_id": "x", "parent": {"epoch": "two"}}):
        with pytest.raises(engine.BundleError):
            RunRecord.from_dict(bad)


def test_train_init_from_fine_tunes_and_records_provenance(tmp_path):
    src = model(tmp_path=tmp_path, name="base.json")
    code, out, err = run(["train", str(src), "--out", str(tmp_path / "base"), "-q"])
    assert code == 0, err
    base_path = tmp_path / "base" / "base.nbmodel"
    base = engine.load_bundle(base_path)
    parent_run = run_of(base.manifest)
    assert parent_run.epoch == 2 and parent_run.parent is None
    tuned = model(head_units=3, name="tuned.json", tmp_path=tmp_path,
                  training={"dataset": "spirals:classes=3", "epochs": 1, "seed": 1,
                            "optimizer": {"type": "adam", "lr": 0.01}})
    code, out, err = run(["train", str(tuned), "--init-from", str(base_path),
                          "--freeze", "d1,d2", "--out", str(tmp_path / "tuned"), "-q"])
    assert code == 0, err
    assert f"weights from {base_path}, run {parent_run.run_id}, epoch 2: kept 2 nodes, " \
           "reinitialised head" in out
    result = engine.load_bundle(tmp_path / "tuned" / "tuned.nbmodel")
    for k in ("d1.weight", "d1.bias", "d2.weight"):
        np.testing.assert_array_equal(result.net.params[k], base.net.params[k])
    assert not np.array_equal(result.net.params["head.weight"][:2],
                              base.net.params["head.weight"])
    rec = run_of(result.manifest)
    assert rec.weights_from == {"file": str(base_path), "run_id": parent_run.run_id,
                                "epoch": 2}
    assert rec.parent["run_id"] == parent_run.run_id and rec.epoch == 1
    assert rec.diff.changed == {"head": ["units 2→3"], "d1": ["frozen"], "d2": ["frozen"]}
    assert rec.frozen == ["d1", "d2"]
    assert {n["node"]: n["fate"] for n in rec.carry["nodes"]}["head"] == "reinitialised"
    assert not result.graph.nodes["d1"].trainable
    code, out, _ = run(["info", str(tmp_path / "tuned" / "tuned.nbmodel")])
    assert code == 0
    assert f"parent: run {parent_run.run_id}, epoch 2 ({base_path})" in out
    assert "graph against its parent: changed d1: frozen; changed d2: frozen; " \
           "changed head: units 2→3" in out
    assert "frozen: d1, d2" in out and "save" in out


def test_continuing_a_bundle_makes_a_child_run_counting_on(tmp_path):
    src = model(tmp_path=tmp_path)
    assert run(["train", str(src), "--out", str(tmp_path / "a"), "-q"])[0] == 0
    first = tmp_path / "a" / "m.nbmodel"
    code, _, err = run(["train", str(first), "--epochs", "1", "--out", str(tmp_path / "b"),
                        "-q"])
    assert code == 0, err
    rec = run_of(engine.load_bundle(tmp_path / "b" / "m.nbmodel").manifest)
    assert rec.parent["run_id"] == run_of(engine.load_bundle(first).manifest).run_id
    assert rec.parent["epoch"] == 2 and rec.epoch == 3
    assert rec.weights_from is None and rec.diff.empty


def test_freeze_names_an_unknown_node(tmp_path):
    src = model(tmp_path=tmp_path)
    code, _, err = run(["train", str(src), "--freeze", "d1,nope", "-q",
                        "--out", str(tmp_path / "x")])
    assert code != 0 and "--freeze: the model has no node 'nope'" in err
