"""Editing a paused run and freezing nodes, through the real widgets: LeNet-5 paused after
two epochs, f5 widened in the Inspector, the edit applied and resumed; the unchanged nodes
keep the weights they had at the pause and the canvas marks f5 as starting fresh; c1 frozen
through the Inspector stays put in the Filters view while c3 goes on learning; Freeze /
Thaw / Start as Identity on the right-click menu, undo and redo, and the Model Summary's
figure of what freezing saves."""

from __future__ import annotations

import numpy as np
from monitorkit import click, click_tab, example, open_model, wait_idle, wait_steps
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication

from netbuilder.canvas import marks
from netbuilder.session import RunState


def lenet(**training) -> dict:
    """LeNet-5 on a few hundred shapes, 8 batches an epoch."""
    return example("lenet5", limit=320, batch_size=32, epochs=200, **training)


def paused_net(qtbot, tc):
    """Wait until the paused loop sits idle; its network (read only while it waits)."""
    qtbot.waitUntil(lambda: tc.session.loop.trainer.status == "paused", timeout=30_000)
    qtbot.wait(100)
    return tc.session.loop.net


def state_of(net) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in {**net.params, **net.buffers}.items()}


def type_into(qtbot, widget, text: str) -> None:
    widget.setFocus()
    qtbot.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(widget, Qt.Key.Key_Backspace)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def context_menu(qtbot, drv, node_id: str, text: str) -> None:
    """Right-click ``node_id`` on the canvas and choose ``text`` in the menu."""
    chosen = []

    def pick() -> None:
        menu = QApplication.activePopupWidget()
        assert menu is not None, "no context menu"
        act = next(a for a in menu.actions() if a.text().replace("&", "") == text)
        assert act.isEnabled(), f"{text} is disabled"
        chosen.append(act)
        menu.close()
        act.trigger()
    item = drv.w.scene.nodes[node_id]
    pos = drv.vpos(item.sceneBoundingRect().center())
    QTimer.singleShot(150, pick)
    ev = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, drv.vp.mapToGlobal(pos))
    QApplication.sendEvent(drv.vp, ev)
    qtbot.waitUntil(lambda: bool(chosen), timeout=5_000)


def test_pause_widen_f5_resume_keeps_the_other_weights_and_marks_f5(make_window, qtbot):
    drv, tc = open_model(make_window, lenet())
    w, p = drv.w, tc.panel
    click(qtbot, p.start_button)
    qtbot.waitUntil(lambda: tc.active is not None and len(tc.active.epochs) >= 2,
                    timeout=180_000)
    click(qtbot, p.pause_button)
    assert tc.state == "paused" and w.edit_lock is None  # paused: the model may change
    assert w.inspector_dock.toggleViewAction().isChecked()  # back from where it stepped aside
    before = state_of(paused_net(qtbot, tc))
    # widen f5 in the Inspector
    w.scene.select_nodes(["f5"])
    units = w.inspector.editors["units"].widget
    assert units.isVisible()  # selecting the node brought the Inspector forward
    type_into(qtbot, units, "240")
    assert drv.graph.nodes["f5"].params["units"] == 240
    assert tc.session.is_edited(drv.graph)
    # Training ▸ Apply Edits, Stay Paused: swapped in now, so the weights can be compared
    edits = []
    tc.session.edited.connect(lambda run, out: edits.append(out))
    w.run_edits.act_apply.trigger()
    qtbot.waitUntil(lambda: bool(edits), timeout=120_000)
    assert edits[0].ok and tc.state == "paused"
    net = paused_net(qtbot, tc)
    assert net.layers["f5"].p["units"] == 240
    for k, v in before.items():
        if k.split(".")[0] in ("c1", "c3", "logits"):
            np.testing.assert_array_equal(net.params.get(k, net.buffers.get(k)), v, err_msg=k)
    assert net.params["f5.weight"].shape == (240, 400)
    shown = w.scene.carry_marks()
    assert shown["f5"] == (marks.FRESH, "units 120→240")
    assert shown["f6"][0] == marks.FRESH  # its input widened
    assert {n for n, (k, _) in shown.items() if k == marks.KEPT} == {"c1", "c3", "logits"}
    assert "units 120→240" in w.scene.nodes["f5"].toolTip()
    assert "f5 (units 120→240)" in w.status_message.text()
    # Resume trains the edited model on
    n = len(tc.active.steps)
    click_tab(qtbot, w, "Training")
    click(qtbot, p.pause_button)
    assert tc.state == "running" and w.edit_lock is not None
    wait_steps(qtbot, tc, n + 5)
    assert w.scene.carry_marks()  # still shown until dismissed or the next edit
    w.run_edits.act_dismiss.trigger()
    assert w.scene.carry_marks() == {}
    click(qtbot, p.stop_button)
    wait_idle(qtbot, tc)
    run = tc.store.latest()
    assert run.graph.nodes["f5"].params["units"] == 240
    assert run.weights["f5.weight"].shape == (240, 400)


