"""The run tree in a bundle (engine.run_tree) and ``netbuilder replay`` with its exit codes."""

import io
import json
import zipfile

import numpy as np
import pytest
from test_replay import TRAINING, graph, train

import engine
from engine import cli
from engine.data import load_dataset
from engine.errors import BundleError
from engine.lineage import graph_diff
from engine.replay import Checkpoint
from engine.run_tree import INDEX, TreeRun, find_run, read_tree, tree_members


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, out, err)
    return code, out.getvalue(), err.getvalue()


def rewrite(path, change):
    """Rewrite the bundle's runs.json through ``change(index)``."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    index = json.loads(members[INDEX])
    change(index)
    members[INDEX] = json.dumps(index).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)


@pytest.fixture(scope="module")
def tree_bundle(tmp_path_factory):
    """A bundle keeping a parent run and a child branched from its epoch 1 (wider d2 is not
    possible from a checkpoint, so the child changes the learning rate and epochs)."""
    data = load_dataset(TRAINING["dataset"])
    parent, ptape = train(graph(), data)
    ck = ptape.checkpoints[1]
    child_settings = {**TRAINING, "epochs": 2, "optimizer": {"type": "adam", "lr": 0.003}}
    cg = graph(training=child_settings)
    child, ctape = train(cg, data, start=ck)
    runs = [TreeRun("p-1", "Run 1", graph().to_dict(), TRAINING, None, {"name": "moons"},
                    "completed", "", {"epoch": [1, 2, 3]}, None, ptape.log,
                    Checkpoint(3, parent.step, parent.net.state_dict()),
                    dict(ptape.checkpoints)),
            TreeRun("c-2", "Run 2", cg.to_dict(), child_settings,
                    {"run_id": "p-1", "epoch": 1, "step": ck.step}, {}, "completed", "",
                    None, graph_diff(graph(), cg).to_dict(), ctape.log,
                    Checkpoint(2, child.step, child.net.state_dict()), {}, ck)]
    path = tmp_path_factory.mktemp("tree") / "tree.nbmodel"
    engine.save_bundle(path, child.net, extra=tree_members(runs))
    return path, parent, child


def test_the_run_tree_round_trips_through_the_bundle(tree_bundle):
    path, parent, child = tree_bundle
    runs = read_tree(path)
    assert [r.run_id for r in runs] == ["p-1", "c-2"]
    p, c = runs
    assert c.parent == {"run_id": "p-1", "epoch": 1, "step": c.start.step}
    assert sorted(p.checkpoints) == [1, 2, 3]
    for k, v in parent.net.state_dict().items():
        np.testing.assert_array_equal(p.final.weights[k], v)
    ck = p.checkpoints[1]
    np.testing.assert_array_equal(c.start.weights["d1.weight"], ck.weights["d1.weight"])
    np.testing.assert_array_equal(c.start.opt_state["*"]["m"], ck.opt_state["*"]["m"])
    assert c.start.opt_t == ck.opt_t and c.replay.start["run_id"] == "p"
    assert find_run(runs, "c").run_id == "c-2" and find_run(runs, None).run_id == "c-2"
    with pytest.raises(BundleError, match="p-1, c-2"):
        find_run(runs, "x")
    assert read_tree(engine.save_bundle(path.with_name("plain.nbmodel"), child.net)) == []


def test_cli_replay_exit_codes(tree_bundle, tmp_path):
    path, _, _ = tree_bundle
    code, out, err = run_cli(["replay", str(path)])
    assert code == 0, err
    assert "match: all 6 tensors are bit for bit the same" in out
    assert "from epoch 1 of its parent" in out
    code, out, _ = run_cli(["replay", str(path), "--run", "p-1"])
    assert code == 0 and "match" in out
    bad = tmp_path / "bad.nbmodel"
    bad.write_bytes(path.read_bytes())

    def change_lr(index):
        index["runs"][0]["replay"]["settings"]["optimizer"]["lr"] = 0.02
    rewrite(bad, change_lr)
    code, out, _ = run_cli(["replay", str(bad), "--run", "p-1"])
    assert code == 1
    assert "mismatch: the first tensor that differs is d1.weight" in out
    code, _, err = run_cli(["replay", str(bad), "--run", "nope"])
    assert code == 2 and "no single run" in err


def test_netbuilder_train_bundles_replay_from_the_command_line(tmp_path):
    doc = graph().to_dict()
    doc["training"] = {**TRAINING, "epochs": 2}
    model = tmp_path / "m.json"
    model.write_text(json.dumps(doc))
    code, _, err = run_cli(["train", str(model), "--out", str(tmp_path / "runs"),
                            "--threads", "1", "-q"])
    assert code == 0, err
    bundle = tmp_path / "runs" / "m.nbmodel"
    code, out, err = run_cli(["replay", str(bundle)])
    assert code == 0, out + err
    assert "on 1 thread" in out
    code, out, _ = run_cli(["info", str(bundle)])
    assert code == 0 and "replay: recorded (" in out and "2 checkpoints" in out
    # continuing the bundle keeps its weights as the replay's start
    code, _, err = run_cli(["train", str(bundle), "--out", str(tmp_path / "more"), "--epochs",
                            "1", "--threads", "1", "-q"])
    assert code == 0, err
    code, out, err = run_cli(["replay", str(tmp_path / "more" / "m.nbmodel")])
    assert code == 0, out + err


def test_runs_npz_claiming_more_than_its_index_is_refused(tree_bundle, tmp_path):
    path, _, _ = tree_bundle
    bad = tmp_path / "bomb.nbmodel"
    bad.write_bytes(path.read_bytes())

    def shrink(index):
        for run in index["runs"]:
            run["checkpoints"] = {}
            run["start"] = None
            run["final"]["w"] = run["final"]["w"][:1]
            run["final"]["o"] = []
    rewrite(bad, shrink)
    with pytest.raises(BundleError, match="more than"):
        read_tree(bad)
