"""The status bar follows the model's problems: an edit that makes one says it there (not the
message of an earlier edit), and the message goes once the problem is fixed."""

from __future__ import annotations

from monitorkit import example


def test_an_edit_that_breaks_the_model_says_why_in_the_status_bar(make_window):
    w = make_window(example("lenet5")).w
    w.add_layer_at_centre("ReLU")
    assert w.status_message.text() == "Added ReLU 'relu1'"
    w.scene.select_nodes(["flatten"])
    w.act_delete.trigger()  # f5 loses its input
    assert w.status_message.text() == "Dense 'f5' has nothing connected to input 0 (in)"
    assert w.status_message.property("error")
    assert w.errors_button.text() == "⚠ 2 problems"
    w.undo_stack.undo()  # fixed: the message goes, the unconnected ReLU stays a problem
    assert w.status_message.text() == ""
    assert w.errors_button.text() == "⚠ 1 problem"


def test_a_problem_replaces_an_earlier_message_and_the_next_edit_keeps_it(make_window):
    w = make_window(example("lenet5")).w
    w.show_status("Saved lenet5.json")
    w.scene.select_nodes(["f6"])
    w.act_delete.trigger()  # a6 loses its input
    assert w.status_message.text() == "ReLU 'a6' has nothing connected to input 0 (in)"
    w.scene.select_nodes(["c1"])
    w.act_duplicate.trigger()  # a copy of c1, unconnected: a new problem again
    assert "'a6'" not in w.status_message.text()