def test_resume_with_an_edit_marks_the_canvas_and_an_invalid_edit_is_refused(make_window,
                                                                             qtbot):
    drv, tc = open_model(make_window, lenet())
    w, p = drv.w, tc.panel
    click(qtbot, p.start_button)
    wait_steps(qtbot, tc, 3)
    click(qtbot, p.pause_button)
    paused_net(qtbot, tc)
    # an edit that breaks the model: Resume is refused, the run stays paused on its model
    w.scene.select_nodes(["flatten"])
    w.act_delete.trigger()
    assert "flatten" not in drv.graph.nodes and w.document.analysis.error_count
    click_tab(qtbot, w, "Training")
    click(qtbot, p.pause_button)  # Resume
    assert tc.state == "paused" and "Cannot resume" in w.status_message.text()
    assert tc.session.active.graph.nodes.get("flatten") is not None
    w.act_undo.trigger()  # the model is whole again
    assert "flatten" in drv.graph.nodes and not w.document.analysis.error_count
    # change a dropout-free detail: f6's units; Resume applies it at once
    w.scene.select_nodes(["f6"])
    type_into(qtbot, w.inspector.editors["units"].widget, "42")
    n = len(tc.active.steps)
    click_tab(qtbot, w, "Training")
    click(qtbot, p.pause_button)
    assert tc.state == "running"
    qtbot.waitUntil(lambda: bool(w.scene.carry_marks()), timeout=120_000)
    wait_steps(qtbot, tc, n + 3)
    shown = w.scene.carry_marks()
    assert shown["f6"] == (marks.FRESH, "units 84→42") and shown["logits"][0] == marks.FRESH
    assert shown["c1"][0] == shown["f5"][0] == marks.KEPT
    click(qtbot, p.pause_button)
    paused_net(qtbot, tc)
    w.scene.select_nodes(["f6"])
    type_into(qtbot, w.inspector.editors["units"].widget, "50")
    assert w.scene.carry_marks() == {}  # the next edit clears them
    click(qtbot, p.stop_button)
    wait_idle(qtbot, tc)


def test_freeze_c1_in_the_inspector_keeps_its_filters_put(make_window, qtbot):
    drv, tc = open_model(make_window, lenet())
    w, p = drv.w, tc.panel
    click(qtbot, p.start_button)
    wait_steps(qtbot, tc, 4)
    click(qtbot, p.pause_button)
    before = state_of(paused_net(qtbot, tc))
    w.scene.select_nodes(["c1"])
    box = w.run_edits.fields.trainable
    assert box.isVisible() and box.isChecked()
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert not drv.graph.nodes["c1"].trainable and w.scene.nodes["c1"].frozen
    assert "Frozen c1" in w.run_edits.saving.text()
    n = len(tc.active.steps)
    click_tab(qtbot, w, "Training")
    click(qtbot, p.pause_button)  # Resume: the freeze applies
    wait_steps(qtbot, tc, n + 10)
    click(qtbot, p.pause_button)
    net = paused_net(qtbot, tc)
    assert net.frozen == {"c1"}
    # the Filters view, asked on the paused network: c1 as it was, c3 moved on
    filters = tc.filters
    tc.show_monitor(("filters",))
    w.scene.select_nodes(["c3"])
    qtbot.waitUntil(lambda: filters.conv == "c3" and filters.filters is not None,
                    timeout=30_000)
    assert not np.array_equal(filters.filters, before["c3.weight"])
    w.scene.select_nodes(["c1"])
    qtbot.waitUntil(lambda: filters.conv == "c1" and filters.filters is not None,
                    timeout=30_000)
    np.testing.assert_array_equal(filters.filters, before["c1.weight"])
    click(qtbot, p.stop_button)
    wait_idle(qtbot, tc)
    np.testing.assert_array_equal(tc.store.latest().weights["c1.weight"], before["c1.weight"])


