"""The window around the canvas: palette search and double click, panning with space, the
status bar, transient labels, extension points, and the Qt binding's health."""

from __future__ import annotations

import sys

from guidocs import small_doc
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QDockWidget, QLabel

import engine


def test_palette_lists_the_registry_by_category_with_help(make_window):
    drv = make_window()
    pal = drv.w.palette
    cats = engine.layers_by_category()
    assert list(pal.items) == [name for cls in cats.values() for c in cls
                               for name in (c.type_name, *c.aliases)]
    heads = [pal.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole + 2)
             for i in range(pal.tree.topLevelItemCount())]
    assert heads == list(cats)
    it = pal.items["Dense"]
    assert it.data(0, Qt.ItemDataRole.UserRole + 1) == engine.get_layer_class("Dense").help
    assert not it.icon(0).isNull()
    md = pal.mime_data_for("Conv2D")
    assert bytes(md.data("application/x-netbuilder-layer").data()) == b"Conv2D"


def test_palette_search_filters(make_window, qtbot):
    drv = make_window()
    pal = drv.w.palette
    qtbot.keyClicks(pal.search, "pool")
    shown = pal.visible_types()
    assert "MaxPool2D" in shown and "Dense" not in shown
    assert all("pool" in (t + pal.items[t].data(0, Qt.ItemDataRole.UserRole + 1)).lower()
               or pal.items[t].parent().data(0, Qt.ItemDataRole.UserRole + 2) == "Pooling"
               for t in shown)
    pal.search.clear()
    qtbot.keyClicks(pal.search, "fully connected")
    assert pal.visible_types() == ["Dense"]
    pal.search.clear()
    assert len(pal.visible_types()) == len(pal.items)


def test_an_alias_is_an_entry_of_its_own_that_adds_the_type(make_window, qtbot):
    drv = make_window()
    pal = drv.w.palette
    qtbot.keyClicks(pal.search, "silu")
    assert pal.visible_types() == ["Swish", "SiLU"]  # Swish's help says "SiLU when β = 1"
    alias = pal.items["SiLU"]
    assert alias.text(0) == "SiLU" and "Swish" in alias.toolTip(0)
    assert bytes(pal.mime_data_for("SiLU").data("application/x-netbuilder-layer").data()) \
        == b"Swish"
    pal.tree.itemActivated.emit(alias, 0)
    assert [n.type for n in drv.graph.nodes.values()] == ["Swish"]
    assert drv.graph.nodes["swish1"].params == {}  # beta 1: x·sigmoid(x), PyTorch's SiLU
    pal.search.clear()
    qtbot.keyClicks(pal.search, "gelu")
    assert pal.visible_types() == ["GELU"]


def test_palette_double_click_adds_at_the_centre(make_window):
    drv = make_window()
    drv.w.palette.tree.itemActivated.emit(drv.w.palette.items["ReLU"], 0)
    assert list(drv.graph.nodes) == ["relu1"]
    drv.w.palette.tree.itemActivated.emit(drv.w.palette.items["ReLU"], 0)
    a, b = drv.w.scene.nodes["relu1"], drv.w.scene.nodes["relu2"]
    assert not a.sceneBoundingRect().intersects(b.sceneBoundingRect().adjusted(0, 4, 0, 0)) \
        or a.scenePos() != b.scenePos()


def test_space_drag_pans_instead_of_selecting(make_window, qtbot):
    drv = make_window(small_doc([("in", "Input", {"shape": [4]})], []))
    drv.view.set_zoom(2.0)
    v0 = drv.view.verticalScrollBar().value()
    drv.view.setFocus()
    qtbot.keyPress(drv.view, Qt.Key.Key_Space)
    qtbot.mousePress(drv.vp, Qt.MouseButton.LeftButton, pos=QPoint(300, 300))
    qtbot.mouseMove(drv.vp, QPoint(300, 260))
    qtbot.mouseRelease(drv.vp, Qt.MouseButton.LeftButton, pos=QPoint(300, 260))
    qtbot.keyRelease(drv.view, Qt.Key.Key_Space)
    assert drv.view.verticalScrollBar().value() == v0 + 40
    assert not drv.w.scene.selectedItems()


def test_toast_goes_away(make_window, qtbot):
    drv = make_window()
    drv.w.scene.refuse("no", QPointF(0, 0))
    toast = drv.w.scene.last_toast
    assert toast.scene() is drv.w.scene
    toast.timer.setInterval(10)
    toast.timer.start()
    qtbot.waitUntil(lambda: toast.scene() is None, timeout=2000)


def test_status_bar_counts_errors(make_window):
    drv = make_window(small_doc([("a", "Dense", {"units": 3}), ("b", "Dense", {"units": 3})], []))
    # no Input, no Output, two unfed nodes
    assert drv.w.errors_button.text() == "⚠ 4 problems"
    drv.w.goto_next_error()
    assert drv.w.scene.selected_node_ids() == ["a"]
    drv.w.goto_next_error()
    assert drv.w.scene.selected_node_ids() == ["b"]
    assert "nothing connected" in drv.w.status_message.text()


