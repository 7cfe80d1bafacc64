"""The inspector: forms generated from ParamSpecs, edits through undo, refusals with reasons,
renames that keep the wires."""

from __future__ import annotations

from guidocs import small_doc
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

import engine

DOC = small_doc(
    [("in", "Input", {"shape": [1, 12, 12]}),
     ("c1", "Conv2D", {"filters": 4, "kernel_size": 3}),
     ("bn", "BatchNorm", {}), ("fl", "Flatten", {}), ("d1", "Dense", {"units": 7}),
     ("out", "Output", {})],
    [("in", "c1", 0), ("c1", "bn", 0), ("bn", "fl", 0), ("fl", "d1", 0), ("d1", "out", 0)])


def select(drv, nid):
    drv.w.scene.select_nodes([nid])
    assert drv.w.inspector.node_id == nid
    return drv.w.inspector


def type_into(qtbot, widget, text):
    widget.setFocus()
    widget.selectAll()
    qtbot.keyClick(widget, Qt.Key.Key_Backspace)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def test_form_is_generated_from_param_specs(make_window):
    drv = make_window(DOC)
    ins = select(drv, "d1")
    units = ins.editors["units"].widget
    assert isinstance(units, QSpinBox)
    assert (units.minimum(), units.maximum(), units.value()) == (1, 1_000_000, 7)
    assert isinstance(ins.editors["bias"].widget, QCheckBox) and ins.editors["bias"].widget.isChecked()
    init = ins.editors["init"].widget
    assert isinstance(init, QComboBox) and init.currentText() == "he"
    assert [init.itemText(i) for i in range(init.count())] == list(
        engine.get_layer_class("Dense").spec("init").choices)
    ins = select(drv, "bn")
    eps = ins.editors["eps"].widget
    assert isinstance(eps, QDoubleSpinBox) and eps.text() == "1e-05"
    ins = select(drv, "in")
    assert isinstance(ins.editors["shape"].widget, QLineEdit)
    assert ins.editors["shape"].widget.text() == "1, 12, 12"
    assert ins.out_label.text() == "1×12×12"


def test_edit_units_changes_the_next_wire_and_undo(make_window, qtbot):
    drv = make_window(DOC)
    assert drv.edge_label("d1", "out") == "7"
    ins = select(drv, "d1")
    type_into(qtbot, ins.editors["units"].widget, "12")
    assert drv.graph.nodes["d1"].params == {"units": 12}
    assert drv.edge_label("d1", "out") == "12"
    assert ins.out_label.text() == "12"
    assert drv.w.undo_stack.text(drv.w.undo_stack.count() - 1) == "Set units of 'd1'"
    drv.w.undo_stack.undo()
    assert drv.edge_label("d1", "out") == "7"
    assert ins.editors["units"].widget.value() == 7
    drv.w.undo_stack.redo()
    assert drv.edge_label("d1", "out") == "12"


def test_conv_edit_propagates_shapes_downstream(make_window, qtbot):
    drv = make_window(DOC)
    assert drv.edge_label("fl", "d1") == str(4 * 10 * 10)
    ins = select(drv, "c1")
    type_into(qtbot, ins.editors["kernel_size"].widget, "5")
    assert drv.edge_label("c1", "bn") == "4×8×8"
    assert drv.edge_label("fl", "d1") == str(4 * 8 * 8)
    ins.editors["bias"].widget.click()
    assert drv.graph.nodes["c1"].params["bias"] is False
    assert drv.w.undo_stack.count() == 2


def test_invalid_values_are_refused_with_the_reason(make_window, qtbot):
    drv = make_window(DOC)
    before = drv.graph.to_dict()
    ins = select(drv, "in")
    shape = ins.editors["shape"].widget
    type_into(qtbot, shape, "1, 0, 12")
    assert ins.refusal.isVisible()
    assert "out of range" in ins.refusal.text() and "shape" in ins.refusal.text()
    assert shape.text() == "1, 12, 12"  # the field shows the value in force again
    type_into(qtbot, shape, "one, two")
    assert "list of sizes" in ins.refusal.text() or "whole number" in ins.refusal.text()
    assert drv.graph.to_dict() == before
    assert drv.w.undo_stack.count() == 0
    assert drv.w.status_message.property("error") is True
    # a good value clears the refusal and the new shape flows to the wires
    type_into(qtbot, shape, "1, 16, 16")
    assert not ins.refusal.isVisible()
    assert drv.edge_label("in", "c1") == "1×16×16"


