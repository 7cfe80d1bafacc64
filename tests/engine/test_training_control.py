"""Trainer control from another thread (pause, resume, single steps, stop) and NaN safety."""

import threading
import time

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.data import Dataset, load_dataset
from engine.training import BatchEvent, RunResult, Trainer

MLP = [("Dense", {"units": 16}), ("Tanh", {}), ("Dense", {"units": 2})]


def mlp(seed=0):
    return engine.compile(engine.Graph.from_dict(chain_doc((2,), MLP)), seed=seed)


def test_pause_step_resume_and_stop_from_another_thread():
    steps = []
    gate = threading.Event()

    def on_event(e):
        if isinstance(e, BatchEvent):
            steps.append(e.step)
            if e.step == 5:
                gate.set()

    ds = load_dataset("moons", n=200)
    t = Trainer(mlp(), ds, {"epochs": 10_000, "batch_size": 4, "val_split": 0.0,
                            "test_split": 0.0}, on_event)
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("r", t.run()))
    worker.start()
    try:
        assert gate.wait(30)
        t.pause()
        deadline = time.monotonic() + 10
        while t.status != "paused" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert t.paused and t.status == "paused"
        held = len(steps)
        time.sleep(0.2)
        assert len(steps) == held  # no progress while paused
        t.request_step()
        deadline = time.monotonic() + 10
        while len(steps) == held and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert len(steps) == held + 1  # exactly one batch
        t.resume()
        deadline = time.monotonic() + 10
        while len(steps) < held + 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(steps) >= held + 20
    finally:
        t.stop()
        worker.join(30)
    assert not worker.is_alive()
    r = out["r"]
    assert r.status == "stopped" and not r.restored_best
    assert steps == list(range(1, len(steps) + 1))
    assert r.steps == len(steps)


def test_stop_while_paused_ends_the_run():
    t = Trainer(mlp(), load_dataset("moons", n=50), {"epochs": 100, "val_split": 0.0})
    t.pause()
    worker = threading.Thread(target=t.run)
    worker.start()
    time.sleep(0.1)
    assert t.step == 0
    t.stop()
    worker.join(10)
    assert not worker.is_alive() and t.result.status == "stopped"


def test_huge_learning_rate_stops_with_a_message_and_keeps_last_good_weights():
    layers = [("Dense", {"units": 16}), ("ReLU", {}), ("Dense", {"units": 1})]
    net = engine.compile(engine.Graph.from_dict(chain_doc((1,), layers, loss="mse")))
    good = {}
    results = []

    def on_event(e):
        if isinstance(e, BatchEvent):
            good.clear()
            good.update(net.state_dict())
        elif isinstance(e, RunResult):
            results.append(e)

    t = Trainer(net, load_dataset("sine", n=200),
                {"epochs": 200, "batch_size": 10, "optimizer": {"type": "sgd", "lr": 50.0},
                 "val_split": 0.0, "test_split": 0.0}, on_event)
    with pytest.raises(engine.TrainingError) as exc:
        t.run()
    err = exc.value
    msg = str(err)
    assert err.step is not None and f"step {err.step}" in msg
    assert "NaN or Inf" in msg or "nan" in msg or "inf" in msg
    assert "last good weights" in msg
    assert results and results[-1].status == "failed" and results[-1].error == msg
    assert t.finished and t.status == "failed"
    state = net.state_dict()
    for k, v in state.items():
        assert np.isfinite(v).all(), k
    if good:  # the weights after the last finished step are exactly the ones kept
        for k, v in good.items():
            np.testing.assert_array_equal(state[k], v)


def test_nan_loss_names_the_first_non_finite_node():
    net = mlp()
    before = net.state_dict()
    x = np.zeros((8, 2), np.float32)
    x[3, 0] = np.nan
    ds = Dataset({"x": x, "y": np.zeros(8, np.int64)}, "bad")
    t = Trainer.__new__(Trainer)  # bypass the data check to feed a poisoned batch
    Trainer.__init__(t, net, load_dataset("moons", n=8), {"epochs": 1, "val_split": 0.0,
                                                         "test_split": 0.0})
    t.splits.train = ds
    with pytest.raises(engine.TrainingError, match="first non-finite output at node") as exc:
        t.step_once()
    assert exc.value.node_id == "in" and exc.value.step == 1
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_non_finite_gradient_is_refused_before_the_update():
    net = mlp()
    t = Trainer(net, load_dataset("moons", n=64), {"epochs": 5, "batch_size": 16,
                                                   "val_split": 0.0, "test_split": 0.0})
    t.step_once()
    t.step_once()
    before = net.state_dict()

    def poison(event):
        if "n2.weight" in event.param_grads:
            event.param_grads["n2.weight"][0, 0] = np.nan

    net.add_hook(on_backward=poison)
    with pytest.raises(engine.TrainingError, match=r"gradient of .* NaN or Inf") as exc:
        t.step_once()
    assert exc.value.step == 3 and exc.value.node_id == "n2"
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_update_overflowing_the_weights_is_undone():
    net = mlp()
    t = Trainer(net, load_dataset("moons", n=64), {
        "epochs": 1, "batch_size": 16, "optimizer": {"type": "sgd", "lr": 1e300},
        "val_split": 0.0, "test_split": 0.0})
    before = net.state_dict()
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(engine.TrainingError, match=r"update made .* NaN or Inf"):
        t.step_once()
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
