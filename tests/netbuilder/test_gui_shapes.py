"""One-number shapes typed into the inspector: `2`, `2,`, `[2]` and `(2,)` all mean the
one-dimensional shape (2,), stay a list in the model file, and the shipped examples' fields
accept their own value back."""

from __future__ import annotations

import json

from guidocs import small_doc
from monitorkit import example
from PySide6.QtCore import Qt


def click_node(drv, nid):
    drv.click(drv.node_centre(nid))
    assert drv.w.inspector.node_id == nid
    return drv.w.inspector


def type_into(qtbot, widget, text):
    widget.setFocus()
    widget.selectAll()
    qtbot.keyClick(widget, Qt.Key.Key_Backspace)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


MLP = small_doc([("in", "Input", {"shape": [1, 28, 28]}), ("d1", "Dense", {"units": 3}),
                 ("out", "Output", {})], [("in", "d1", 0), ("d1", "out", 0)],
                positions={"in": (0, 0), "d1": (0, 160), "out": (0, 320)})


def test_one_number_input_shapes_are_lists_in_every_spelling(make_window, qtbot, tmp_path):
    drv = make_window(MLP)
    ins = click_node(drv, "in")
    field = ins.editors["shape"].widget
    for text, want in (("2", [2]), ("3,", [3]), ("[4]", [4]), ("(5,)", [5]), ("6, ", [6])):
        type_into(qtbot, field, text)
        assert not ins.refusal.isVisible(), ins.refusal.text()
        assert drv.graph.nodes["in"].params["shape"] == want
        assert field.text() == str(want[0])
        assert drv.edge_label("in", "d1") == str(want[0])
    assert drv.w.undo_stack.count() == 5
    assert drv.w.save_as(tmp_path / "m.json")
    saved = json.loads((tmp_path / "m.json").read_text())
    assert next(n for n in saved["nodes"] if n["id"] == "in")["params"] == {"shape": [6]}
    # the field still refuses what is not a shape, with the reason
    type_into(qtbot, field, "two")
    assert ins.refusal.isVisible() and "shape" in ins.refusal.text()
    assert drv.graph.nodes["in"].params["shape"] == [6]


def test_enter_in_the_xor_examples_shape_field_changes_nothing(make_window, qtbot):
    drv = make_window(example("xor_mlp"))
    ins = click_node(drv, "in")
    field = ins.editors["shape"].widget
    assert field.text() == "2"
    field.setFocus()
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert not ins.refusal.isVisible(), ins.refusal.text()
    assert drv.w.undo_stack.count() == 0
    assert drv.graph.nodes["in"].params == {"shape": [2]}
    assert not drv.w.status_message.property("error")


def test_reshape_to_one_number(make_window, qtbot):
    doc = small_doc([("in", "Input", {"shape": [1, 28, 28]}),
                     ("r", "Reshape", {"shape": [28, 28]}), ("d", "Dense", {"units": 10}),
                     ("out", "Output", {})], [("in", "r", 0), ("r", "d", 0), ("d", "out", 0)],
                    positions={"in": (0, 0), "r": (0, 160), "d": (0, 320), "out": (0, 480)})
    drv = make_window(doc)
    ins = click_node(drv, "r")
    type_into(qtbot, ins.editors["shape"].widget, "784")
    assert not ins.refusal.isVisible(), ins.refusal.text()
    assert drv.graph.nodes["r"].params == {"shape": [784]}
    assert drv.edge_label("r", "d") == "784"
    assert drv.w.errors_button.text() == "✓ no problems"


def test_size_params_keep_one_number_as_a_number(make_window, qtbot):
    doc = small_doc([("in", "Input", {"shape": [1, 8, 8]}), ("p", "MaxPool2D", {}),
                     ("out", "Output", {"loss": "mse"})], [("in", "p", 0), ("p", "out", 0)],
                    positions={"in": (0, 0), "p": (0, 160), "out": (0, 320)})
    drv = make_window(doc)
    ins = click_node(drv, "p")
    type_into(qtbot, ins.editors["pool_size"].widget, "(4,)")
    assert drv.graph.nodes["p"].params == {"pool_size": 4}
    type_into(qtbot, ins.editors["pool_size"].widget, "2, 4")
    assert drv.graph.nodes["p"].params == {"pool_size": [2, 4]}
