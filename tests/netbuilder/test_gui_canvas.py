"""The canvas driven through real events: drops, port-to-port wiring, refusals, delete, move,
selection, clipboard, layout, zoom; undo and redo of each."""

from __future__ import annotations

import warnings

from guidocs import small_doc
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

import engine
from netbuilder.canvas import theme

MLP = small_doc(
    [("in", "Input", {"shape": [8]}), ("d1", "Dense", {"units": 5}),
     ("out", "Output", {"loss": "cross_entropy"})],
    [("in", "d1", 0)])


def test_palette_drop_creates_node_where_it_lands_and_undo_redo(make_window):
    drv = make_window()
    at = QPointF(300, 200)
    ev = drv.drop("Dense", at)
    assert ev.isAccepted()
    g = drv.graph
    assert list(g.nodes) == ["dense1"]
    item = drv.w.scene.nodes["dense1"]
    centre = item.scenePos() + QPointF(item.width / 2, theme.HEADER_H / 2)
    assert abs(centre.x() - at.x()) <= theme.GRID and abs(centre.y() - at.y()) <= theme.GRID
    assert item.isSelected()
    drv.drop("Dense", QPointF(300, 400))
    assert list(g.nodes) == ["dense1", "dense2"]
    assert drv.w.windowTitle().startswith("test") or "[*]" in drv.w.windowTitle()
    assert drv.w.isWindowModified()
    drv.w.undo_stack.undo()
    assert list(drv.graph.nodes) == ["dense1"]
    assert "dense2" not in drv.w.scene.nodes
    drv.w.undo_stack.undo()
    assert not drv.graph.nodes and not drv.w.scene.nodes
    assert not drv.w.isWindowModified()
    drv.w.undo_stack.redo()
    assert list(drv.graph.nodes) == ["dense1"]
    assert drv.w.scene.nodes["dense1"].scenePos() == item.scenePos()


def test_drop_ignores_foreign_data(make_window):
    from PySide6.QtCore import QMimeData
    from PySide6.QtGui import QDragEnterEvent

    drv = make_window()
    md = QMimeData()
    md.setText("Dense")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ev = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, md,
                             Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(drv.vp, ev)
    assert not ev.isAccepted()


def test_wire_two_ports_by_mouse_labels_the_shape_undo_redo(make_window):
    drv = make_window(MLP)
    assert not drv.graph.edges[1:]
    drv.wire("d1", "out")
    assert engine.Edge("d1", "out", 0) in drv.graph.edges
    assert drv.edge_label("d1", "out") == "5"
    assert drv.edge_label("in", "d1") == "8"
    assert drv.w.errors_button.text() == "✓ no problems"
    assert drv.w.undo_stack.count() == 1
    drv.w.undo_stack.undo()
    assert engine.Edge("d1", "out", 0) not in drv.graph.edges
    assert engine.Edge("d1", "out", 0) not in drv.w.scene.edges
    assert "problem" in drv.w.errors_button.text()
    drv.w.undo_stack.redo()
    assert engine.Edge("d1", "out", 0) in drv.w.scene.edges
    assert drv.w.scene._wiring is None
    assert not [i for i in drv.w.scene.items() if type(i).__name__ == "RubberWire"]


def test_wire_from_input_port_to_output_port_works_backwards(make_window):
    drv = make_window(MLP)
    s, d = drv.w.scene.nodes["d1"], drv.w.scene.nodes["out"]
    drv.drag(d.in_ports[0].scenePos(), s.out_port.scenePos())
    assert engine.Edge("d1", "out", 0) in drv.graph.edges


