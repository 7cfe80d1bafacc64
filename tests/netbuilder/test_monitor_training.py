"""Training from the GUI through its buttons: a run to 100 % accuracy with one loss point per
batch, pause / step / resume / stop, divergence to NaN keeping the last good weights, an
exception in the worker, and the model locked against edits while a run is active."""

from __future__ import annotations

import math

import numpy as np
from monitorkit import click, example, open_model, relu_xor, wait_idle, wait_steps
from PySide6.QtCore import Qt

import engine
from engine.data import load_dataset
from engine.training import Trainer


def test_xor_trains_to_full_accuracy_with_one_loss_point_per_batch(make_window, qtbot):
    drv, tc = open_model(make_window, example("xor_mlp"))
    panel = tc.panel
    click(qtbot, panel.start_button)
    assert tc.state in ("starting", "running")
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    wait_idle(qtbot, tc)
    run = tc.store.latest()
    assert run.status == "completed", run.message
    last = run.epochs[-1]
    assert last.epoch == 60
    assert last.train_accuracy == 1.0 and last.val_accuracy == 1.0
    assert run.total_steps == 600 and len(run.steps) == 600
    assert np.array_equal(run.steps.values, np.arange(1, 601))
    x, y = tc.curves.raw_curve.getData()
    assert len(x) == 600 and np.array_equal(x, np.arange(1, 601))
    assert np.allclose(y, run.losses.values)
    assert len(tc.curves.smooth_curve.getData()[0]) == 600
    assert len(tc.curves.val_curve.getData()[0]) == 60
    assert tc.curves.acc_val.getData()[1][-1] == 1.0
    assert "100.0 %" in panel.message.text()
    assert panel.progress.value() == panel.progress.maximum() == 600
    # the graph as a monitor: badges on the nodes, tinted wires with gradient norms
    scene = drv.w.scene
    assert scene.nodes["tanh"].badge is not None and "sat" in scene.nodes["tanh"].badge[0]
    assert scene.nodes["hidden"].badge[0].startswith("μ")
    flow = scene.edges[engine.Edge("hidden", "tanh", 0)].flow
    assert flow is not None and flow[0] > 0 and math.isfinite(flow[0])
    assert scene.edges[engine.Edge("in", "hidden", 0)].flow is None  # nothing learns upstream
    # decision regions of the 2-D points
    assert tc.fit.regions is not None and tc.fit.regions.rgb.shape == (96, 96, 3)
    assert tc.confusion.matrix is not None and tc.confusion.matrix.sum() == 20
    assert drv.w.edit_lock is None


def test_pause_step_resume_and_stop(make_window, qtbot):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=5000))
    p = tc.panel
    click(qtbot, p.start_button)
    wait_steps(qtbot, tc, 15)
    click(qtbot, p.pause_button)
    assert tc.state == "paused" and p.pause_button.text().endswith("Resume")
    qtbot.waitUntil(lambda: tc.worker.trainer.status == "paused", timeout=10_000)
    qtbot.wait(150)
    n = len(tc.active.steps)
    assert n == tc.worker.trainer.step  # every trained batch reached the curve
    qtbot.wait(300)
    assert len(tc.active.steps) == n  # paused: nothing trains
    assert p.step_button.isEnabled()
    click(qtbot, p.step_button)
    qtbot.waitUntil(lambda: len(tc.active.steps) == n + 1, timeout=10_000)
    qtbot.wait(200)
    assert len(tc.active.steps) == n + 1  # exactly one batch
    click(qtbot, p.pause_button)  # Resume
    assert tc.state == "running"
    wait_steps(qtbot, tc, n + 20)
    click(qtbot, p.stop_button)
    wait_idle(qtbot, tc)
    run = tc.store.latest()
    assert run.status == "stopped"
    assert 0 < len(run.steps) < run.total_steps
    assert run.weights is not None and set(run.weights) == {
        "hidden.weight", "hidden.bias", "logits.weight", "logits.bias"}
    assert p.start_button.isEnabled() and not p.stop_button.isEnabled()
    assert drv.w.edit_lock is None