def test_freeze_thaw_identity_on_the_context_menu_with_undo(make_window, qtbot):
    drv, _tc = open_model(make_window, lenet())
    w = drv.w
    g = drv.graph
    w.scene.select_nodes(["c1", "c3", "a1"])
    context_menu(qtbot, drv, "c3", "Freeze")
    assert not g.nodes["c1"].trainable and not g.nodes["c3"].trainable
    assert g.nodes["a1"].trainable  # no weights: left alone
    assert w.scene.nodes["c3"].frozen and "Frozen" in w.scene.nodes["c3"].toolTip()
    text = w.run_edits.saving.text()
    assert "Frozen c1, c3" in text and "saves" in text
    assert w.undo_stack.undoText() == "Freeze 'c1', 'c3'"
    w.act_undo.trigger()
    assert g.nodes["c1"].trainable and not w.scene.nodes["c1"].frozen
    assert "Frozen" not in w.run_edits.saving.text()
    w.act_redo.trigger()
    assert not g.nodes["c1"].trainable
    w.scene.select_nodes(["c1"])
    context_menu(qtbot, drv, "c1", "Thaw")
    assert g.nodes["c1"].trainable and not g.nodes["c3"].trainable
    # the learning-rate multiplier in the Inspector, one undo step
    w.scene.select_nodes(["f5"])
    type_into(qtbot, w.run_edits.fields.lr_mult, "0.1")
    assert g.nodes["f5"].lr_mult == 0.1 and w.scene.nodes["f5"].lr_mult == 0.1
    w.act_undo.trigger()
    assert g.nodes["f5"].lr_mult == 1.0
    # Start as Identity on a Dense fed 84 features: units follow, init identity
    w.scene.select_nodes(["f6"])
    assert w.run_edits.act_identity.isEnabled()
    context_menu(qtbot, drv, "f6", "Start as Identity")
    assert g.nodes["f6"].params["init"] == "identity" and g.nodes["f6"].params["units"] == 120
    assert not w.document.analysis.errors.get("f6")


def test_a_run_started_with_step_is_editable_while_it_waits(make_window, qtbot):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=500))
    w = drv.w
    click(qtbot, tc.panel.step_button)
    qtbot.waitUntil(lambda: tc.active is not None and len(tc.active.steps) == 1,
                    timeout=60_000)
    assert tc.session.state == RunState.PAUSED and w.edit_lock is None
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)
    assert w.edit_lock is None


def test_an_edit_the_data_does_not_fit_is_refused_with_the_run_still_paused(make_window,
                                                                             qtbot):
    drv, tc = open_model(make_window, lenet())
    w, p = drv.w, tc.panel
    click(qtbot, p.start_button)
    wait_steps(qtbot, tc, 3)
    click(qtbot, p.pause_button)
    before = state_of(paused_net(qtbot, tc))
    w.scene.select_nodes(["in"])
    type_into(qtbot, w.inspector.editors["shape"].widget, "1, 32, 32")
    assert drv.graph.nodes["in"].params["shape"] == [1, 32, 32]
    assert not w.document.analysis.error_count  # the model is fine; the data is 28×28
    edits = []
    tc.session.edited.connect(lambda run, out: edits.append(out))
    click_tab(qtbot, w, "Training")
    click(qtbot, p.pause_button)  # Resume
    qtbot.waitUntil(lambda: bool(edits), timeout=120_000)
    assert not edits[0].ok and edits[0].node == "in"
    qtbot.waitUntil(lambda: tc.state == "paused", timeout=10_000)
    assert w.scene.carry_marks() == {"in": (marks.REFUSED, edits[0].error)}
    assert "cannot take the edited model" in w.status_message.text()
    net = paused_net(qtbot, tc)
    for k, v in before.items():
        np.testing.assert_array_equal(net.params.get(k, net.buffers.get(k)), v, err_msg=k)
    w.act_undo.trigger()  # back to 28×28: Resume goes on with the weights it had
    assert w.scene.carry_marks() == {}
    n = len(tc.active.steps)
    click_tab(qtbot, w, "Training")
    click(qtbot, p.pause_button)
    wait_steps(qtbot, tc, n + 3)
    click(qtbot, p.stop_button)
    wait_idle(qtbot, tc)
