"""Bit-exact replay (engine.replay): runs with and without a graph edit mid-run, branches from
a checkpoint, and a changed setting reported as the first differing tensor."""

import itertools

import numpy as np
import pytest
from graphdocs import graph_doc

import engine
from engine.data import load_dataset
from engine.replay import Checkpoint, ReplayError, ReplayLog, RunTape, compare, replay, thin
from engine.training import Trainer

NODES = [("in", "Input", {"shape": [2]}), ("d1", "Dense", {"units": 16}), ("r1", "ReLU", {}),
         ("d2", "Dense", {"units": 16}), ("r2", "ReLU", {}),
         ("head", "Dense", {"units": 2}), ("out", "Output", {"loss": "cross_entropy"})]
TRAINING = {"dataset": {"name": "moons", "n": 240}, "epochs": 3, "batch_size": 32, "seed": 4,
            "optimizer": {"type": "adam", "lr": 0.01}, "augment": {}}


def graph(nodes=NODES, training=None):
    doc = graph_doc(nodes, list(itertools.pairwise([n[0] for n in nodes])))
    doc["training"] = dict(training or TRAINING)
    return engine.Graph.from_dict(doc)


def widened(units=24):
    return graph([(i, t, {**p, "units": units} if i == "d2" else p) for i, t, p in NODES])


@pytest.fixture(scope="module")
def data():
    return load_dataset(TRAINING["dataset"])


def train(g, data, edit_at=None, edited=None, start=None, settings=None, lr_at=None):
    """Train ``g`` with a tape; with ``edit_at`` switch to ``edited`` after that many steps;
    ``lr_at`` (step, lr): change the learning rate there, as the Training panel does."""
    settings = settings or g.training
    net = engine.Network(g, seed=settings["seed"])
    trainer = Trainer(net, data, settings)
    if start is not None:
        start.restore(net, trainer.opt)
    tape = RunTape(trainer, g, start=start, start_ref={"run_id": "p"} if start else None)
    while not trainer.finished:
        if edit_at is not None and trainer.step == edit_at:
            report = tape.edit(edited)
            assert "d1" in report.kept
        if lr_at is not None and trainer.step == lr_at[0]:
            trainer.set_lr(lr_at[1])
        trainer.step_once()
    return trainer, tape


def test_replay_matches_bit_for_bit_and_keeps_the_data_order(data):
    trainer, tape = train(graph(), data)
    log = ReplayLog.from_dict(tape.log.to_dict())
    assert log.steps == trainer.step and len(log.orders) == 3 and log.status == "completed"
    net, again = replay(log, data)
    assert compare(trainer.net.state_dict(), net.state_dict()) is None
    assert again.step == trainer.step


def test_replay_of_a_run_with_a_graph_edit_mid_run_matches(data):
    trainer, tape = train(graph(), data, edit_at=10, edited=widened())
    assert trainer.net.params["d2.weight"].shape == (24, 16)
    assert [(e.step, e.epoch) for e in tape.log.edits] == [(10, 2)]
    net, _ = replay(ReplayLog.from_dict(tape.log.to_dict()), data)
    assert net.params["d2.weight"].shape == (24, 16)
    assert compare(trainer.net.state_dict(), net.state_dict()) is None


def test_a_changed_setting_is_a_mismatch_naming_the_first_tensor(data):
    trainer, tape = train(graph(), data)
    d = tape.log.to_dict()
    d["settings"]["optimizer"] = {"type": "adam", "lr": 0.011}
    net, _ = replay(ReplayLog.from_dict(d), data)
    miss = compare(trainer.net.state_dict(), net.state_dict())
    assert miss is not None and miss.name == "d1.weight" and miss.what == "values differ"
    assert miss.count > 0 and "d1.weight" in miss.text()


def test_other_data_or_another_data_order_is_reported_as_such(data):
    _, tape = train(graph(), data)
    d = tape.log.to_dict()
    d["settings"]["seed"] = 5
    with pytest.raises(ReplayError, match="training data differ"):
        replay(ReplayLog.from_dict(d), data)
    d = tape.log.to_dict()
    d["orders"][1] = "0" * 16
    with pytest.raises(ReplayError, match="data order of epoch 2"):
        replay(ReplayLog.from_dict(d), data)


def test_a_branch_from_a_checkpoint_replays_from_that_checkpoint(data):
    parent, tape = train(graph(), data)
    ck = tape.checkpoints[1]
    assert ck.epoch == 1 and ck.step == parent.batches_per_epoch and ck.opt_t == ck.step
    index, arrays = ck.pack()
    ck = Checkpoint.unpack(index, arrays, "test")
    child_settings = {**TRAINING, "epochs": 2, "optimizer": {"type": "adam", "lr": 0.003}}
    child, ctape = train(graph(training=child_settings), data, start=ck)
    assert ctape.log.start == {"run_id": "p", "epoch": 1, "step": ck.step}
    with pytest.raises(ReplayError, match="branch"):
        replay(ctape.log, data)
    net, _ = replay(ctape.log, data, start=ck)
    assert compare(child.net.state_dict(), net.state_dict()) is None
    # the optimizer state came along: training on from scratch weights differs
    fresh, _ = train(graph(training=child_settings), data)
    assert compare(child.net.state_dict(), fresh.net.state_dict()) is not None


def test_checkpoints_are_thinned_in_the_middle_within_the_budget(data):
    _, tape = train(graph(training={**TRAINING, "epochs": 6}), data)
    cks = tape.checkpoints
    assert sorted(cks) == [1, 2, 3, 4, 5, 6]
    one = cks[1].nbytes
    thin(cks, 3 * one)
    assert len(cks) == 3 and 1 in cks and 6 in cks


def test_compare_names_missing_and_reshaped_tensors():
    a = {"x.w": np.zeros(3, np.float32), "y.w": np.ones(2, np.float32)}
    assert compare(a, dict(a)) is None
    assert compare(a, {"x.w": a["x.w"]}).name == "y.w"
    assert compare(a, {**a, "x.w": np.zeros(4, np.float32)}).what == "shape (3,)→(4,)"
    assert compare(a, {**a, "z.w": a["x.w"]}).name == "z.w"


def test_a_learning_rate_changed_while_it_ran_is_replayed(data):
    trainer, tape = train(graph(), data, lr_at=(12, 0.002))
    assert tape.log.lr_changes == [(12, 0.002)]
    net, _ = replay(ReplayLog.from_dict(tape.log.to_dict()), data)
    assert compare(trainer.net.state_dict(), net.state_dict()) is None
    d = tape.log.to_dict()
    d["lr_changes"] = []
    net, _ = replay(ReplayLog.from_dict(d), data)
    assert compare(trainer.net.state_dict(), net.state_dict()).name == "d1.weight"
