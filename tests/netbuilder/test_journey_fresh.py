"""A fresh user's journeys from File ▸ New, through real widgets: the failures they met that
the other tests never hit, each reproduced here (window close buttons, narrow windows,
panels after a change of data)."""

from __future__ import annotations

import json

import pytest
from monitorkit import click_tab
from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QScrollArea
from test_gui_layout import SIZES, click_mode, open_example
from test_gui_look_inside import gate_worker_forwards

from engine.layers.conv import Conv2D
from engine.resources import example_path
from netbuilder.docklayout import MONITOR


def lenet_doc() -> dict:
    return json.loads(example_path("lenet5").read_text(encoding="utf-8"))


def test_the_gradient_check_dialog_closes_at_the_first_click_on_its_close_button(
        make_window, qtbot, monkeypatch):
    drv = make_window(lenet_doc())
    li = drv.w.look_inside
    gate = gate_worker_forwards(monkeypatch, Conv2D)  # the check stays under way
    drv.w.scene.select_nodes(["c1"])
    qtbot.mouseClick(li.check_button, Qt.MouseButton.LeftButton)
    dlg = li.dialog
    assert dlg.running and dlg.isVisible()
    # the title bar's close button: the window system sends the dialog a close event
    ev = QCloseEvent()
    QApplication.sendEvent(dlg, ev)
    assert ev.isAccepted() and not dlg.isVisible()  # gone at the first click
    gate.set()
    assert li.wait_check()
    qtbot.waitUntil(lambda: "cancelled" in drv.w.status_message.text(), timeout=10_000)
    assert dlg.report is None and not dlg.isVisible()


@pytest.mark.parametrize("size", SIZES)
def test_the_training_panel_fits_its_column_without_scrolling_sideways(window_at, qtbot, size):
    w = window_at(*size)
    open_example(qtbot, w, "Transformer")
    click_mode(qtbot, w, MONITOR)
    click_tab(qtbot, w, "Attention")
    click_tab(qtbot, w, "Training")
    p = w.training.panel
    scroll = p.findChild(QScrollArea)
    assert not scroll.horizontalScrollBar().isVisible(), (
        f"the panel needs {scroll.widget().minimumSizeHint().width()} px, "
        f"has {scroll.viewport().width()}")
    for b in (p.start_button, p.pause_button, p.stop_button, p.step_button, p.status):
        seen = b.visibleRegion().boundingRect()
        assert seen == b.rect(), f"{b.text()} shows {seen} of {b.rect()}"