def test_rubber_wire_follows_the_mouse(make_window, qtbot):
    drv = make_window(MLP)
    s = drv.w.scene.nodes["d1"]
    a = drv.vpos(s.out_port.scenePos())
    qtbot.mousePress(drv.vp, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(drv.vp, a + QPoint(40, 60))
    rubber = drv.w.scene._wiring.rubber
    end = rubber.path().pointAtPercent(1.0)
    target = drv.view.mapToScene(a + QPoint(40, 60))
    assert abs(end.x() - target.x()) < 2 and abs(end.y() - target.y()) < 2
    assert drv.w.scene.nodes["out"].in_ports[0].state == "ok"
    assert drv.w.scene.nodes["d1"].in_ports[0].state == "no"  # own input: a cycle
    qtbot.mouseRelease(drv.vp, Qt.MouseButton.LeftButton, pos=a + QPoint(400, 0))
    assert drv.w.scene._wiring is None and rubber.scene() is None
    assert len(drv.graph.edges) == 1


def test_cycle_is_refused_with_a_visible_reason(make_window):
    doc = small_doc([("in", "Input", {"shape": [8]}), ("a", "Add", {}),
                     ("b", "Dense", {"units": 8})], [("in", "a", 0), ("a", "b", 0)])
    drv = make_window(doc)
    before = drv.graph.to_dict()
    assert drv.w.scene.nodes["a"].in_ports[1].state == ""
    drv.wire("b", "a", 1)  # a free port, but b is fed by a
    assert drv.graph.to_dict() == before
    assert drv.w.undo_stack.count() == 0
    msg = drv.w.status_message.text()
    assert "would make a cycle" in msg and "'b'" in msg and "'a'" in msg
    assert drv.w.status_message.property("error") is True
    toast = drv.w.scene.last_toast
    assert toast is not None and toast.scene() is drv.w.scene and toast.text == msg
    assert toast.isVisible()


def test_taken_port_is_refused(make_window):
    doc = small_doc([("x", "Input", {"shape": [8]}), ("y", "Input", {"shape": [8]}),
                     ("d", "Dense", {"units": 3})], [("x", "d", 0)],
                    {"x": (0, 0), "y": (240, 0), "d": (0, 160)})
    drv = make_window(doc)
    drv.wire("y", "d")
    assert drv.graph.edges == [engine.Edge("x", "d", 0)]
    assert "already fed by 'x'" in drv.w.status_message.text()


def test_variadic_layer_shows_one_free_port_more(make_window):
    doc = small_doc([("x", "Input", {"shape": [4]}), ("y", "Input", {"shape": [4]}),
                     ("z", "Input", {"shape": [4]}), ("add", "Add", {})],
                    [("x", "add", 0), ("y", "add", 1)],
                    {"x": (0, 0), "y": (220, 0), "z": (440, 0), "add": (220, 180)})
    drv = make_window(doc)
    add = drv.w.scene.nodes["add"]
    assert len(add.in_ports) == 3
    drv.wire("z", "add", 2)
    assert engine.Edge("z", "add", 2) in drv.graph.edges
    assert len(add.in_ports) == 4
    drv.w.undo_stack.undo()
    assert len(add.in_ports) == 3


def test_drag_a_wired_input_away_disconnects_and_undo(make_window):
    drv = make_window(MLP)
    d1 = drv.w.scene.nodes["d1"]
    drv.drag(d1.in_ports[0].scenePos(), d1.in_ports[0].scenePos() + QPointF(260, 0))
    assert drv.graph.edges == []
    assert drv.w.undo_stack.text(0).startswith("Disconnect")
    drv.w.undo_stack.undo()
    assert drv.graph.edges == [engine.Edge("in", "d1", 0)]
    assert drv.w.scene.edges[engine.Edge("in", "d1", 0)].isVisible()


def test_delete_with_key_then_undo_restores_identical_graph(make_window):
    doc = small_doc([("in", "Input", {"shape": [8]}), ("d1", "Dense", {"units": 5}),
                     ("out", "Output", {})], [("in", "d1", 0), ("d1", "out", 0)])
    drv = make_window(doc)
    before = drv.graph.to_dict()
    drv.click(drv.node_centre("d1"))
    assert drv.w.scene.selected_node_ids() == ["d1"]
    drv.key(Qt.Key.Key_Delete)
    assert "d1" not in drv.graph.nodes and drv.graph.edges == []
    assert "d1" not in drv.w.scene.nodes and not drv.w.scene.edges
    assert drv.w.scene.nodes["out"].info.error is not None
    drv.w.undo_stack.undo()
    assert drv.graph.to_dict() == before
    assert set(drv.w.scene.edges) == set(drv.graph.edges)
    drv.w.undo_stack.redo()
    assert "d1" not in drv.graph.nodes


def test_delete_selected_wire(make_window):
    drv = make_window(MLP)
    e = drv.w.scene.edges[engine.Edge("in", "d1", 0)]
    e.setSelected(True)
    drv.w.act_delete.trigger()
    assert drv.graph.edges == []
    drv.w.undo_stack.undo()
    assert drv.graph.edges == [engine.Edge("in", "d1", 0)]


def test_move_by_mouse_snaps_to_grid_and_undo(make_window):
    drv = make_window(MLP)
    item = drv.w.scene.nodes["d1"]
    start = item.scenePos()
    c = drv.node_centre("d1")
    drv.drag(c, c + QPointF(133, 47))
    p = item.scenePos()
    assert p != start
    assert p.x() % theme.GRID == 0 and p.y() % theme.GRID == 0
    assert drv.w.document.position("d1") == (p.x(), p.y())
    assert drv.w.undo_stack.text(drv.w.undo_stack.count() - 1) == "Move 'd1'"
    # the wire followed the node
    e = drv.w.scene.edges[engine.Edge("in", "d1", 0)]
    assert e._path.pointAtPercent(1.0) == item.in_port_pos(0)
    drv.w.undo_stack.undo()
    assert item.scenePos() == start
    assert drv.w.document.position("d1") == (start.x(), start.y())


def test_rubber_band_selects_several_and_delete_them_as_one_step(make_window):
    drv = make_window(MLP)
    r = drv.w.scene.itemsBoundingRect()
    drv.drag(r.topLeft() - QPointF(60, 60), r.bottomRight() + QPointF(60, 60))
    assert set(drv.w.scene.selected_node_ids()) == {"in", "d1", "out"}
    drv.w.act_delete.trigger()
    assert not drv.graph.nodes
    drv.w.undo_stack.undo()
    assert set(drv.graph.nodes) == {"in", "d1", "out"}


def test_copy_paste_and_duplicate_get_fresh_ids(make_window):
    drv = make_window(MLP)
    drv.w.scene.select_nodes(["in", "d1"])
    drv.key(Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert set(drv.graph.nodes) == {"in", "d1", "out", "input1", "dense1"}
    assert engine.Edge("input1", "dense1", 0) in drv.graph.edges
    assert set(drv.w.scene.selected_node_ids()) == {"input1", "dense1"}
    x, y = drv.w.document.position("dense1")  # beside the original, on the grid
    x0, y0 = drv.w.document.position("d1")
    assert y == y0 and theme.NODE_WIDTH < x - x0 <= theme.NODE_WIDTH + 2 * theme.GRID
    assert (x - x0) % theme.GRID == 0
    drv.key(Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    drv.key(Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert {"input2", "dense2"} <= set(drv.graph.nodes)
    assert drv.graph.nodes["dense2"].params == {"units": 5}
    drv.w.undo_stack.undo()
    drv.w.undo_stack.undo()
    assert set(drv.graph.nodes) == {"in", "d1", "out"}


def test_auto_layout_is_one_undoable_step(make_window):
    doc = small_doc([("in", "Input", {"shape": [8]}), ("d1", "Dense", {"units": 5}),
                     ("d2", "Dense", {"units": 5}), ("add", "Add", {}), ("out", "Output", {})],
                    [("in", "d1", 0), ("in", "d2", 0), ("d1", "add", 0), ("d2", "add", 1),
                     ("add", "out", 0)],
                    {"in": (500, 500), "d1": (0, 0), "d2": (900, 40), "add": (300, 900),
                     "out": (0, 300)})
    drv = make_window(doc)
    before = {n: drv.w.document.position(n) for n in drv.graph.nodes}
    drv.w.act_layout.trigger()
    after = {n: drv.w.document.position(n) for n in drv.graph.nodes}
    assert after != before
    y = {n: p[1] for n, p in after.items()}
    assert y["in"] < y["d1"] == y["d2"] < y["add"] < y["out"]
    assert after["d1"][0] < after["d2"][0]  # port 0 left of port 1
    assert drv.w.undo_stack.text(drv.w.undo_stack.count() - 1) == "Automatic layout"
    drv.w.undo_stack.undo()
    assert {n: drv.w.document.position(n) for n in drv.graph.nodes} == before


def test_wheel_zoom_keeps_the_point_under_the_cursor_and_fit(make_window):
    drv = make_window(MLP)
    view = drv.view
    z0 = view.zoom
    pos = QPointF(200, 150)
    under = view.mapToScene(pos.toPoint())
    ev = QWheelEvent(pos, view.viewport().mapToGlobal(pos), QPoint(0, 0), QPoint(0, 240),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                     Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), ev)
    assert view.zoom > z0 * 1.3
    after = view.mapToScene(pos.toPoint())
    assert abs(after.x() - under.x()) < 3 and abs(after.y() - under.y()) < 3
    drv.key(Qt.Key.Key_F)
    assert view.zoom <= 1.0
    for item in drv.w.scene.nodes.values():
        assert view.viewport().rect().contains(view.mapFromScene(item.sceneBoundingRect().center()))


def test_middle_mouse_pans(make_window, qtbot):
    drv = make_window(MLP)
    drv.view.set_zoom(2.0)
    h0 = drv.view.horizontalScrollBar().value()
    qtbot.mousePress(drv.vp, Qt.MouseButton.MiddleButton, pos=QPoint(300, 300))
    qtbot.mouseMove(drv.vp, QPoint(250, 300))
    qtbot.mouseRelease(drv.vp, Qt.MouseButton.MiddleButton, pos=QPoint(250, 300))
    assert drv.view.horizontalScrollBar().value() == h0 + 50


def test_error_badge_appears_and_clears_at_once(make_window):
    doc = small_doc([("in", "Input", {"shape": [1, 8, 8]}), ("d1", "Dense", {"units": 5}),
                     ("out", "Output", {})], [("in", "d1", 0), ("d1", "out", 0)])
    drv = make_window(doc)
    item = drv.w.scene.nodes["d1"]
    assert item.info.error is not None
    assert "Flatten" in item.toolTip() and "d1" in item.info.error.message
    assert drv.w.errors_button.text() == "⚠ 1 problem"
    assert drv.edge_label("d1", "out") == "?"
    # fix the cause: a Flatten between the Input and the Dense, all by hand
    drv.drop("Flatten", drv.node_centre("in") + QPointF(260, 0))
    drv.drag(drv.w.scene.nodes["d1"].in_ports[0].scenePos(),
             drv.w.scene.nodes["flatten1"].in_ports[0].scenePos())  # rewire in -> flatten1
    assert engine.Edge("in", "flatten1", 0) in drv.graph.edges
    drv.wire("flatten1", "d1")
    assert item.info.error is None
    assert "Flatten" not in item.toolTip()
    assert drv.w.errors_button.text() == "✓ no problems"
    assert drv.edge_label("flatten1", "d1") == "64"
    drv.w.undo_stack.undo()
    assert item.info.error is not None


def test_receptive_field_tag_on_selected_conv(make_window):
    doc = small_doc([("in", "Input", {"shape": [1, 28, 28]}),
                     ("c1", "Conv2D", {"filters": 2, "kernel_size": 5}),
                     ("p1", "MaxPool2D", {"pool_size": 2}),
                     ("c2", "Conv2D", {"filters": 2, "kernel_size": 3})],
                    [("in", "c1", 0), ("c1", "p1", 0), ("p1", "c2", 0)])
    drv = make_window(doc)
    drv.w.scene.select_nodes(["c2"])
    assert drv.w.scene.nodes["c2"].rf.size == (10, 10)  # 5 + 1*1 = 6, then 6 + 2*2 = 10
    assert "10×10 px" in drv.w.inspector.rf_label.text()
    drv.w.scene.select_nodes(["c1"])
    assert drv.w.scene.nodes["c2"].rf is None
    assert drv.w.scene.nodes["c1"].rf.size == (5, 5)
