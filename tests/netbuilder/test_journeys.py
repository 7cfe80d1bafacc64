"""A new user's first journeys, through the real widgets only: layers dragged from the
palette, wires drawn port to port with the mouse, values typed into the inspector, tabs and
buttons clicked.

(a) From an empty canvas, build an MLP for the 2-D spirals, choose the data, press Start
    with the default settings, and reach at least 95 % validation accuracy.
(b) Open LeNet-5, train, pause, step one batch, stop, save the trained model, reopen it and
    find its run and history again.

(Journey (c), switching models mid-session, is tests/netbuilder/test_journey_switch.py.)"""

from __future__ import annotations

import itertools
import re

from monitorkit import EXAMPLES, click_tab, wait_idle, wait_steps
from PySide6.QtCore import QPointF, Qt


def press(qtbot, button) -> None:
    assert button.isEnabled() and button.isVisible(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def type_into(qtbot, widget, text: str) -> None:
    widget.setFocus()
    widget.selectAll()
    qtbot.keyClick(widget, Qt.Key.Key_Backspace)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def percent(text: str) -> float:
    m = re.search(r"(\d+(?:\.\d+)?) %", text)
    assert m, text
    return float(m.group(1))


# ----- (a) the spirals MLP from an empty canvas -------------------------------------------
CHAIN = ["Input", "Dense", "ReLU", "Dense", "ReLU", "Dense", "Output"]


def test_journey_spirals_mlp_from_an_empty_canvas(make_window, qtbot):
    drv = make_window()
    w = drv.w
    w.act_new.trigger()  # File ▸ New
    assert not drv.graph.nodes and w.zoom_label.text() == "Zoom 100 %"

    # drag the layers from the palette: two columns inside what the canvas shows
    vr = w.view.mapToScene(w.view.viewport().rect()).boundingRect()
    spots = [QPointF(vr.left() + vr.width() * (0.28 if i < 4 else 0.72),
                     vr.top() + vr.height() * (0.12 + 0.25 * (i if i < 4 else 6 - i)))
             for i in range(len(CHAIN))]
    for type_name, at in zip(CHAIN, spots):
        assert drv.drop(type_name, at).isAccepted()
    ids = list(drv.graph.nodes)
    assert [drv.graph.nodes[n].type for n in ids] == CHAIN
    for a, b in itertools.pairwise(ids):
        drv.wire(a, b)
    assert len(drv.graph.edges) == len(CHAIN) - 1

    # the Input takes 2 numbers per sample; the last Dense scores the 2 arms
    drv.click(drv.node_centre(ids[0]))
    type_into(qtbot, w.inspector.editors["shape"].widget, "2")
    assert not w.inspector.refusal.isVisible(), w.inspector.refusal.text()
    drv.click(drv.node_centre(ids[5]))
    units = w.inspector.editors["units"].widget
    assert units.value() == 64  # the default Dense units stay on the hidden layers
    type_into(qtbot, units, "2")
    assert drv.graph.nodes[ids[5]].params == {"units": 2}
    assert w.errors_button.text() == "✓ no problems"
    assert drv.edge_label(ids[0], ids[1]) == "2" and drv.edge_label(ids[5], ids[6]) == "2"

    # the data: spirals, picked in the Data panel's list by typing its name
    tc = w.training
    click_tab(qtbot, w, "Data")
    source = tc.data.source
    source.setFocus()
    qtbot.keyClicks(source, "spirals")
    assert source.currentText() == "spirals"
    assert tc.data.wait_loaded(60)
    assert drv.graph.training["dataset"] == "spirals"
    assert tc.data.problems == [] and not tc.data.fix_input_button.isVisible()

    # Start with the settings as they are
    click_tab(qtbot, w, "Training")
    p = tc.panel
    assert (p.optimizer.currentText(), p.lr.text(), p.epochs.value()) == ("Adam", "0.01", 30)
    press(qtbot, p.start_button)
    wait_idle(qtbot, tc, timeout=300_000)

    # what the user reads: the Training panel's result and the Runs panel's row
    assert p.message.isVisible() and p.message.text().startswith("Run 1 finished")
    assert percent(p.message.text()) >= 95.0, p.message.text()
    click_tab(qtbot, w, "Runs")
    row = tc.runs_panel.tree.topLevelItem(0)
    assert row.text(1) == "completed" and row.text(2).startswith("adam, lr 0.01")
    assert percent(row.text(4)) >= 95.0, row.text(4)


# ----- (b) LeNet-5: train, pause, step, stop, save, reopen -------------------------------
def test_journey_lenet5_train_pause_step_stop_save_reopen(make_window, qtbot, tmp_path):
    drv = make_window(examples_dir=EXAMPLES)
    w = drv.w
    w.examples_menu.aboutToShow.emit()  # File ▸ Examples fills itself when opened
    lenet = next(a for a in w.examples_menu.actions() if "lenet5.json" in a.statusTip())
    lenet.trigger()
    assert {"c1", "s2", "c3", "s4", "f5", "f6", "logits"} <= set(drv.graph.nodes)
    tc = w.training
    assert tc.data.wait_loaded(60)
    click_tab(qtbot, w, "Training")
    p = tc.panel

    press(qtbot, p.start_button)
    wait_steps(qtbot, tc, 5, timeout=300_000)
    press(qtbot, p.pause_button)
    assert p.pause_button.text().endswith("Resume")
    qtbot.waitUntil(lambda: tc.worker.trainer.status == "paused", timeout=30_000)
    qtbot.wait(200)
    n = len(tc.active.steps)
    press(qtbot, p.step_button)
    qtbot.waitUntil(lambda: len(tc.active.steps) == n + 1, timeout=30_000)
    qtbot.wait(300)
    assert len(tc.active.steps) == n + 1  # one batch, no more
    assert "paused" in p.status.text()
    press(qtbot, p.stop_button)
    wait_idle(qtbot, tc)
    run = tc.store.latest()
    assert run.status == "stopped" and len(run.steps) == n + 1 and run.weights is not None

    # Training ▸ Save Trained Model…
    target = tmp_path / "lenet5_trained.nbmodel"
    tc.choose_bundle_path = lambda r: str(target)
    save = next(a for a in tc.menu.actions() if a.text().startswith("Save Trained"))
    save.trigger()
    assert target.is_file() and run.saved_to == target

    # File ▸ New, then File ▸ Open the bundle: the model, its run and its curve are back
    w.act_new.trigger()
    assert not drv.graph.nodes
    w.choose_open_path = lambda: str(target)
    w.act_open.trigger()
    assert {"c1", "s2", "c3", "s4", "f5", "f6", "logits"} <= set(drv.graph.nodes)
    opened = tc.store.latest()
    assert opened is not run and opened.source == target
    assert len(opened.steps) == n + 1 and opened.status == "stopped"
    assert list(opened.losses.values) == list(run.losses.values)
    assert tc.curves.run is opened
    assert len(tc.curves.raw_curve.getData()[0]) == n + 1
    click_tab(qtbot, w, "Runs")
    rows = [tc.runs_panel.tree.topLevelItem(i) for i in range(2)]
    assert [r.text(0) for r in rows] == ["Run 1", "Run 2"]
    assert rows[1].text(1) == "stopped" and "batch 64" in rows[1].text(2)
    assert tc.runs_panel.tree.currentItem() is rows[1]
