"""Defaults that learn: choosing data sets training settings suited to it (unless the model
chose its own), in the same undo step; an Input that does not fit the data is one click away
from fitting."""

from __future__ import annotations

from guidocs import small_doc
from monitorkit import click, example, open_model

from engine.data import BUILTINS
from engine.train_settings import suggested_training

MLP = small_doc([("in", "Input", {"shape": [1, 28, 28]}), ("d1", "Dense", {}),
                 ("r1", "ReLU", {}), ("d2", "Dense", {"units": 2}), ("out", "Output", {})],
                [("in", "d1", 0), ("d1", "r1", 0), ("r1", "d2", 0), ("d2", "out", 0)])


def choose(panel, name):
    """Pick a built-in dataset in the Data panel's combo box, as the user does."""
    i = panel.source.findData(name)
    panel.source.setCurrentIndex(i)
    panel.source.activated.emit(i)
    assert panel.wait_loaded(60)


def test_choosing_points_sets_adam_and_enough_epochs_in_one_undo_step(make_window):
    drv = make_window(MLP)
    tc = drv.w.training
    p = tc.panel
    assert (p.optimizer.currentText(), p.lr.value(), p.epochs.value()) == ("SGD", 0.01, 10)
    choose(tc.data, "spirals")
    want = suggested_training("points")
    assert drv.graph.training == {"dataset": "spirals", **want}
    assert (p.optimizer.currentText(), p.lr.text(), p.epochs.value()) == ("Adam", "0.01", 30)
    assert drv.w.status_message.text() == "Training for 2-D points: Adam, lr 0.01, 30 epochs"
    assert drv.w.undo_stack.count() == 1
    # other data, other settings, as long as nobody chose them
    choose(tc.data, "digits")
    assert drv.graph.training["optimizer"] == suggested_training("image")["optimizer"]
    assert p.epochs.value() == suggested_training("image")["epochs"]
    drv.w.act_undo.trigger()
    drv.w.act_undo.trigger()
    assert drv.graph.training == {}
    assert p.optimizer.currentText() == "SGD" and p.epochs.value() == 10


def test_settings_chosen_by_hand_are_kept(make_window):
    drv, tc = open_model(make_window, example("xor_mlp"))
    choose(tc.data, "spirals")
    t = drv.graph.training
    assert t["optimizer"] == {"type": "sgd", "lr": 0.1, "momentum": 0.9} and t["epochs"] == 60
    drv2 = make_window(MLP)
    p = drv2.w.training.panel
    p.epochs.setValue(7)  # chosen by hand; the optimizer is not
    choose(drv2.w.training.data, "spirals")
    assert drv2.graph.training["epochs"] == 7
    assert drv2.graph.training["optimizer"] == suggested_training("points")["optimizer"]


def test_an_input_that_does_not_fit_the_data_is_fixed_in_one_click(make_window, qtbot):
    drv = make_window(MLP)
    dp = drv.w.training.data
    choose(dp, "spirals")
    # the Input's default image shape makes a Dense problem too: the data waits for it...
    assert "Fix the model's problems first" in dp.problem_label.text()
    assert "shaped (2,), which the Input 'in' does not take" in dp.problem_label.text()
    button = dp.fix_input_button  # ...and the Input is the cause: one click fixes both
    assert button.isVisibleTo(dp) and button.text() == "Set the Input to the data's shape (2,)"
    before = drv.w.undo_stack.count()
    click(qtbot, button)
    assert drv.graph.nodes["in"].params == {"shape": [2]}
    assert drv.edge_label("in", "d1") == "2"
    assert dp.problems == [] and not dp.problem_label.isVisibleTo(dp)
    assert not button.isVisibleTo(dp)
    assert drv.w.undo_stack.count() == before + 1
    assert drv.w.undo_stack.undoText() == "Set the Input 'in' to the data's shape"
    drv.w.act_undo.trigger()
    assert drv.graph.nodes["in"].params == {"shape": [1, 28, 28]}
    assert button.isVisibleTo(dp)
    # data the Input takes by a reshape needs no fix: a flat Input of 64 for the 8×8 digits
    drv.w.act_redo.trigger()
    ins = drv.w.inspector
    drv.click(drv.node_centre("in"))
    ins.editors["shape"].widget.setText("64")
    ins.editors["shape"].widget.editingFinished.emit()
    choose(dp, "digits")
    assert [e.node_id for e in dp.problems] == ["d2"]  # 2 class scores for 10 digits...
    assert not button.isVisibleTo(dp)  # ...but the Input fits


def test_the_fix_is_offered_beside_the_datas_own_message(make_window, qtbot):
    drv, tc = open_model(make_window, example("xor_mlp"))
    dp = tc.data
    choose(dp, "digits")
    assert "Input 'in' expects samples shaped (2,)" in dp.problem_label.text()
    assert dp.fix_input_button.text() == "Set the Input to the data's shape (1, 8, 8)"
    click(qtbot, dp.fix_input_button)
    assert drv.graph.nodes["in"].params == {"shape": [1, 8, 8]}
    # the MLP now has a problem of its own (a Dense fed an image): the panel says so
    assert "Fix the model's problems first" in dp.problem_label.text()


def test_every_builtin_has_a_kind_the_panel_can_suggest_for():
    assert all(b.kind for b in BUILTINS.values())