def test_shape_errors_are_not_refused_but_badged(make_window, qtbot):
    drv = make_window(DOC)
    ins = select(drv, "c1")
    type_into(qtbot, ins.editors["kernel_size"].widget, "13")  # larger than the 12×12 image
    assert drv.graph.nodes["c1"].params["kernel_size"] == 13
    assert drv.w.scene.nodes["c1"].info.error is not None
    assert ins.problem.isVisible() and "c1" in ins.problem.text()
    assert "problem" in drv.w.errors_button.text()
    drv.w.undo_stack.undo()
    assert drv.w.scene.nodes["c1"].info.error is None
    assert not ins.problem.isVisible()


def test_rename_keeps_wires_and_refuses_duplicates(make_window, qtbot):
    drv = make_window(DOC)
    ins = select(drv, "d1")
    type_into(qtbot, ins.id_edit, "classifier")
    g = drv.graph
    assert "classifier" in g.nodes and "d1" not in g.nodes
    assert engine.Edge("fl", "classifier", 0) in g.edges
    assert engine.Edge("classifier", "out", 0) in g.edges
    assert drv.w.scene.nodes["classifier"].node_id == "classifier"
    assert drv.edge_label("classifier", "out") == "7"
    assert ins.node_id == "classifier"
    type_into(qtbot, ins.id_edit, "fl")
    assert "already exists" in ins.refusal.text()
    assert ins.id_edit.text() == "classifier"
    type_into(qtbot, ins.id_edit, "9bad id")
    assert "not valid" in ins.refusal.text()
    drv.w.undo_stack.undo()
    assert "d1" in drv.graph.nodes and engine.Edge("d1", "out", 0) in drv.graph.edges
    assert ins.node_id == "d1" and ins.id_edit.text() == "d1"


def test_choice_and_optional_params(make_window, qtbot):
    doc = small_doc([("in", "Input", {"shape": [1, 8, 8]}), ("p", "MaxPool2D", {}),
                     ("out", "Output", {"loss": "mse"})], [("in", "p", 0), ("p", "out", 0)])
    drv = make_window(doc)
    ins = select(drv, "p")
    stride = ins.editors["stride"].widget
    assert stride.text() == ""  # auto: same as the pool size
    type_into(qtbot, stride, "1")
    assert drv.graph.nodes["p"].params == {"stride": 1}
    assert drv.edge_label("p", "out") == "1×7×7"
    type_into(qtbot, stride, "")
    assert drv.graph.nodes["p"].params == {}
    ins = select(drv, "out")
    loss = ins.editors["loss"].widget
    loss.setCurrentText("bce")
    loss.activated.emit(loss.currentIndex())
    assert drv.graph.nodes["out"].params == {"loss": "bce"}


def test_inspector_follows_selection(make_window):
    drv = make_window(DOC)
    ins = drv.w.inspector
    assert ins.node_id is None and not ins.form_box.isVisible()
    drv.w.scene.select_nodes(["c1", "d1"])
    assert ins.node_id is None and "2 nodes" in ins.help.text()
    select(drv, "c1")
    assert ins.form_box.isVisible() and "Conv2D" in ins.title.text()
    drv.w.act_delete.trigger()
    assert ins.node_id is None


def test_spin_box_values_out_of_range_are_refused_with_the_reason(make_window, qtbot):
    drv = make_window(DOC)
    ins = select(drv, "d1")
    type_into(qtbot, ins.editors["units"].widget, "0")
    assert ins.refusal.isVisible()
    assert "units = 0 is out of range" in ins.refusal.text()
    assert ins.editors["units"].widget.value() == 7
    assert drv.graph.nodes["d1"].params == {"units": 7}
    ins = select(drv, "bn")
    type_into(qtbot, ins.editors["momentum"].widget, "1.5")
    assert "momentum = 1.5 is out of range" in ins.refusal.text()
    assert drv.graph.nodes["bn"].params == {}
    assert drv.w.undo_stack.count() == 0