def test_summary_panel_and_status_totals(make_window):
    doc = small_doc([("in", "Input", {"shape": [10]}), ("d", "Dense", {"units": 4}),
                     ("out", "Output", {})], [("in", "d", 0), ("d", "out", 0)])
    drv = make_window(doc)
    table = drv.w.summary.table
    rows = [[table.topLevelItem(i).text(c) for c in range(5)]
            for i in range(table.topLevelItemCount())]
    assert rows[1] == ["d", "4", "44", "40", "Dense"]
    assert "44 params" in drv.w.summary_label.text()
    # the batch the Training panel shows, which training uses
    assert drv.w.training.panel.batch.value() == 32
    assert "(batch 32)" in drv.w.summary_label.text()
    assert "<b>44</b> trainable parameters" in drv.w.summary.totals.text()
    assert "batch of 32" in drv.w.summary.totals.text()


def test_history_view_shows_the_edits(make_window):
    drv = make_window()
    drv.drop("Dense", QPointF(0, 0))
    drv.drop("ReLU", QPointF(0, 200))
    model = drv.w.history.model()
    texts = [model.index(r, 0).data() for r in range(model.rowCount())]
    assert texts == ["<opened model>", "Add Dense 'dense1'", "Add ReLU 'relu1'"]


def test_extension_points_for_other_panels(make_window):
    drv = make_window()
    dock = QDockWidget("Training")
    dock.setWidget(QLabel("plots"))
    drv.w.add_dock(dock)
    assert dock.toggleViewAction() in drv.w.panels_menu.actions()
    menu = drv.w.add_menu("&Train")
    titles = [a.text() for a in drv.w.menuBar().actions()]
    assert titles.index("&Train") == titles.index("&Help") - 1
    seen = []
    drv.w.selection_changed.connect(seen.append)
    drv.drop("Dense", QPointF(0, 0))
    assert seen[-1] == ["dense1"]
    assert menu is not None


def test_autosave_timer_is_running(make_window):
    drv = make_window()
    assert drv.w.autosave_timer.isActive() and drv.w.autosave_timer.interval() == 60_000


def test_pyside_does_not_leak_references_to_none():
    """PySide6 6.12.0 on Python 3.11 drops a reference to None on every call of a void
    method and the app dies after a few thousand edits (pinned below 6.12 in pyproject)."""
    lbl = QLabel()
    before = sys.getrefcount(None)
    for _ in range(2000):
        lbl.setText("x")
    assert sys.getrefcount(None) - before > -100


def test_keyboard_shortcuts(make_window, tmp_path):
    drv = make_window()
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    drv.drop("Dense", QPointF(0, 0))
    drv.key(Qt.Key.Key_Z, ctrl)
    assert not drv.graph.nodes
    drv.key(Qt.Key.Key_Z, ctrl | shift)
    assert list(drv.graph.nodes) == ["dense1"]
    drv.w.choose_save_path = lambda: str(tmp_path / "k.json")
    drv.key(Qt.Key.Key_S, ctrl)
    assert (tmp_path / "k.json").is_file() and not drv.w.isWindowModified()
    drv.key(Qt.Key.Key_N, ctrl)
    assert not drv.graph.nodes and drv.w.document.path is None
    drv.w.choose_open_path = lambda: str(tmp_path / "k.json")
    drv.key(Qt.Key.Key_O, ctrl)
    assert list(drv.graph.nodes) == ["dense1"]
    drv.w.scene.select_nodes(["dense1"])
    drv.key(Qt.Key.Key_Backspace)
    assert not drv.graph.nodes


def test_training_section_edits_are_undoable_and_update_the_summary(make_window):
    from netbuilder.document import SetTraining

    doc = small_doc([("in", "Input", {"shape": [10]}), ("out", "Output", {"loss": "mse"})],
                    [("in", "out", 0)])
    drv = make_window(doc)
    assert "batch 32" in drv.w.summary_label.text()
    drv.w.push(SetTraining({}, {"batch_size": 8, "epochs": 3}))
    assert drv.graph.training == {"batch_size": 8, "epochs": 3}
    assert "batch 8" in drv.w.summary_label.text() and drv.w.isWindowModified()
    assert drv.w.undo_stack.text(0) == "Set training batch_size, epochs"
    drv.w.undo_stack.undo()
    assert drv.graph.training == {} and "batch 32" in drv.w.summary_label.text()
    drv.w.push(SetTraining({}, {"batch_size": "all"}))
    assert drv.w.training.panel.batch.text() == "all (full batch)"
    assert "per sample (full batch)" in drv.w.summary_label.text()
