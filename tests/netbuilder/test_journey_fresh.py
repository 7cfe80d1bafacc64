"""A fresh user's journeys from File ▸ New, through real widgets: the failures they met that
the other tests never hit, each reproduced here (window close buttons, narrow windows,
panels after a change of data)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from monitorkit import click_tab
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QScrollArea
from test_gui_layout import SIZES, assert_nothing_overlaps_or_is_cut, click_mode, open_example
from test_gui_look_inside import gate_worker_forwards

from engine.layers.conv import Conv2D
from engine.resources import example_path
from netbuilder.docklayout import MONITOR
from netbuilder.monitor.attention import AttentionGrid
from netbuilder.monitor.feature_maps import FeatureMapView
from netbuilder.session.probes import FeatureMaps


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


def select(drv, node: str) -> None:
    """Click the node's card; the Inspector's new rows show once the event loop runs."""
    drv.click(drv.node_centre(node))
    drv.qtbot.wait(20)


def type_into(qtbot, widget, text: str) -> None:
    assert widget.isVisible()
    widget.setFocus()
    widget.selectAll()
    qtbot.keyClick(widget, Qt.Key.Key_Backspace)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)
    qtbot.wait(50)  # the user reads the result: the event loop lays out what changed


def drop_chain(drv, types: list[str]) -> list[str]:
    """Drop ``types`` from the palette in a column down the canvas and wire them in order."""
    vr = drv.view.mapToScene(drv.view.viewport().rect()).boundingRect()
    for i, t in enumerate(types):
        at = QPointF(vr.left() + vr.width() * 0.4,
                     vr.top() + vr.height() * (0.1 + 0.8 * i / max(1, len(types) - 1)))
        assert drv.drop(t, at).isAccepted()
    ids = list(drv.graph.nodes)
    for a, b in itertools.pairwise(ids):
        drv.wire(a, b)
    assert len(drv.graph.edges) == len(ids) - 1
    return ids


@pytest.mark.parametrize("size", SIZES)
def test_a_typed_value_that_breaks_a_conv_shows_why_in_the_inspector_without_scrolling(
        make_window, qtbot, size):
    drv = make_window()
    w = drv.w
    w.resize(*size)
    w.act_new.trigger()
    ids = drop_chain(drv, ["Input", "Conv2D", "Conv2D", "GlobalAvgPool2D", "Output"])
    ins = w.inspector
    select(drv, ids[0])
    type_into(qtbot, ins.editors["shape"].widget, "1, 28, 28")
    select(drv, ids[1])
    type_into(qtbot, ins.editors["filters"].widget, "8")
    select(drv, ids[2])
    type_into(qtbot, ins.editors["filters"].widget, "8")
    type_into(qtbot, ins.editors["groups"].widget, "8")  # depthwise: fine
    assert w.errors_button.text() == "✓ no problems"
    assert drv.edge_label(ids[1], ids[2]) == "8×26×26"
    type_into(qtbot, ins.editors["groups"].widget, "3")  # 3 does not divide 8 channels
    assert drv.graph.nodes[ids[2]].params["groups"] == 3
    assert w.scene.nodes[ids[2]].info.error is not None  # the badge is on the node that causes it
    seen = ins.problem.visibleRegion().boundingRect()
    assert seen.height() >= ins.problem.height() - 2, f"{seen} of {ins.problem.rect()}"
    assert "groups = 3" in ins.problem.text()
    assert not ins.editors["groups"].widget.visibleRegion().isEmpty()  # still in sight


@pytest.mark.parametrize("size", SIZES)
def test_try_it_on_an_image_model_never_scrolls_sideways(window_at, qtbot, size):
    w = window_at(*size)
    open_example(qtbot, w, "LeNet-5")
    assert w.training.data.wait_loaded(60)
    w.look_inside.act_try.trigger()  # Look Inside ▸ Try It
    panel = w.look_inside.panel
    qtbot.waitUntil(lambda: panel.isVisible() and panel.isEnabled())
    qtbot.wait(100)
    scroll = w.look_inside.dock.widget()
    assert isinstance(scroll, QScrollArea)
    assert not scroll.horizontalScrollBar().isVisible(), (
        f"Try it needs {panel.minimumSizeHint().width()} px, has {scroll.viewport().width()}")
    for part in (panel.pad, panel.prediction, panel.bars, panel.why_view, panel.method,
                 panel.clear_btn, panel.open_btn):
        left = part.mapTo(scroll.viewport(), QPoint(0, 0)).x()  # up or down is fine
        assert left >= 0 and left + part.width() <= scroll.viewport().width(), (
            f"{type(part).__name__} spans x {left}..{left + part.width()} of "
            f"{scroll.viewport().width()}")


@pytest.mark.parametrize("size", [(520, 190), (520, 230)])
def test_attention_heads_fill_a_wide_low_view_with_labels_that_do_not_collide(qtbot, size):
    """The Attention tab of the monitor is about 520 × 190 px at 1024×700 and 520 × 230 at
    1280×800: four heads of a 20-token model must use it (one row, not 3 + 1 tiny maps),
    and each axis labels only as many tokens as fit side by side."""
    grid = AttentionGrid()
    qtbot.addWidget(grid)
    grid.resize(*size)
    grid.show()
    qtbot.waitExposed(grid)
    rng = np.random.default_rng(0)
    weights = rng.random((4, 20, 20)).astype(np.float32)
    weights /= weights.sum(-1, keepdims=True)
    tokens = tuple(str(10 + i) for i in range(20))
    grid.show_weights(weights, tokens)
    qtbot.wait(50)
    tops = {round(p.sceneBoundingRect().top()) for p in grid.plots}
    assert len(tops) == 1, f"{len(tops)} rows of heads"
    fm = grid.fontMetrics()
    for plot in grid.plots:
        box = plot.getViewBox().sceneBoundingRect()
        assert min(box.width(), box.height()) >= 80, box
        for side, room, need in (("bottom", box.width(), fm.horizontalAdvance("00") + 4),
                                 ("left", box.height(), fm.height())):
            ticks = plot.getAxis(side)._tickLevels[0]
            assert len(ticks) * need <= room, f"{len(ticks)} {side} labels in {room:.0f} px"


@pytest.mark.parametrize("size", SIZES)
def test_try_it_in_the_monitor_layout_fits_the_canvas_column(window_at, qtbot, size):
    """In the Monitor layout Try it opens under the canvas column (about 350 px at
    1280×800, 240 at 1024×700): the image page stacks into one column there instead of
    scrolling sideways, and in the narrowest Clear and Open… take a row of their own."""
    w = window_at(*size)
    open_example(qtbot, w, "LeNet-5")
    assert w.training.data.wait_loaded(60)
    click_mode(qtbot, w, MONITOR)
    w.look_inside.act_try.trigger()
    panel = w.look_inside.panel
    qtbot.waitUntil(lambda: panel.isVisible() and panel.isEnabled())
    qtbot.wait(100)
    scroll = w.look_inside.dock.widget()
    assert not scroll.horizontalScrollBar().isVisible(), (
        f"Try it needs {panel.minimumSizeHint().width()} px, has {scroll.viewport().width()}")
    for part in (panel.pad, panel.brush, panel.invert, panel.clear_btn, panel.open_btn,
                 panel.sample_btn, panel.why_view, panel.on_canvas):
        left = part.mapTo(scroll.viewport(), QPoint(0, 0)).x()
        assert left >= 0 and left + part.width() <= scroll.viewport().width(), part


@pytest.mark.parametrize("units", [4, 10, 64, 300])
def test_a_dense_layers_feature_map_numbers_its_units_with_whole_numbers(qtbot, units):
    view = FeatureMapView()
    qtbot.addWidget(view)
    view.resize(500, 300)
    view.show()
    view.node = "dense1"
    view.show_maps(FeatureMaps("dense1", 0, np.linspace(-1, 1, units), "", ""))
    qtbot.wait(20)
    axis = view.bar_plot.getPlotItem().getAxis("bottom")
    view_range = view.bar_plot.getPlotItem().getViewBox().viewRange()[0]
    levels = axis.tickValues(view_range[0], view_range[1], axis.width())
    values = [v for _spacing, vs in levels for v in vs]
    assert values and all(float(v).is_integer() for v in values), values  # no "unit 0.5"
    assert len({v for v in values}) <= 12  # and not one label per unit of a wide layer


def test_shrinking_the_window_in_the_monitor_layout_keeps_the_canvas_readable(window_at, qtbot):
    """A user who narrows the window from 1280 to 1024 px while the monitor shows: the canvas
    column keeps room for its cards (it was squeezed to under 100 px, the panels beside it
    keeping their width)."""
    w = window_at(1280, 800)
    open_example(qtbot, w, "LeNet-5")
    click_mode(qtbot, w, MONITOR)
    assert w.view.width() >= 250
    w.resize(1024, 700)
    qtbot.waitUntil(lambda: w.width() == 1024)
    qtbot.wait(100)
    assert w.view.width() >= 200, w.view.width()
    assert_nothing_overlaps_or_is_cut(w, (1024, 700))


def test_the_inspectors_rows_keep_their_height_when_a_node_with_a_problem_grows_them(
        window_at, qtbot):
    """File ▸ New at 1024×700: an Input (1, 8, 8) wired into a Dense. The Dense's rows (its
    parameters, facts, problem, gradient check, training) are taller than the dock: they
    must scroll, not squeeze into each other (the form was drawn 8 px a row, unreadable)."""
    from guidocs import Driver
    from test_journeys import type_into

    w = window_at(1024, 700)
    drv = Driver(qtbot, w)
    w.act_new.trigger()
    centre = w.view.mapToScene(w.view.viewport().rect().center())
    drv.drop("Input", QPointF(centre) - QPointF(0, 150))
    drv.drop("Dense", QPointF(centre))
    inp, dense = list(drv.graph.nodes)
    drv.wire(inp, dense)
    drv.click(drv.node_centre(inp))
    type_into(qtbot, w.inspector.editors["shape"].widget, "1, 8, 8")
    drv.click(drv.node_centre(dense))
    type_into(qtbot, w.inspector.editors["units"].widget, "10")
    qtbot.wait(50)
    ins = w.inspector
    assert "expects a flat input" in ins.problem.text()
    assert ins.body.height() >= ins.body.minimumSizeHint().height()
    for name in ("units", "bias", "init"):
        e = ins.editors[name].widget
        assert e.height() >= e.minimumSizeHint().height(), f"{name} squeezed to {e.height()}"
    rows = [ins.editors[n].widget.geometry() for n in ("units", "bias", "init")]
    for a, b in itertools.pairwise(rows):
        assert a.bottom() < b.top()