def test_step_on_an_idle_model_starts_a_paused_run(make_window, qtbot):
    _drv, tc = open_model(make_window, example("xor_mlp"))
    click(qtbot, tc.panel.step_button)
    qtbot.waitUntil(lambda: tc.active is not None and len(tc.active.steps) == 1, timeout=30_000)
    assert tc.state == "paused"
    click(qtbot, tc.panel.step_button)
    qtbot.waitUntil(lambda: len(tc.active.steps) == 2, timeout=10_000)
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)
    assert tc.store.latest().status == "stopped"


def test_divergence_stops_with_nan_message_and_keeps_last_good_weights(make_window, qtbot):
    training = {"optimizer": {"type": "sgd", "lr": 1e10, "momentum": 0.9}}
    doc = relu_xor(**training)
    drv, tc = open_model(make_window, doc)
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    run = tc.store.latest()
    out = tc.last_outcome
    assert run.status == "failed" == out.status
    assert "nan" in out.message.lower() and "last good weights" in out.message
    assert tc.panel.message.isVisible() and "nan" in tc.panel.message.text().lower()
    bad = out.error_node
    assert bad in drv.w.scene.nodes and drv.w.scene.nodes[bad].badge[1] == "nan"
    assert all(np.isfinite(w).all() for w in run.weights.values())
    # the kept weights are exactly those after the last step that went well
    good = len(run.steps)
    ref = engine.Network(engine.Graph.from_dict(doc), seed=0)
    tr = Trainer(ref, load_dataset("xor"), doc["training"])
    for _ in range(good):
        tr.step_once()
    for k, v in ref.state_dict().items():
        assert np.array_equal(v, run.weights[k]), k
    assert drv.errors == []  # a NaN is explained in the panel, no crash dialog
    assert drv.w.isVisible() and drv.w.edit_lock is None


def test_exception_in_worker_ends_run_with_message_and_app_stays_up(make_window, qtbot,
                                                                     monkeypatch):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=2))

    def boom(self):
        raise RuntimeError("boom in the kernel")
    monkeypatch.setattr(Trainer, "_train_batch", boom)
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    assert tc.store.latest().status == "failed"
    assert drv.errors and "boom in the kernel" in drv.errors[-1][1]
    assert "boom in the kernel" in tc.panel.message.text()
    assert drv.w.isVisible() and drv.w.edit_lock is None
    monkeypatch.undo()
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    assert tc.store.latest().status == "completed"


def test_editing_is_blocked_while_a_run_is_active(make_window, qtbot):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=5000))
    w = drv.w
    w.scene.select_nodes(["tanh"])
    click(qtbot, tc.panel.start_button)
    wait_steps(qtbot, tc, 5)
    before = w.document.graph.to_dict()
    w.act_delete.trigger()  # Edit ▸ Delete
    assert "tanh" in drv.graph.nodes
    assert "training run" in w.status_message.text()
    assert w.scene.last_toast is not None and "pause it" in w.scene.last_toast.text
    # the inspector refuses too
    w.scene.select_nodes(["hidden"])
    units = w.inspector.editors["units"].widget
    units.selectAll()
    qtbot.keyClick(units, Qt.Key.Key_Backspace)
    qtbot.keyClicks(units, "5")
    qtbot.keyClick(units, Qt.Key.Key_Return)
    assert drv.graph.nodes["hidden"].params["units"] == 8
    assert "training run" in w.inspector.refusal.text()
    click(qtbot, tc.panel.pause_button)
    assert drv.graph.to_dict()["nodes"] == before["nodes"]
    # moving a node is fine
    item = w.scene.nodes["tanh"]
    p0 = item.scenePos()
    drv.drag(drv.node_centre("tanh"), drv.node_centre("tanh") + p0.__class__(0, 80))
    assert w.document.position("tanh") != (p0.x(), p0.y())
    assert tc.state == "paused" and len(tc.active.steps) > 0
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)
    w.scene.select_nodes(["tanh"])
    w.act_delete.trigger()
    assert "tanh" not in drv.graph.nodes
